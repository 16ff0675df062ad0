"""The training pipeline's scripts and the script-mode entry point, as SageMaker runs them."""
