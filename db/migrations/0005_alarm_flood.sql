-- Clinical safety under an alarm flood (issue 9).

-- Correlation: a repeat of an alarm (same patient and alert type) while its incident is not
-- RESOLVED and within the correlation window attaches to that incident instead of paging again.
-- The incident's own alert stays incidents.alert_id; every repeat is linked here, once (the
-- primary key makes a redelivered repeat harmless).
ALTER TABLE incidents
    ADD COLUMN alert_count integer NOT NULL DEFAULT 1 CHECK (alert_count >= 1),
    ADD COLUMN last_alert_at timestamptz;
UPDATE incidents SET last_alert_at = created_at;
ALTER TABLE incidents
    ALTER COLUMN last_alert_at SET NOT NULL,
    ALTER COLUMN last_alert_at SET DEFAULT now();

CREATE TABLE incident_alerts (
    alert_id        bigint PRIMARY KEY REFERENCES alerts,
    incident_id     bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    correlated_at   timestamptz NOT NULL
);
CREATE INDEX incident_alerts_incident_idx ON incident_alerts (incident_id);

-- The lookup of a repeat's incident: the newest unresolved one of the patient and alert type.
CREATE INDEX incidents_unresolved_by_patient_type_idx ON incidents (patient_id, alert_type, last_alert_at DESC)
    WHERE status <> 'RESOLVED';

-- Flood limits: a fixed-window counter per caller (a device key, a clinician) and window start,
-- shared by every web process of every instance (an in-process bucket would allow the limit once
-- per gunicorn worker).
CREATE TABLE rate_limit_windows (
    bucket          text NOT NULL,          -- 'device:<key digest>', 'manual:<employee_id>'
    window_start    timestamptz NOT NULL,
    hits            integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
