-- Runs once, when the postgresql service initialises an empty data volume
-- (files in /docker-entrypoint-initdb.d run as POSTGRES_USER against POSTGRES_DB).
-- Temporal's auto-setup creates its own databases (temporal, temporal_visibility);
-- this adds the database for Keel's own tables. Idempotent: skipped if it exists.
SELECT 'CREATE DATABASE keel'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'keel')\gexec
