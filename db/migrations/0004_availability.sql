-- Who is signed in, who can be reached and how busy they are: defined once, here, and read by
-- the on-call service (who is available, least busy first), by incident management (assignment,
-- escalation, the supervisors told of unowned alarms), by authentication and by the WebSocket
-- watchdog. Each function takes the instant to judge at: callers pass healthguard.clock.now(),
-- never SQL's now(), so the tests can move time.
--
-- Who is on duty is not here: the rota (rotations in hospital local time across clock changes,
-- overrides applied in order) is computed in Python by oncall/schedule.py, its one owner.

-- A session is live from its creation until it expires or is revoked (logout).
CREATE FUNCTION live_sessions(at timestamptz) RETURNS SETOF sessions
LANGUAGE sql STABLE AS $$
    SELECT * FROM sessions s WHERE s.revoked_at IS NULL AND s.expires_at > at
$$;
CREATE INDEX sessions_live_idx ON sessions (expires_at) WHERE revoked_at IS NULL;

-- Signed in: holding a live session, on any workstation. Sessions end by expiry without a
-- logout, so a stored flag cleared at logout said "signed in" long after the last session ran
-- out; it is gone, and this is the only answer.
CREATE FUNCTION signed_in_clinicians(at timestamptz) RETURNS TABLE (employee_id text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT s.employee_id FROM live_sessions(at) s
$$;
ALTER TABLE employees DROP COLUMN is_logged_in;

-- Reachable: signed in and not marked AWAY. (Available for an incident is reachable and on duty.)
CREATE FUNCTION reachable_clinicians(at timestamptz) RETURNS TABLE (employee_id text)
LANGUAGE sql STABLE AS $$
    SELECT e.employee_id FROM employees e
    WHERE e.availability = 'AVAILABLE'
      AND e.employee_id IN (SELECT s.employee_id FROM signed_in_clinicians(at) s)
$$;

-- Workload: incidents a clinician holds that are not resolved, and when they were last given one.
CREATE VIEW clinician_workload AS
SELECT e.employee_id,
       (SELECT count(*) FROM incidents i
         WHERE i.assigned_to = e.employee_id AND i.status <> 'RESOLVED')::int AS active_incidents,
       (SELECT max(a.assigned_at) FROM incident_assignments a
         WHERE a.employee_id = e.employee_id) AS last_assigned_at
FROM employees e;
-- The last assignment of each clinician is read for every alarm: an index lookup, not a scan
-- of the whole assignment history.
CREATE INDEX incident_assignments_employee_idx ON incident_assignments (employee_id, assigned_at);

-- The order in which candidates are offered an incident: least busy first, then idle longest
-- (never assigned before anyone), then in the order given. rank 1 is the one to assign.
CREATE FUNCTION least_busy_first(candidates text[])
RETURNS TABLE (employee_id text, active_incidents integer, last_assigned_at timestamptz, rank bigint)
LANGUAGE sql STABLE AS $$
    SELECT w.employee_id, w.active_incidents, w.last_assigned_at,
           row_number() OVER (ORDER BY w.active_incidents, w.last_assigned_at NULLS FIRST,
                                       c.position)
    FROM unnest(candidates) WITH ORDINALITY AS c(employee_id, position)
    JOIN clinician_workload w ON w.employee_id = c.employee_id
$$;
