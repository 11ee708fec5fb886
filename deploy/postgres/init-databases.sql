-- One database per service, created the first time the postgres container starts with an
-- empty data volume (mounted into /docker-entrypoint-initdb.d). It runs as POSTGRES_USER,
-- which therefore owns them. `xerosync migrate` also creates any that are missing, then
-- migrates each one.
CREATE DATABASE xerosync_connector;
CREATE DATABASE xerosync_scheduler;
CREATE DATABASE xerosync_syncer;
