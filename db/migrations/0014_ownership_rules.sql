-- Who may own an alarm (incident_management/routing.py applies these rules; the database keeps
-- the facts they need and refuses what no rule may allow).

-- Which roles are clinical. A CRITICAL alarm never goes to a non-clinical role, whatever a
-- supervisor says: a biomedical engineer cannot run a cardiac arrest. A role missing here counts
-- as non-clinical (routing.py), so a new role must be declared before it may own a CRITICAL alarm.
CREATE TABLE staff_roles (
    role        text PRIMARY KEY,
    is_clinical boolean NOT NULL
);
INSERT INTO staff_roles (role, is_clinical) VALUES
    ('NURSE', true), ('EMERGENCY_DOCTOR', true), ('CARDIOLOGIST', true), ('PULMONOLOGIST', true),
    ('NEUROLOGIST', true), ('SURGEON', true), ('OBSTETRICIAN', true), ('PSYCHIATRIST', true),
    ('ENDOCRINOLOGIST', true), ('INFECTIOUS_DISEASE_SPECIALIST', true),
    ('BIOMEDICAL_ENGINEER', false);

-- A declined alarm moves on (DECLINE), and a supervisor's assignment outside the routed roles
-- keeps the reason they gave (the audit trail names it too).
ALTER TABLE incident_assignments DROP CONSTRAINT incident_assignments_reason_check;
ALTER TABLE incident_assignments
    ADD CONSTRAINT incident_assignments_reason_check
        CHECK (reason IN ('AUTO', 'CLAIM', 'REASSIGN', 'ESCALATION', 'DECLINE')),
    ADD COLUMN override_reason text;

-- How the current assignee got the incident (the reason of its open assignment), kept on the
-- incident so a list shows "Escalated" without a join per row.
ALTER TABLE incidents
    ADD COLUMN assignment_reason text
        CHECK (assignment_reason IN ('AUTO', 'CLAIM', 'REASSIGN', 'ESCALATION', 'DECLINE')),
    -- Set when the incident ran out of escalation levels unacknowledged and every last-resort
    -- clinician on duty was paged; cleared when someone takes it. (An OPEN incident is unowned
    -- since its creation: incidents.incident_json says so without a column.)
    ADD COLUMN unowned_since timestamptz,
    -- Who that last step pages, until someone takes it.
    ADD COLUMN last_resort_paged text[] NOT NULL DEFAULT '{}';
UPDATE incidents i SET assignment_reason = a.reason
FROM incident_assignments a
WHERE a.incident_id = i.incident_id AND a.ended_at IS NULL AND i.assigned_to = a.employee_id;

-- Escalation must escalate at least once, and a CRITICAL alarm may wait at most five minutes for
-- an acknowledgement (the policy routes refuse these with 422 first).
ALTER TABLE escalation_policies DROP CONSTRAINT escalation_policies_max_level_check;
ALTER TABLE escalation_policies
    ADD CONSTRAINT escalation_policies_max_level_check CHECK (max_level BETWEEN 1 AND 10),
    ADD CONSTRAINT escalation_policies_critical_ack_check
        CHECK (severity <> 'CRITICAL' OR ack_timeout_seconds <= 300);

-- The incidents list's default order: active before resolved; among the active, most severe
-- first, those waiting for an acknowledgement before those taken on, oldest first; the resolved
-- newest first. One sortable number, so a page is an index range whatever the history's size:
-- band * 10^12 + seconds since 1970 (resolved: minus them). The severities and statuses are
-- healthguard/domain.py's, in its order.
CREATE FUNCTION incident_list_priority(status text, severity text, created_at timestamptz)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN status = 'RESOLVED'
                THEN 9 * 1e12 - extract(epoch FROM created_at - timestamptz '1970-01-01 00:00:00+00')
                ELSE (2 * coalesce(array_position('{CRITICAL,HIGH,MEDIUM,LOW}'::text[], severity) - 1, 3)
                      + CASE WHEN status IN ('OPEN', 'ASSIGNED', 'REASSIGNED') THEN 0 ELSE 1 END) * 1e12
                     + extract(epoch FROM created_at - timestamptz '1970-01-01 00:00:00+00')
           END
$$;
CREATE INDEX incidents_list_priority_idx
    ON incidents (incident_list_priority(status, severity, created_at), incident_id);

-- Least busy first is defined once, in Python (healthguard/workload.py), for the on-call
-- service's answer and incident management's ranking alike; the SQL copy goes.
DROP FUNCTION least_busy_first(text[]);
