-- Accountability (issue 24): who read which patient's data (the PHI access log), an audit trail
-- nobody can quietly edit (hash chains), and devices that go silent (heartbeats).

-- ---------------------------------------------------------------------------- PHI access log
-- One row per patient per API answer that carried that patient's identifying data: who (an
-- employee, a device of the registry, or a service), which patient, which route, when (the
-- platform's clock), from which address, and why ('treatment', or 'break-glass' with a reason).
-- Partitioned by month, so retention drops a month at a time (python -m healthguard.audit
-- retention) instead of deleting rows.
CREATE TABLE phi_access_log (
    access_id       bigint GENERATED ALWAYS AS IDENTITY,
    accessed_at     timestamptz NOT NULL,
    patient_id      text NOT NULL,             -- no foreign key: the log outlives the patient row
    employee_id     text,                      -- the signed-in clinician, or
    device_id       bigint,                    -- the device of the registry (NULL with a bootstrap key)
    accessor_kind   text NOT NULL CHECK (accessor_kind IN ('EMPLOYEE', 'DEVICE', 'SERVICE')),
    route           text NOT NULL,             -- GET /api/v1/incidents/<int:incident_id>
    address         inet,
    purpose         text NOT NULL CHECK (purpose IN ('treatment', 'break-glass')),
    reason          text,                      -- typed by the clinician, for break-glass
    -- The hash chain (sealed by seal_audit_chains(), below): position, previous row's hash, own hash.
    chain_seq       bigint,
    prev_hash       bytea,
    row_hash        bytea,
    PRIMARY KEY (access_id, accessed_at),
    CHECK (purpose <> 'break-glass' OR reason IS NOT NULL)
) PARTITION BY RANGE (accessed_at);
CREATE INDEX phi_access_log_patient_idx ON phi_access_log (patient_id, accessed_at DESC);
CREATE INDEX phi_access_log_employee_idx ON phi_access_log (employee_id, accessed_at DESC);
-- No index on the time alone: a search by time is pruned to its months, and read newest first by
-- the primary key; every index is one more insert on every read of patient data.
CREATE INDEX phi_access_log_unsealed_idx ON phi_access_log (access_id) WHERE row_hash IS NULL;
CREATE INDEX phi_access_log_chain_idx ON phi_access_log (chain_seq) WHERE chain_seq IS NOT NULL;
-- A row whose month has no partition yet still lands somewhere: never a failed read.
CREATE TABLE phi_access_log_default PARTITION OF phi_access_log DEFAULT;

-- Append-only for the services: they INSERT and (privacy officers' routes) SELECT, never UPDATE,
-- DELETE or TRUNCATE. Enforced by the grants, not by the code: migration 0011's default
-- privileges gave them all four on every new table, so they are taken back here, on the parent
-- and on every partition (a partition named directly is checked on its own grants).
REVOKE ALL ON phi_access_log, phi_access_log_default FROM healthguard_app;
GRANT SELECT, INSERT ON phi_access_log, phi_access_log_default TO healthguard_app;

-- The month's partition, made when missing (by the services' worker, ahead of time; as the
-- schema's owner, hence SECURITY DEFINER). A month some rows already went to the default
-- partition for is left there (attaching it would fail); retention exports those too.
CREATE FUNCTION phi_access_log_ensure_partition(month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    partition text := format('phi_access_log_y%sm%s', to_char(first_day, 'YYYY'), to_char(first_day, 'MM'));
BEGIN
    IF to_regclass(partition) IS NOT NULL THEN
        RETURN partition;
    END IF;
    IF EXISTS (SELECT 1 FROM phi_access_log_default
               WHERE accessed_at >= first_day AND accessed_at < first_day + interval '1 month') THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF phi_access_log FOR VALUES FROM (%L) TO (%L)',
                   partition, first_day, first_day + interval '1 month');
    EXECUTE format('REVOKE ALL ON %I FROM healthguard_app', partition);
    EXECUTE format('GRANT SELECT, INSERT ON %I TO healthguard_app', partition);
    RETURN partition;
EXCEPTION WHEN duplicate_table THEN
    RETURN partition;  -- another worker made it a moment ago
END $$;

-- ---------------------------------------------------------------------------- privacy officers
-- May read the PHI access log (GET /api/v1/privacy/access-log) and nobody else may. A privacy
-- officer is not a clinician: never on a rota, never in a list of clinicians.
ALTER TABLE employees ADD COLUMN is_privacy_officer boolean NOT NULL DEFAULT false;
INSERT INTO employees (employee_id, login, name, role, specialty, tier, is_supervisor, password_hash,
                       is_privacy_officer)
VALUES ('PRV01', 'PRV01', 'Grace Okafor', 'PRIVACY_OFFICER', 'Privacy Office', 1, false, '!', true)
ON CONFLICT (employee_id) DO NOTHING;

-- ---------------------------------------------------------------------------- hash chains
-- The incident audit trail and the PHI access log are each a hash chain: a row's row_hash is
-- SHA-256(previous row's row_hash || the row's content), so changing, inserting or deleting a row
-- afterwards breaks every link after it (python -m healthguard.audit verify). Rows are written
-- unsealed (no lock on a read path: every answer with patient data inserts into the log) and
-- sealed in order by seal_audit_chains(), which the worker runs every few seconds, one sealer at a
-- time (an advisory lock): the chain cannot fork however many writers there are.
ALTER TABLE incident_history
    ADD COLUMN chain_seq bigint,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN row_hash  bytea;
CREATE INDEX incident_history_unsealed_idx ON incident_history (history_id) WHERE row_hash IS NULL;
CREATE UNIQUE INDEX incident_history_chain_idx ON incident_history (chain_seq) WHERE chain_seq IS NOT NULL;
-- The audit trail is append-only for the services too (nothing in them updates or deletes it).
REVOKE UPDATE, DELETE, TRUNCATE ON incident_history FROM healthguard_app;

-- Each chain's head: its last sealed position and hash. The anchor is where the chain starts
-- now (retention dropped what was before it: the hash the first remaining row must follow).
CREATE TABLE audit_chain_heads (
    chain           text PRIMARY KEY CHECK (chain IN ('incident_history', 'phi_access_log')),
    seq             bigint NOT NULL DEFAULT 0,
    head_hash       bytea,
    anchor_seq      bigint NOT NULL DEFAULT 0,
    anchor_hash     bytea,
    sealed_at       timestamptz
);
INSERT INTO audit_chain_heads (chain) VALUES ('incident_history'), ('phi_access_log');

-- The head as it was written out, periodically (and exported as a gauge): a rewrite of history
-- shows as a head that no longer matches what was published.
CREATE TABLE audit_chain_checkpoints (
    checkpoint_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain           text NOT NULL REFERENCES audit_chain_heads,
    seq             bigint NOT NULL,
    head_hash       bytea,
    written_at      timestamptz NOT NULL,
    note            text
);
REVOKE ALL ON audit_chain_heads, audit_chain_checkpoints FROM healthguard_app;
GRANT SELECT ON audit_chain_heads, audit_chain_checkpoints TO healthguard_app;

-- A row's content as hashed: a JSON array of its columns (times as Unix epochs, so the session's
-- time zone cannot change the text). One definition, read by the sealer and by verify.
CREATE FUNCTION audit_content(h incident_history) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_to(json_build_array(h.history_id, h.incident_id, h.actor_id, h.action,
                                       h.previous_status, h.new_status, h.note,
                                       extract(epoch FROM h.created_at))::text, 'UTF8')
$$;
CREATE FUNCTION audit_content(l phi_access_log) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_to(json_build_array(l.access_id, extract(epoch FROM l.accessed_at), l.patient_id,
                                       l.employee_id, l.device_id, l.accessor_kind, l.route,
                                       host(l.address), l.purpose, l.reason)::text, 'UTF8')
$$;
CREATE FUNCTION audit_link(previous bytea, content bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(coalesce(previous, ''::bytea) || content)
$$;

-- Seal up to `batch` unsealed rows of each chain, in the order they were written (committed
-- rows only: a row committed late is sealed later, further down the chain). `at`: the
-- platform's clock. Returns the rows sealed per chain.
CREATE FUNCTION seal_audit_chains(at timestamptz, batch integer DEFAULT 5000)
RETURNS TABLE (chain text, sealed integer, seq bigint, head_hash bytea)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    head record;
    entry incident_history;
    access phi_access_log;
    n integer;
    link bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(4847, 24);  -- "HG", issue 24: one sealer at a time
    -- incident_history
    SELECT * INTO head FROM audit_chain_heads h WHERE h.chain = 'incident_history' FOR UPDATE;
    n := 0; link := head.head_hash;
    FOR entry IN SELECT * FROM incident_history WHERE row_hash IS NULL ORDER BY history_id LIMIT batch LOOP
        n := n + 1;
        UPDATE incident_history SET chain_seq = head.seq + n, prev_hash = link,
                                    row_hash = audit_link(link, audit_content(entry))
        WHERE history_id = entry.history_id RETURNING row_hash INTO link;
    END LOOP;
    IF n > 0 THEN
        UPDATE audit_chain_heads h SET seq = head.seq + n, head_hash = link, sealed_at = at
        WHERE h.chain = 'incident_history';
    END IF;
    chain := 'incident_history'; sealed := n; seq := head.seq + n; head_hash := link;
    RETURN NEXT;
    -- phi_access_log
    SELECT * INTO head FROM audit_chain_heads h WHERE h.chain = 'phi_access_log' FOR UPDATE;
    n := 0; link := head.head_hash;
    FOR access IN SELECT * FROM phi_access_log WHERE row_hash IS NULL ORDER BY access_id LIMIT batch LOOP
        n := n + 1;
        UPDATE phi_access_log SET chain_seq = head.seq + n, prev_hash = link,
                                  row_hash = audit_link(link, audit_content(access))
        WHERE access_id = access.access_id AND accessed_at = access.accessed_at RETURNING row_hash INTO link;
    END LOOP;
    IF n > 0 THEN
        UPDATE audit_chain_heads h SET seq = head.seq + n, head_hash = link, sealed_at = at
        WHERE h.chain = 'phi_access_log';
    END IF;
    chain := 'phi_access_log'; sealed := n; seq := head.seq + n; head_hash := link;
    RETURN NEXT;
END $$;

-- Write each chain's head out (the periodic checkpoint); as the owner, like the sealer.
CREATE FUNCTION checkpoint_audit_chains(at timestamptz) RETURNS SETOF audit_chain_checkpoints
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO audit_chain_checkpoints (chain, seq, head_hash, written_at)
    SELECT chain, seq, head_hash, at FROM audit_chain_heads
    RETURNING *
$$;

-- ---------------------------------------------------------------------------- heartbeats
-- A device (or the HL7 gateway it is) may be expected to be heard every heartbeat_interval:
-- any alarm, any HL7 message on its connection, or POST /api/v1/devices/me/heartbeat is a beat.
-- silent_after is the deadline (last beat + 2 intervals), kept in the database like escalation's
-- (0006): the checker asks "which are due?" with an index scan, and a restart loses nothing.
ALTER TABLE devices
    ADD COLUMN heartbeat_interval interval CHECK (heartbeat_interval >= interval '1 second'),
    ADD COLUMN last_beat_at       timestamptz,
    ADD COLUMN silent_after       timestamptz;
CREATE INDEX devices_silent_after_idx ON devices (silent_after) WHERE silent_after IS NOT NULL;

-- One row per silence: when it began (the last beat), when it was alarmed, when the device was
-- heard again and how long it was silent. At most one open silence per device.
CREATE TABLE device_silences (
    silence_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id       bigint NOT NULL REFERENCES devices,
    is_gateway      boolean NOT NULL,
    ward            text,
    patient_id      text REFERENCES patients,
    severity        text NOT NULL CHECK (severity IN ('HIGH', 'MEDIUM')),
    silent_since    timestamptz NOT NULL,     -- the last beat heard
    alarmed_at      timestamptz NOT NULL,
    alert_id        bigint REFERENCES alerts, -- the DEVICE_SILENT alarm, when it has a patient
    heard_at        timestamptz,
    silent_seconds  double precision
);
CREATE UNIQUE INDEX device_silences_open_idx ON device_silences (device_id) WHERE heard_at IS NULL;
CREATE INDEX device_silences_patient_idx ON device_silences (patient_id) WHERE heard_at IS NULL;

-- The technical alarm, as routing data: to the biomedical engineers and the patient's nurse.
INSERT INTO alert_types (alert_type, name, category, severity, description, unit, typical_min, typical_max, routes_to) VALUES
    ('DEVICE_SILENT', 'Device silent', 'EQUIPMENT', 'HIGH',
     'A monitoring device or gateway missed two expected heartbeats: its alarms may not be reaching anyone. Check the patient and the connection.',
     NULL, NULL, NULL, '{BIOMEDICAL_ENGINEER,NURSE}');

-- A device was heard (an alarm with its key, an HL7 message on its gateway's connection, or an
-- explicit heartbeat) at `at`: its last beat, and its next deadline when it has an interval.
-- Written at most every quarter interval (a minute at most, as last_seen_at was), not a row
-- update per alarm of a busy gateway. The one definition of a beat, for every caller.
CREATE FUNCTION device_heard(device bigint, at timestamptz) RETURNS boolean
LANGUAGE sql AS $$
    UPDATE devices SET last_seen_at = at, last_beat_at = at, silent_after = at + 2 * heartbeat_interval
    WHERE device_id = device
      AND (last_beat_at IS NULL OR last_beat_at > at
           OR last_beat_at <= at - least(interval '1 minute', coalesce(heartbeat_interval / 4, interval '1 minute')))
    RETURNING true
$$;
