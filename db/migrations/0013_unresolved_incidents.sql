-- The two lookups made for every batch of alarms, a repeat's incident (patient and alert type)
-- and each candidate's workload (incidents assigned and not resolved), read a table of the
-- unresolved incidents alone, kept by triggers, instead of partial indexes of `incidents`.
--
-- Why: the planner sizes a partial index `WHERE status <> 'RESOLVED'` from the statistics of the
-- whole table. With a year of resolved history they say almost nothing is active, and nothing
-- analyses the table again during a flood (autovacuum, where it runs, waits by default for a
-- tenth of it to change: 100,000 rows with a million of history), so they keep saying it while
-- thousands are. Every such partial index then looks like one row, and the planner read all the
-- active incidents through whichever it liked (incidents_active_summary_idx) with a filter: 9 ms
-- for the repeat lookup and 19 ms for eight candidates with 5,000 incidents active, against 0.3
-- and 1.2 ms once analysed. A small table's row count is estimated from its current size, so
-- these plans follow the flood.

CREATE TABLE unresolved_incidents (
    incident_id     bigint PRIMARY KEY REFERENCES incidents ON DELETE CASCADE,
    patient_id      text NOT NULL,
    alert_type      text NOT NULL,
    last_alert_at   timestamptz NOT NULL,
    assigned_to     text
);
CREATE INDEX unresolved_incidents_alarm_idx
    ON unresolved_incidents (patient_id, alert_type, last_alert_at DESC);
CREATE INDEX unresolved_incidents_assignee_idx ON unresolved_incidents (assigned_to);

-- Incidents written while this migration runs wait for it (the same lock CREATE TRIGGER takes,
-- taken before the copy), so none is missed between the copy and the triggers.
LOCK TABLE incidents IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO unresolved_incidents (incident_id, patient_id, alert_type, last_alert_at, assigned_to)
SELECT incident_id, patient_id, alert_type, last_alert_at, assigned_to
FROM incidents WHERE status <> 'RESOLVED';

-- An incident is in the table from its creation until it is resolved, with its alarm's last
-- sounding and its assignee as they are now. Changes between unresolved statuses (acknowledged,
-- started, escalated) do not touch it.
CREATE FUNCTION keep_unresolved_incident() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'RESOLVED' THEN
        DELETE FROM unresolved_incidents WHERE incident_id = NEW.incident_id;
    ELSE
        INSERT INTO unresolved_incidents (incident_id, patient_id, alert_type, last_alert_at, assigned_to)
        VALUES (NEW.incident_id, NEW.patient_id, NEW.alert_type, NEW.last_alert_at, NEW.assigned_to)
        ON CONFLICT (incident_id) DO UPDATE
            SET patient_id = EXCLUDED.patient_id, alert_type = EXCLUDED.alert_type,
                last_alert_at = EXCLUDED.last_alert_at, assigned_to = EXCLUDED.assigned_to;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER incidents_unresolved_created AFTER INSERT ON incidents
    FOR EACH ROW WHEN (NEW.status <> 'RESOLVED') EXECUTE FUNCTION keep_unresolved_incident();
CREATE TRIGGER incidents_unresolved_changed AFTER UPDATE ON incidents
    FOR EACH ROW WHEN ((OLD.status = 'RESOLVED') IS DISTINCT FROM (NEW.status = 'RESOLVED')
                       OR OLD.assigned_to IS DISTINCT FROM NEW.assigned_to
                       OR OLD.last_alert_at IS DISTINCT FROM NEW.last_alert_at
                       OR OLD.patient_id IS DISTINCT FROM NEW.patient_id
                       OR OLD.alert_type IS DISTINCT FROM NEW.alert_type)
    EXECUTE FUNCTION keep_unresolved_incident();

-- A clinician's workload counts from it (least_busy_first() and the on-call roster read this view).
CREATE OR REPLACE VIEW clinician_workload AS
SELECT e.employee_id,
       (SELECT count(*) FROM unresolved_incidents u
         WHERE u.assigned_to = e.employee_id)::int AS active_incidents,
       (SELECT max(a.assigned_at) FROM incident_assignments a
         WHERE a.employee_id = e.employee_id) AS last_assigned_at
FROM employees e;

-- The other reads of the active set (the active list, the dashboard's tiles) still go through
-- partial indexes of `incidents`: where autovacuum runs, it analyses the table again after 5,000
-- changed rows instead of a tenth of it, so a flood is seen within one autovacuum_naptime.
ALTER TABLE incidents SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000);

-- The repeat lookup was this index's only reader.
DROP INDEX incidents_unresolved_by_patient_type_idx;
