"""The code that runs on AWS: the Lambda hooks, the Glue ETL jobs, the training scripts and
the monitoring job. Nothing here imports CDK or the rest of mlgate."""
