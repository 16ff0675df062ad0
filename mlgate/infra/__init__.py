"""The CDK app: stacks, the constructs they are built of, and the naming, accounts and
permission rules they share. Imports run one way: stacks -> constructs -> manifest."""
