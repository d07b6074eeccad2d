-- HL7 v2 device alarms (IHE PCD-04 Report Alert, ORU^R40) received over MLLP by alert ingestion,
-- and their status reported back to the gateway (PCD-05, ORA^R41). services/alert_ingestion/HL7.md.

-- An alarm whose MDC event code the mapping below does not know is still stored and paged, never
-- dropped, under this type (flagged on the alert: alerts.event_unmapped), HIGH so that someone
-- looks at it; a biomedical engineer then adds the code to mdc_alert_map.
INSERT INTO alert_types (alert_type, name, category, severity, description, unit, typical_min, typical_max, routes_to) VALUES
    ('UNMAPPED_DEVICE_ALARM', 'Unmapped device alarm', 'EQUIPMENT', 'HIGH',
     'A bedside device reported an alarm whose MDC event code is not in the mapping table; check the patient and the device, then have the code mapped.',
     NULL, NULL, NULL, '{EMERGENCY_DOCTOR,NURSE,BIOMEDICAL_ENGINEER}');

-- MDC event (OBX-3 of the alert's event row, ISO/IEEE 11073-10101) -> our alert type. A limit
-- alarm (MDC_EVT_LO_VAL_LT_LIM, MDC_EVT_HI_VAL_GT_LIM) means nothing without the value it is
-- about (the next OBX: MDC_PULS_OXIM_SAT_O2, MDC_ECG_HEART_RATE...), hence parameter_name; a
-- row without one matches any parameter. The event is matched by its numeric code when the row
-- has one, else by its reference id.
CREATE TABLE mdc_alert_map (
    map_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_code      integer,                  -- 196614 (OBX-3.1), when known
    event_name      text NOT NULL,            -- MDC_EVT_ECG_ASYSTOLE (OBX-3.2)
    parameter_name  text,                     -- MDC_PULS_OXIM_SAT_O2; NULL: any
    alert_type      text NOT NULL REFERENCES alert_types
);
CREATE UNIQUE INDEX mdc_alert_map_event_idx ON mdc_alert_map (event_name, coalesce(parameter_name, ''));

INSERT INTO mdc_alert_map (event_code, event_name, parameter_name, alert_type) VALUES
    (196614, 'MDC_EVT_ECG_ASYSTOLE', NULL, 'CARDIAC_ARREST'),
    -- monitors class VF and VT as lethal arrhythmias (latched, highest priority)
    (NULL, 'MDC_EVT_ECG_V_FIB', NULL, 'CARDIAC_ARREST'),
    (NULL, 'MDC_EVT_ECG_V_FIB_TACHY', NULL, 'CARDIAC_ARREST'),
    (NULL, 'MDC_EVT_ECG_V_TACHY', NULL, 'CARDIAC_ARREST'),
    (NULL, 'MDC_EVT_APNEA', NULL, 'APNEA_DETECTED'),
    (NULL, 'MDC_EVT_DESAT', NULL, 'O2_SATURATION_LOW'),
    (NULL, 'MDC_EVT_ECG_BRADY', NULL, 'HEART_RATE_LOW'),
    (NULL, 'MDC_EVT_ECG_SINUS_BRADY', NULL, 'HEART_RATE_LOW'),
    (NULL, 'MDC_EVT_ECG_BRADY_EXTREME', NULL, 'HEART_RATE_LOW'),
    (NULL, 'MDC_EVT_ECG_TACHY', NULL, 'HEART_RATE_HIGH'),
    (NULL, 'MDC_EVT_ECG_SINUS_TACHY', NULL, 'HEART_RATE_HIGH'),
    (NULL, 'MDC_EVT_ECG_TACHY_EXTREME', NULL, 'HEART_RATE_HIGH'),
    (NULL, 'MDC_EVT_ECG_ATR_FIB', NULL, 'ARRHYTHMIA_DETECTED'),
    (NULL, 'MDC_EVT_ECG_CARD_BEAT_RATE_IRREG', NULL, 'ARRHYTHMIA_DETECTED'),
    (NULL, 'MDC_EVT_ECG_ST_ELEV', NULL, 'ST_ELEVATION_DETECTED'),
    (NULL, 'MDC_EVT_LEAD_DISCONN', NULL, 'SENSOR_DISCONNECTED'),
    (NULL, 'MDC_EVT_OCCL', NULL, 'INFUSION_PUMP_OCCLUSION'),
    (NULL, 'MDC_EVT_VENT_DISCONN', NULL, 'VENTILATOR_DISCONNECT'),
    (NULL, 'MDC_EVT_LO_VAL_LT_LIM', 'MDC_PULS_OXIM_SAT_O2', 'O2_SATURATION_LOW'),
    (NULL, 'MDC_EVT_LO_VAL_LT_LIM', 'MDC_ECG_HEART_RATE', 'HEART_RATE_LOW'),
    (NULL, 'MDC_EVT_LO_VAL_LT_LIM', 'MDC_PULS_OXIM_PULS_RATE', 'HEART_RATE_LOW'),
    (NULL, 'MDC_EVT_HI_VAL_GT_LIM', 'MDC_ECG_HEART_RATE', 'HEART_RATE_HIGH'),
    (NULL, 'MDC_EVT_HI_VAL_GT_LIM', 'MDC_PULS_OXIM_PULS_RATE', 'HEART_RATE_HIGH'),
    (NULL, 'MDC_EVT_HI_VAL_GT_LIM', 'MDC_RESP_RATE', 'RESPIRATORY_RATE_HIGH'),
    (NULL, 'MDC_EVT_HI_VAL_GT_LIM', 'MDC_TTHOR_RESP_RATE', 'RESPIRATORY_RATE_HIGH'),
    (NULL, 'MDC_EVT_HI_VAL_GT_LIM', 'MDC_TEMP_BODY', 'TEMPERATURE_HIGH');

-- A sending gateway (the PCD Alert Reporter), known by MSH-3/MSH-4 and tied to a device of the
-- registry: its key (sent in MSH-8) or a source address in allowed_addresses authenticates a
-- message, its scope limits the patients, revoking the device stops it. status_host/port is
-- where PCD-05 status goes (none: the gateway wants no status).
CREATE TABLE hl7_gateways (
    gateway_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id           bigint NOT NULL REFERENCES devices,
    sending_application text NOT NULL,        -- MSH-3, first component
    sending_facility    text NOT NULL DEFAULT '',  -- MSH-4, first component
    allowed_addresses   cidr[] NOT NULL DEFAULT '{}',
    status_host         text,
    status_port         integer CHECK (status_port BETWEEN 1 AND 65535),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sending_application, sending_facility),
    CHECK ((status_host IS NULL) = (status_port IS NULL))
);

-- What an HL7 alarm says beyond the JSON alarm (NULL for those): the MDC event as received, its
-- phase (start, continue, end...), state (active, latched, inactive), priority (PH, PM, PL), the
-- observed value's unit, where the device said it is, which device and channel, and when the
-- device reported the alarm ended (a clinician still resolves the incident).
ALTER TABLE alerts
    ADD COLUMN hl7_gateway_id    bigint REFERENCES hl7_gateways,
    ADD COLUMN event_code        text,
    ADD COLUMN event_unmapped    boolean NOT NULL DEFAULT false,
    ADD COLUMN event_phase       text,
    ADD COLUMN event_state       text,
    ADD COLUMN event_priority    text,
    ADD COLUMN unit              text,
    ADD COLUMN device_location   text,
    ADD COLUMN equipment         text,
    ADD COLUMN channel           text,
    ADD COLUMN device_cleared_at timestamptz;

-- PCD-05 outbox: one row per (alert, status) to report to its gateway. Written by a trigger in
-- the same transaction as the incident_history row that records the change, so a status is
-- never lost nor reported for a change that rolled back, and incident management needs no
-- knowledge of HL7. Alert ingestion's worker sends the rows (hl7_status.py), retrying with a
-- growing delay until the gateway acknowledges.
CREATE TABLE hl7_status_reports (
    report_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES alerts,
    incident_id     bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    history_id      bigint NOT NULL,
    status          text NOT NULL CHECK (status IN ('DELIVERED', 'ACCEPTED', 'RESOLVED')),
    employee_id     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,              -- NULL: at once (set by the platform clock on a failure)
    last_error      text,
    sent_at         timestamptz,
    UNIQUE (alert_id, history_id)
);
CREATE INDEX hl7_status_reports_unsent_idx ON hl7_status_reports (report_id) WHERE sent_at IS NULL;

CREATE FUNCTION queue_hl7_status_report() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reported text := CASE
        WHEN NEW.action IN ('ASSIGNED', 'REASSIGNED', 'CLAIMED', 'ESCALATED') THEN 'DELIVERED'
        WHEN NEW.action = 'ACKNOWLEDGED' THEN 'ACCEPTED'
        WHEN NEW.action = 'RESOLVED' THEN 'RESOLVED'
    END;
BEGIN
    IF reported IS NULL THEN
        RETURN NEW;
    END IF;
    INSERT INTO hl7_status_reports (alert_id, incident_id, history_id, status, employee_id)
    SELECT a.alert_id, i.incident_id, NEW.history_id, reported, i.assigned_to
    -- The incident's own alert and its repeats, each found by its key: an OR in the join's
    -- condition made every history row read the whole alerts table.
    FROM incidents i
    CROSS JOIN LATERAL (SELECT i.alert_id
                        UNION
                        SELECT l.alert_id FROM incident_alerts l WHERE l.incident_id = i.incident_id) mine
    JOIN alerts a ON a.alert_id = mine.alert_id
    JOIN hl7_gateways g ON g.gateway_id = a.hl7_gateway_id AND g.status_host IS NOT NULL
    WHERE i.incident_id = NEW.incident_id
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('hl7_status', '');
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER incident_history_hl7_status AFTER INSERT ON incident_history
    FOR EACH ROW EXECUTE FUNCTION queue_hl7_status_report();
