#!/usr/bin/env bash
# The postgres image runs this once, on an empty data directory (/docker-entrypoint-initdb.d): a role
# and a database per service, each role owning its database, which no other role may connect to (a
# service's credentials never open another service's data). Passwords come from the environment,
# <DATABASE>_DB_PASSWORD (docker-compose.yml, from .env); they are passed as psql variables, quoted by
# psql, never pasted into SQL.
set -euo pipefail

for database in ${BILLING_DATABASES:?BILLING_DATABASES must list the databases to create}; do
  variable="$(printf '%s' "$database" | tr '[:lower:]-' '[:upper:]_')_DB_PASSWORD"
  password="${!variable:-}"
  if [ -z "$password" ]; then
    echo "init-databases: $variable is not set (run make env)" >&2
    exit 1
  fi
  psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=name="$database" --set=password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
  echo "init-databases: database $database and its role created"
done
