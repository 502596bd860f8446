#!/bin/sh
# Creates (or upgrades) Temporal's two databases on PostgreSQL, with temporal-sql-tool from
# temporalio/admin-tools at the server's version. Safe to run on every `docker compose up`:
# an existing database is kept, setup-schema only records the base version, and
# update-schema applies just the versions not applied yet.
set -eu

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "${POSTGRES_SEEDS}" -p "${DB_PORT}" \
    -u "${POSTGRES_USER}" --pw "${POSTGRES_PWD}" "$@"
}

schema=/etc/temporal/schema/postgresql/v12
for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*}
  dir=${pair#*:}
  sql_tool --db "${db}" create || echo "database ${db} exists"
  sql_tool --db "${db}" setup-schema -v 0.0
  sql_tool --db "${db}" update-schema -d "${schema}/${dir}/versioned"
done
echo "Temporal schemas are up to date"
