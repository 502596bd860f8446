-- Runs once, when the postgresql service initialises an empty data volume
-- (files in /docker-entrypoint-initdb.d run as POSTGRES_USER against POSTGRES_DB).
-- The temporal-schema service creates Temporal's databases (temporal, temporal_visibility);
-- this adds the database for Keel's own tables. Idempotent: skipped if it exists.
SELECT 'CREATE DATABASE keel'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'keel')\gexec
