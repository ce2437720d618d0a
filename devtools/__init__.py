"""Development tools, outside the product: embedded services, a local Airflow, the sample archive, demo, benchmarks."""
