-- Reaching a clinician off the open tab (issue 21): their contact methods, their notification
-- rules (with per-role defaults that supervisors set), and the delivery ledger, one row per
-- attempt to reach one person about one incident by one method (notification/ledger.py).
-- The contract shared with the app and the badge/SMS/voice channels: /work/notes/REACH-CONTRACT.md.

-- A way to reach a person. `address` is the email, the E.164 phone number, the WCTP recipient id
-- or the Web Push endpoint; `secret` holds what must never be shown to anyone but the sender
-- (the push subscription's p256dh and auth keys). An email is usable once verified with the code
-- sent to it (only its scrypt hash is kept); a push subscription is verified when the browser
-- hands it over. A push service answering 404/410 deletes the row (the ledger keeps its rows).
CREATE TABLE contact_methods (
    contact_method_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id              text NOT NULL REFERENCES employees ON DELETE CASCADE,
    kind                     text NOT NULL CHECK (kind IN ('email', 'push', 'phone', 'badge')),
    label                    text NOT NULL DEFAULT '' CHECK (length(label) <= 100),
    address                  text NOT NULL CHECK (length(address) BETWEEN 1 AND 2048),
    secret                   jsonb,
    verified_at              timestamptz,
    verification_code_hash   text,
    verification_expires_at  timestamptz,
    verification_tries       smallint NOT NULL DEFAULT 0,
    disabled_at              timestamptz,
    disabled_reason          text,
    created_at               timestamptz NOT NULL,
    UNIQUE (employee_id, kind, address)
);
CREATE INDEX contact_methods_by_employee ON contact_methods (employee_id);

-- A step of a person's rules: "push at once, email after 2 minutes if not acknowledged".
-- Personal rules (employee_id) name one method or a kind (every verified method of that kind,
-- e.g. each of their push subscriptions); a role's defaults (role, set by supervisors) name a
-- kind. A person with personal rules for an urgency uses those, otherwise their role's defaults,
-- otherwise the hospital default (notification/rules.py: HOSPITAL_DEFAULT).
-- Urgency HIGH = CRITICAL/HIGH incidents, LOW = MEDIUM/LOW (notification/rules.py: urgency_of).
CREATE TABLE notification_rules (
    rule_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id        text REFERENCES employees ON DELETE CASCADE,
    role               text,
    urgency            text NOT NULL CHECK (urgency IN ('HIGH', 'LOW')),
    delay_seconds      integer NOT NULL CHECK (delay_seconds BETWEEN 0 AND 86400),
    contact_method_id  bigint REFERENCES contact_methods ON DELETE CASCADE,
    kind               text CHECK (kind IN ('email', 'push', 'phone', 'badge')),
    position           smallint NOT NULL CHECK (position >= 0),
    CHECK ((employee_id IS NULL) <> (role IS NULL)),
    CHECK ((contact_method_id IS NULL) <> (kind IS NULL)),
    CHECK (role IS NULL OR kind IS NOT NULL),
    UNIQUE NULLS NOT DISTINCT (employee_id, role, urgency, position)
);

-- The delivery ledger. One row per attempt: its id is the idempotency key (Web Push Topic,
-- email Message-ID, WCTP MessageID). Scheduled when the incident is assigned (due_at =
-- assigned time + the step's delay); `assignment_key` is the event that assigned it, so a
-- redelivered event schedules nothing twice and a later assignment to the same person starts
-- again. Statuses: queued -> sending -> sent | delivered -> read -> acknowledged; failed (for
-- good, fell through), dead_letter (retries exhausted or outcome unknown, fell through),
-- cancelled (acknowledged or no longer theirs before it was due), rejected (declined from it).
-- The ack token (POST /api/v1/channel-ack) is bound to the row: only its SHA-256 is kept.
CREATE TABLE delivery_attempts (
    attempt_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id          bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    employee_id          text NOT NULL REFERENCES employees ON DELETE CASCADE,
    contact_method_id    bigint REFERENCES contact_methods ON DELETE SET NULL,
    channel              text NOT NULL,
    address_hint         text,
    assignment_key       text NOT NULL,
    assigned_at          timestamptz NOT NULL,
    rule_step            smallint NOT NULL,
    step_target          text NOT NULL,     -- the method's id, or its kind when none was usable
    due_at               timestamptz NOT NULL,
    status               text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'delivered',
                             'read', 'failed', 'dead_letter', 'cancelled', 'acknowledged', 'rejected')),
    reason               text,
    provider_ref         text,
    queued_at            timestamptz NOT NULL,
    sending_at           timestamptz,
    sent_at              timestamptz,
    delivered_at         timestamptz,
    read_at              timestamptz,
    failed_at            timestamptz,
    cancelled_at         timestamptz,
    acknowledged_at      timestamptz,
    attempts             smallint NOT NULL DEFAULT 0,
    next_try_at          timestamptz NOT NULL,
    ack_token_hash       text UNIQUE,
    ack_token_expires_at timestamptz,
    ack_token_used_at    timestamptz,
    UNIQUE (incident_id, employee_id, assignment_key, rule_step, step_target)
);
CREATE INDEX delivery_attempts_due ON delivery_attempts (next_try_at) WHERE status = 'queued';
CREATE INDEX delivery_attempts_sending ON delivery_attempts (sending_at) WHERE status = 'sending';
CREATE INDEX delivery_attempts_by_incident ON delivery_attempts (incident_id, employee_id);

-- The audit trail says which channel an acknowledgement came from: 'app' (the web app), or the
-- off-tab channel the notification service acknowledged it through on the person's behalf
-- (push action, email link; issue 23: badge, SMS, voice). NULL for every other change.
ALTER TABLE incident_history
    ADD COLUMN channel text CHECK (channel IN ('app', 'push', 'email', 'sms', 'voice', 'badge'));
