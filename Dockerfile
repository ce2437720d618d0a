# The image for docker-compose.airflow.yml: the official Airflow image plus this project's needs.
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt  # the Celery provider is pinned there
# docker-compose.airflow.yml starts every Airflow container with it (it then runs /entrypoint).
COPY deploy/entrypoint.py /opt/airflow/deploy/entrypoint.py
