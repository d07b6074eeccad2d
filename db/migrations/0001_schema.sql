-- HealthGuard Ops core schema. Applied once, in order, by `python -m healthguard.migrate`.
-- Identifiers of people and places are the hospital's own codes (N01, P001, CARDIAC_ARREST);
-- events (alerts, incidents, notifications) get bigint identities for keyset pagination.

CREATE TABLE employees (
    employee_id     text PRIMARY KEY,                 -- N01, D01, S01, E01
    login           text NOT NULL UNIQUE,
    name            text NOT NULL,
    role            text NOT NULL,                    -- NURSE, EMERGENCY_DOCTOR, CARDIOLOGIST, ...
    specialty       text,
    tier            smallint NOT NULL DEFAULT 1 CHECK (tier BETWEEN 1 AND 3),
    is_supervisor   boolean NOT NULL DEFAULT false,   -- may reassign incidents and edit schedules
    password_hash   text NOT NULL,                    -- scrypt$N$r$p$salt$hash, never the password
    is_logged_in    boolean NOT NULL DEFAULT false,
    availability    text NOT NULL DEFAULT 'AVAILABLE' CHECK (availability IN ('AVAILABLE', 'AWAY')),
    last_login      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX employees_role_idx ON employees (role);

CREATE TABLE patients (
    patient_id      text PRIMARY KEY,                 -- P001
    name            text NOT NULL,
    date_of_birth   date,
    room            text NOT NULL,
    ward            text NOT NULL,
    status          text NOT NULL DEFAULT 'ADMITTED' CHECK (status IN ('ADMITTED', 'DISCHARGED')),
    admitted_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_types (
    alert_type      text PRIMARY KEY,                 -- CARDIAC_ARREST
    name            text NOT NULL,
    category        text NOT NULL,                    -- CARDIAC, RESPIRATORY, ...
    severity        text NOT NULL CHECK (severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    description     text NOT NULL,
    unit            text,
    typical_min     numeric,
    typical_max     numeric,
    routes_to       text[] NOT NULL CHECK (cardinality(routes_to) > 0)  -- clinical roles, in order
);

CREATE TABLE alerts (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id      text NOT NULL REFERENCES patients,
    alert_type      text NOT NULL REFERENCES alert_types,
    severity        text NOT NULL,
    category        text NOT NULL,
    room            text NOT NULL,
    value           numeric,
    device_id       text,
    source_alarm_id text,
    source          text NOT NULL DEFAULT 'DEVICE' CHECK (source IN ('DEVICE', 'MANUAL', 'SIMULATOR')),
    triggered_by    text REFERENCES employees,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
-- A device that retries the same alarm must not raise it twice.
CREATE UNIQUE INDEX alerts_device_alarm_key ON alerts (device_id, source_alarm_id)
    WHERE device_id IS NOT NULL AND source_alarm_id IS NOT NULL;
CREATE INDEX alerts_received_idx ON alerts (received_at DESC, alert_id DESC);
CREATE INDEX alerts_patient_idx ON alerts (patient_id, alert_id DESC);

-- Transactional outbox: a row here is written in the same transaction as the fact it announces,
-- and deleted by the relay only after the broker confirmed the message.
CREATE TABLE outbox (
    outbox_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue           text NOT NULL,
    message_id      text NOT NULL UNIQUE,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0
);

CREATE TABLE incidents (
    incident_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id            bigint NOT NULL UNIQUE REFERENCES alerts,  -- one incident per alert, even redelivered
    patient_id          text NOT NULL REFERENCES patients,
    alert_type          text NOT NULL REFERENCES alert_types,
    severity            text NOT NULL,
    category            text NOT NULL,
    room                text NOT NULL,
    title               text NOT NULL,
    status              text NOT NULL DEFAULT 'OPEN' CHECK (status IN
                            ('OPEN', 'ASSIGNED', 'ACKNOWLEDGED', 'REASSIGNED', 'IN_PROGRESS', 'RESOLVED')),
    assigned_to         text REFERENCES employees,
    escalation_level    smallint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    assigned_at         timestamptz,
    acknowledged_at     timestamptz,
    started_at          timestamptz,
    resolved_at         timestamptz,
    response_seconds    double precision,   -- OPEN -> ACKNOWLEDGED (MTTA sample)
    resolution_seconds  double precision,   -- OPEN -> RESOLVED (MTTR sample)
    resolution_notes    text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_created_idx ON incidents (created_at DESC, incident_id DESC);
CREATE INDEX incidents_assignee_active_idx ON incidents (assigned_to) WHERE status <> 'RESOLVED';
CREATE INDEX incidents_status_idx ON incidents (status);

CREATE TABLE incident_assignments (
    assignment_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    employee_id     text NOT NULL REFERENCES employees,
    assigned_by     text REFERENCES employees,          -- NULL: assigned by the system
    reason          text NOT NULL CHECK (reason IN ('AUTO', 'CLAIM', 'REASSIGN', 'ESCALATION')),
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz
);
CREATE INDEX incident_assignments_incident_idx ON incident_assignments (incident_id);

-- The audit trail: every change of an incident, by whom, from which status to which.
CREATE TABLE incident_history (
    history_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    actor_id        text REFERENCES employees,          -- NULL: the system
    action          text NOT NULL,
    previous_status text,
    new_status      text,
    note            text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_history_incident_idx ON incident_history (incident_id, history_id);

CREATE TABLE incident_notes (
    note_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    author_id       text NOT NULL REFERENCES employees,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_notes_incident_idx ON incident_notes (incident_id, note_id);

CREATE TABLE notifications (
    notification_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text NOT NULL,
    employee_id     text NOT NULL REFERENCES employees,
    incident_id     bigint REFERENCES incidents ON DELETE SET NULL,
    type            text NOT NULL,
    title           text NOT NULL,
    message         text NOT NULL,
    severity        text,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    read_at         timestamptz,
    UNIQUE (event_id, employee_id)                     -- a redelivered event is stored once
);
CREATE INDEX notifications_employee_idx ON notifications (employee_id, notification_id);

-- Server-side sessions: the browser holds an opaque random token, the database only its hash.
CREATE TABLE sessions (
    session_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id     text NOT NULL REFERENCES employees,
    token_hash      text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    last_seen_at    timestamptz
);
CREATE INDEX sessions_employee_idx ON sessions (employee_id);

CREATE TABLE login_attempts (
    attempt_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login           text NOT NULL,
    succeeded       boolean NOT NULL,
    attempted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_login_idx ON login_attempts (login, attempted_at);

-- Schedules. A shift is a span of local (hospital) time; end <= start means it ends the next day.
CREATE TABLE shifts (
    shift_code      text PRIMARY KEY,                  -- DAY, EVENING, NIGHT, ...
    name            text NOT NULL,
    start_local     time NOT NULL,
    end_local       time NOT NULL
);

-- A rotation: during period k after start_date (period_days long), the member at position p
-- works shift_codes[(k + p) mod n] every day of that period.
CREATE TABLE oncall_rotations (
    rotation_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    role            text NOT NULL,
    start_date      date NOT NULL,
    period_days     integer NOT NULL CHECK (period_days > 0),
    shift_codes     text[] NOT NULL CHECK (cardinality(shift_codes) > 0)
);

CREATE TABLE oncall_rotation_members (
    rotation_id     bigint NOT NULL REFERENCES oncall_rotations ON DELETE CASCADE,
    employee_id     text NOT NULL REFERENCES employees,
    position        integer NOT NULL CHECK (position >= 0),
    PRIMARY KEY (rotation_id, employee_id)
);

-- An override: `employee_id` is on duty from starts_at to ends_at in place of `replaces_id`.
CREATE TABLE oncall_overrides (
    override_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id     text NOT NULL REFERENCES employees,
    replaces_id     text REFERENCES employees,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    reason          text,
    created_by      text REFERENCES employees,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX oncall_overrides_period_idx ON oncall_overrides (starts_at, ends_at);

CREATE TABLE escalation_policies (
    severity            text PRIMARY KEY CHECK (severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    ack_timeout_seconds integer NOT NULL CHECK (ack_timeout_seconds > 0),
    escalate_to_roles   text[] NOT NULL,
    max_level           smallint NOT NULL DEFAULT 3
);
