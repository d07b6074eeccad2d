-- A silent device that monitors no patient (a ward's central station, a gateway, a device of the
-- whole hospital) is an alarm too (issue 24): DEVICE_SILENT, MEDIUM, owned by a biomedical
-- engineer, acknowledged and resolved like any incident. Until now an alert and its incident
-- belonged to a patient, so such a silence was only a row of device_silences that paged nobody.
--
-- An alert (and its incident) now belongs to a patient, or else to a device of the registry: it
-- names the device (device_name) and, when the device serves a ward, that ward. Not "a patient or
-- a ward": a device registered for no ward (any patient of the hospital) must page someone as well,
-- and its place is the device itself. A patient's alert keeps ward NULL: its ward is the patient's
-- (read from patients, never copied). Such an alert has no room either.
ALTER TABLE alerts
    ALTER COLUMN patient_id DROP NOT NULL,
    ALTER COLUMN room DROP NOT NULL,
    ADD COLUMN ward        text,
    ADD COLUMN device_name text,
    ADD CONSTRAINT alerts_patient_or_device CHECK (
        CASE WHEN patient_id IS NOT NULL THEN room IS NOT NULL AND ward IS NULL
             ELSE device_name IS NOT NULL END);

-- The incident copies the alert's patient and room (0001); a device's incident names no patient,
-- and reads the device's name and ward from its alert.
ALTER TABLE incidents
    ALTER COLUMN patient_id DROP NOT NULL,
    ALTER COLUMN room DROP NOT NULL;

-- Repeats are looked up by patient and alert type (0013); a device's alarm is never a repeat (one
-- device_silences row is open per device, and the incident ends with it), so it carries no key.
ALTER TABLE unresolved_incidents ALTER COLUMN patient_id DROP NOT NULL;

-- The device's silence knows its incident's alert (alert_id) in either case now.
COMMENT ON COLUMN device_silences.alert_id IS 'the DEVICE_SILENT alert: of the patient, or of the device';
