"""Integrations with other systems, each an optional extra.

- :mod:`skearly.integrations.spark`: batch prediction over a Spark DataFrame;
- :mod:`skearly.integrations.mlflow`: a pickle-free MLflow pyfunc.
"""
