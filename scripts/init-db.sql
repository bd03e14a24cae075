-- PostgreSQL initialisation for Autopack.
--
-- docker-compose.yml mounts this file into /docker-entrypoint-initdb.d/, so the postgres image
-- runs it once, when it creates the database in an empty data volume: as the superuser
-- (POSTGRES_USER), connected to POSTGRES_DB, with psql -v ON_ERROR_STOP=1. It runs on any
-- PostgreSQL 13 or newer server just as well (as a superuser, on the database Autopack will use):
--
--   psql -v ON_ERROR_STOP=1 -d autopack -f scripts/init-db.sql
--
-- It creates no table: the schema comes only from the migrations (`autopack db upgrade`, the
-- compose file's `migrate` service). Statements name the current database rather than
-- `autopack`, so the file works whatever POSTGRES_DB is, and running it again changes nothing.

-- Extensions.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

-- Time zone: UTC. SET lasts only for this session; ALTER DATABASE makes it the default of every
-- later connection to this database (Autopack stores aware UTC timestamps either way).
SET timezone = 'UTC';
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET timezone TO %L', current_database(), 'UTC');
END
$$;

-- Privileges for the role `autopack`, when it exists. In the compose stack it is POSTGRES_USER,
-- the superuser that owns the database, and these change nothing. On a server where the
-- application role is a plain role (a managed PostgreSQL, a DBA's set-up), they are what lets it
-- run the migrations: since PostgreSQL 15 only the database owner may create objects in the
-- public schema.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'autopack') THEN
        EXECUTE format('GRANT ALL PRIVILEGES ON DATABASE %I TO autopack', current_database());
        GRANT ALL ON SCHEMA public TO autopack;
        GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO autopack;
        GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO autopack;
        -- Tables and sequences that the role running this script creates later.
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO autopack;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO autopack;
    ELSE
        RAISE NOTICE 'no role "autopack": privileges not granted';
    END IF;
END
$$;
