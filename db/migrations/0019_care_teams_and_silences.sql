-- Care teams and silences (issue 22). incident_management/care_teams.py and silences.py own the
-- rules; routing.py reads the care team of a batch's patients in one query.

-- Who cares for whom this shift: a patient's nurse (and optionally doctor), named by the ward's
-- charge nurse or a supervisor. A row is never deleted: history is who cared for whom, when.
-- It runs from starts_at to ends_at (the end of the carer's shift, from the rota), or until
-- ended_at when it ends early (handover, transfer, discharge, replaced by another assignment).
CREATE TABLE care_team_assignments (
    care_assignment_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id          text NOT NULL REFERENCES patients,
    ward                text NOT NULL,              -- the patient's ward when assigned
    employee_id         text NOT NULL REFERENCES employees,
    care_role           text NOT NULL CHECK (care_role IN ('NURSE', 'DOCTOR')),
    assigned_by         text NOT NULL REFERENCES employees,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    ended_at            timestamptz,
    end_reason          text CHECK (end_reason IN ('REPLACED', 'HANDOVER', 'TRANSFER', 'DISCHARGE', 'ENDED')),
    CHECK (ends_at > starts_at)
);
-- Routing reads the current team of a batch's patients, and the ward's staff, at every alarm.
CREATE INDEX care_team_assignments_patient_idx ON care_team_assignments (patient_id, care_role, ends_at)
    WHERE ended_at IS NULL;
CREATE INDEX care_team_assignments_ward_idx ON care_team_assignments (ward, ends_at) WHERE ended_at IS NULL;
CREATE INDEX care_team_assignments_employee_idx ON care_team_assignments (employee_id, ends_at)
    WHERE ended_at IS NULL;

-- The charge nurse of a ward for a shift: a nurse on duty by the rota, named by a supervisor,
-- until the end of their shift (ends_at) or until another is named (ended_at).
CREATE TABLE ward_charge_nurses (
    charge_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ward            text NOT NULL,
    employee_id     text NOT NULL REFERENCES employees,
    assigned_by     text NOT NULL REFERENCES employees,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    ended_at        timestamptz,
    CHECK (ends_at > starts_at)
);
CREATE INDEX ward_charge_nurses_ward_idx ON ward_charge_nurses (ward, ends_at) WHERE ended_at IS NULL;

-- A patient transferred to another ward or discharged leaves their care team at once: a current
-- assignment is one whose ward is still the patient's ward and whose patient is ADMITTED
-- (care_teams.CURRENT), so the catalogue's change needs no hook here. care_teams.py records the
-- end (TRANSFER, DISCHARGE) with its clock when it next reads the ward.

-- How the owner was chosen ("why this person"): kept on the assignment, beside its reason.
ALTER TABLE incident_assignments
    ADD COLUMN routed_as text CHECK (routed_as IN
        ('CARE_TEAM', 'CHARGE_NURSE', 'WARD_POOL', 'ROLE_POOL', 'FALLBACK')),
    ADD COLUMN why text;

-- Told, not owner: the patient's nurse hears of an alarm a nurse may not own (a cardiac arrest
-- goes to a doctor). A record of its own, never an assignment.
CREATE TABLE incident_told (
    incident_id     bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    employee_id     text NOT NULL REFERENCES employees,
    reason          text NOT NULL,
    told_at         timestamptz NOT NULL,
    PRIMARY KEY (incident_id, employee_id)
);

-- The patient's nurse hears of low SpO2 first (probe, airway, oxygen are nursing's first
-- response), so a nurse may own it: NURSE joins its roles last, so a ward without care teams
-- still routes it to the emergency doctor first, as before.
UPDATE alert_types SET routes_to = routes_to || '{NURSE}'::text[]
WHERE alert_type = 'O2_SATURATION_LOW' AND NOT 'NURSE' = ANY(routes_to);

-- Silences: alarms a ward already knows about, stored and shown but paging nobody, until the
-- silence ends. What it matches: any combination of patient, device, alert type and ward (at
-- least one). The limits (silences.py): a CRITICAL type only by device, never by ward or type,
-- and only by a supervisor; at most 8 hours; never an incident already open.
CREATE TABLE silences (
    silence_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id      text REFERENCES patients,
    device_id       text,
    alert_type      text REFERENCES alert_types,
    ward            text,
    reason          text NOT NULL CHECK (reason IN
                        ('IN_SURGERY', 'TRANSFER', 'DEVICE_CLEANING', 'DEVICE_MAINTENANCE',
                         'KNOWN_ARTEFACT', 'OTHER')),
    note            text,
    created_by      text NOT NULL REFERENCES employees,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    ended_at        timestamptz,
    ended_by        text REFERENCES employees,   -- NULL with ended_at: expired, or the patient returned
    end_reason      text CHECK (end_reason IN ('EXPIRED', 'ENDED', 'PATIENT_RETURNED')),
    CHECK (num_nonnulls(patient_id, device_id, alert_type, ward) > 0),
    CHECK (ends_at > starts_at AND ends_at <= starts_at + interval '8 hours')
);
CREATE INDEX silences_running_idx ON silences (ends_at) WHERE ended_at IS NULL;

CREATE TABLE silence_audit (
    audit_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    silence_id      bigint NOT NULL REFERENCES silences,
    action          text NOT NULL CHECK (action IN ('CREATED', 'EDITED', 'ENDED', 'EXPIRED', 'PATIENT_RETURNED')),
    actor_id        text REFERENCES employees,      -- NULL: the system (expiry)
    at              timestamptz NOT NULL,
    silence         jsonb NOT NULL                  -- the silence as the action left it
);
CREATE INDEX silence_audit_silence_idx ON silence_audit (silence_id, audit_id);

-- The silence holding an OPEN incident: nobody is paged for it until the silence ends.
ALTER TABLE incidents ADD COLUMN silenced_by bigint REFERENCES silences;
CREATE INDEX incidents_silenced_idx ON incidents (silenced_by) WHERE silenced_by IS NOT NULL;
