-- The normal (adult reference) range of each measured alert type, in its `unit`, so a reading is
-- shown against what is normal (typical_min/typical_max bound the alarming value instead).
-- NULL: no measured value, or no meaningful normal range (a seizure's duration, a blood loss).
ALTER TABLE alert_types ADD COLUMN normal_min numeric, ADD COLUMN normal_max numeric;

UPDATE alert_types AS t SET normal_min = r.normal_min, normal_max = r.normal_max
FROM (VALUES
    ('HEART_RATE_HIGH',         60,   100),
    ('HEART_RATE_LOW',          60,   100),
    ('ST_ELEVATION_DETECTED',    0,     1),
    ('O2_SATURATION_LOW',       94,   100),
    ('RESPIRATORY_RATE_HIGH',   12,    20),
    ('APNEA_DETECTED',           0,    10),
    ('GCS_DROP',                15,    15),
    ('BP_HIGH',                 90,   120),
    ('BP_LOW',                  90,   120),
    ('BP_ELEVATED',             90,   120),
    ('GLUCOSE_LOW',             70,   140),
    ('GLUCOSE_HIGH',            70,   140),
    ('POTASSIUM_HIGH',         3.5,   5.0),
    ('SEPSIS_SUSPECTED',       0.5,   2.0),
    ('TEMPERATURE_HIGH',      36.1,  37.2),
    ('FETAL_DISTRESS',         110,   160),
    ('POSTPARTUM_HEMORRHAGE',    0,   499)
) AS r (alert_type, normal_min, normal_max)
WHERE t.alert_type = r.alert_type;

-- The incidents list searched by ward (patients has no index on it; 8 to thousands of rows).
CREATE INDEX patients_ward_idx ON patients (ward);
