"""The command line and the pages it writes: validate, reports, previews, the evidence pack,
preflight and the scaffold of a new product."""
