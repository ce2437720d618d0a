#!/bin/bash
# Creates the application database "albums" next to Airflow's metadata database.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<-SQL
  CREATE USER albums WITH PASSWORD '${ALBUMS_PASSWORD}';
  CREATE DATABASE albums OWNER albums;
SQL
