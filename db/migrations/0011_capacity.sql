-- Capacity: the services' own database role, and indexes that keep the figures' reads off the
-- incidents' history.

-- The services connect as healthguard_app, not as the owner or a superuser: it reads and writes
-- rows and nothing else (no DDL, no TRUNCATE, no roles), and a superuser's reserved connection
-- slots stay free for the administrator when the services have used up their share.
-- Roles belong to the whole cluster, while this migration runs once per database (every test
-- database, several migrators at once): it is created only when missing, and a concurrent
-- creation is fine. Its password, where the server asks for one, is set by the migrator from
-- POSTGRES_APP_PASSWORD (python -m healthguard.migrate); none is written here.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'healthguard_app') THEN
        CREATE ROLE healthguard_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another migrator made it a moment ago
END
$$;

-- Grants live in the database (copied with it when a test database is made from the template).
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO healthguard_app', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO healthguard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO healthguard_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO healthguard_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO healthguard_app;
-- The migrator's bookkeeping is not the services' business.
REVOKE ALL ON schema_migrations FROM healthguard_app;
-- Tables, sequences and functions of later migrations (run by the same owner) get the same.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO healthguard_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO healthguard_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO healthguard_app;

-- The incidents not yet resolved, by status and severity, with their age: the dashboard's tiles
-- (GET /api/v1/incidents/metrics) and the scrape-time gauges (incidents_active,
-- incident_unassigned_oldest_seconds) read only this index, whose size is the active set and
-- not the history (a year of resolved incidents costs these reads nothing).
CREATE INDEX incidents_active_summary_idx ON incidents (status, severity, created_at)
    INCLUDE (assigned_to) WHERE status <> 'RESOLVED';
-- The figures over a window: the window's rows with their MTTA/MTTR samples, read from the
-- index alone.
CREATE INDEX incidents_window_figures_idx ON incidents (created_at)
    INCLUDE (status, severity, assigned_to, response_seconds, resolution_seconds);

-- A device key's alarms of one second were all counted on one row, locked by each count until
-- its commit: one busy gateway's requests queued on that lock. Each count now goes to one of a
-- few rows of the window (a shard picked at random) and the window's total is their sum.
ALTER TABLE rate_limit_windows ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE rate_limit_windows DROP CONSTRAINT rate_limit_windows_pkey;
ALTER TABLE rate_limit_windows ADD PRIMARY KEY (bucket, window_start, shard);
