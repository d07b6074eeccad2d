-- Escalation deadlines live in the database, not in a scanner's memory: each incident carries its
-- next deadline, so any number of scanners (each claiming due rows with FOR UPDATE SKIP LOCKED)
-- agree on what is due, a restart loses nothing, and the UI can count down to it.
--
-- ack_deadline is the incident's next deadline: while ASSIGNED/REASSIGNED, by when its assignee
-- must acknowledge (else it is escalated); while ACKNOWLEDGED, by when they must start work (else
-- they are paged again); otherwise NULL. It is always written through next_deadline() below, from
-- the platform's clock (healthguard.clock.now(), passed in), never SQL's now().

-- How long an acknowledged incident may wait to be started before its owner is paged again; NULL:
-- never (the lower severities).
ALTER TABLE escalation_policies
    ADD COLUMN start_timeout_seconds integer CHECK (start_timeout_seconds > 0),
    ADD CONSTRAINT escalation_policies_max_level_check CHECK (max_level BETWEEN 0 AND 10);
UPDATE escalation_policies SET start_timeout_seconds = 600 WHERE severity IN ('CRITICAL', 'HIGH');

ALTER TABLE incidents ADD COLUMN ack_deadline timestamptz;

-- The incident's next deadline once it enters `status` at `at`, by its severity's policy.
CREATE FUNCTION next_deadline(severity text, status text, at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN status IN ('ASSIGNED', 'REASSIGNED') THEN at + make_interval(secs => p.ack_timeout_seconds)
        WHEN status = 'ACKNOWLEDGED' THEN at + make_interval(secs => p.start_timeout_seconds)
    END
    FROM escalation_policies p WHERE p.severity = next_deadline.severity
$$;

-- Incidents already waiting when this migration runs keep their deadline.
UPDATE incidents i SET ack_deadline = next_deadline(i.severity, i.status,
        CASE WHEN i.status = 'ACKNOWLEDGED' THEN coalesce(i.acknowledged_at, i.assigned_at)
             ELSE greatest(i.assigned_at, i.escalated_at) END)
WHERE i.status IN ('ASSIGNED', 'REASSIGNED', 'ACKNOWLEDGED');

-- The scanners' question, "what is due now?", is an index range scan.
DROP INDEX incidents_unacknowledged_idx;
CREATE INDEX incidents_deadline_idx ON incidents (ack_deadline) WHERE ack_deadline IS NOT NULL;

-- The oldest unowned incidents, most severe first, for the retrier.
CREATE INDEX incidents_open_idx ON incidents (incident_id) WHERE status = 'OPEN';

-- The moment a clinician signs in (a new session, whichever way it was opened) or marks themselves
-- AVAILABLE, incident management's retrier must offer them the incidents nobody owns, within
-- seconds, not at its next tick. NOTIFY is sent with the transaction that made them available and
-- delivered only once it commits, to every process listening (every incident-management worker):
-- no message can announce a sign-in that was rolled back, and no outbox or queue is needed.
CREATE FUNCTION notify_clinician_available() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('clinician_available', NEW.employee_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_clinician_available AFTER INSERT ON sessions
    FOR EACH ROW EXECUTE FUNCTION notify_clinician_available();
CREATE TRIGGER employees_clinician_available AFTER UPDATE OF availability ON employees
    FOR EACH ROW WHEN (NEW.availability = 'AVAILABLE' AND OLD.availability <> 'AVAILABLE')
    EXECUTE FUNCTION notify_clinician_available();

-- Supervisors edit the escalation policies (PUT/PATCH /api/v1/escalation-policies/<severity>);
-- every change is kept, with who made it and the policy before and after.
CREATE TABLE escalation_policy_changes (
    change_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    severity        text NOT NULL REFERENCES escalation_policies,
    changed_by      text NOT NULL REFERENCES employees,
    before          jsonb NOT NULL,
    after           jsonb NOT NULL,
    changed_at      timestamptz NOT NULL
);
CREATE INDEX escalation_policy_changes_severity_idx ON escalation_policy_changes (severity, change_id);
