-- Device registry: each bedside device or gateway has its own key. Only the SHA-256 of the key is
-- stored (the key is shown once, at creation or rotation). A device may be scoped to one ward or
-- one patient; an unscoped device may raise alarms for any patient. A revoked device keeps its
-- row, so alarms it raised can still be traced to it.
CREATE TABLE devices (
    device_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL,
    key_hash        text NOT NULL UNIQUE,
    ward            text,
    patient_id      text REFERENCES patients,
    created_by      text REFERENCES employees,
    created_at      timestamptz NOT NULL,
    rotated_at      timestamptz,
    revoked_at      timestamptz,
    last_seen_at    timestamptz,
    CONSTRAINT devices_one_scope CHECK (ward IS NULL OR patient_id IS NULL)
);

-- One-time WebSocket tickets: a browser cannot put a header on a WebSocket, and a session token
-- in a URL ends up in logs. A ticket lives seconds, is redeemed once (used_at), and opens a
-- socket for the session that asked for it. Only its SHA-256 is stored.
CREATE TABLE socket_tickets (
    ticket_hash     text PRIMARY KEY,
    session_id      bigint NOT NULL REFERENCES sessions ON DELETE CASCADE,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);
CREATE INDEX socket_tickets_expires_idx ON socket_tickets (expires_at);
