"""Airflow glue, the only layer that imports Airflow: task bodies, clients from connections, deployment."""
