#!/bin/bash
# Creates the application database "albums" next to Airflow's metadata database, or sets its
# owner's password again. Names and password reach psql as variables, which it quotes itself
# (:'literal', :"identifier"); the SQL is a quoted heredoc, so bash expands nothing in it.
# ALBUMS_USER and ALBUMS_DB default to albums, the names deploy/entrypoint.py connects with.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v user="${ALBUMS_USER:-albums}" -v db="${ALBUMS_DB:-albums}" -v password="$ALBUMS_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user')
\gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
SQL
