"""What an alert refers to: the admitted patients and the alert type catalogue (seeded in
db/migrations/0002_seed.sql). An alert's room, severity and category come from here, never from
whoever reports the alarm."""
import random

PATIENT_COLUMNS = "patient_id, name, date_of_birth, room, ward, status, admitted_at"
# typical_min/max are numeric in the table; as floats they serialize as JSON numbers.
ALERT_TYPE_COLUMNS = """alert_type, name, category, severity, description, unit,
    typical_min::float AS typical_min, typical_max::float AS typical_max, routes_to"""


def list_patients(cur, *, status: str | None = None) -> list[dict]:
    cur.execute(f"""
        SELECT {PATIENT_COLUMNS}
        FROM patients
        WHERE %(status)s::text IS NULL OR status = %(status)s
        ORDER BY patient_id
    """, {"status": status})  # noqa: S608 (a constant column list)
    return cur.fetchall()


def get_patient(cur, *, patient_id: str) -> dict | None:
    """One patient (GET /api/v1/patients/<id>, the patient's page)."""
    cur.execute(f"SELECT {PATIENT_COLUMNS} FROM patients WHERE patient_id = %s", (patient_id,))  # noqa: S608
    return cur.fetchone()


def random_admitted_patient(cur) -> dict:
    cur.execute(f"""
        SELECT {PATIENT_COLUMNS}
        FROM patients
        WHERE status = 'ADMITTED'
        ORDER BY random()
        LIMIT 1
    """)  # noqa: S608 (a constant column list)
    return cur.fetchone()


def list_alert_types(cur, *, category: str | None = None) -> list[dict]:
    cur.execute(f"""
        SELECT {ALERT_TYPE_COLUMNS}
        FROM alert_types
        WHERE %(category)s::text IS NULL OR category = %(category)s
        ORDER BY category, alert_type
    """, {"category": category})  # noqa: S608 (a constant column list)
    return cur.fetchall()


def get_alert_type(cur, *, alert_type: str) -> dict | None:
    cur.execute(f"""
        SELECT {ALERT_TYPE_COLUMNS}
        FROM alert_types
        WHERE alert_type = %s
    """, (alert_type,))  # noqa: S608 (a constant column list)
    return cur.fetchone()


def random_alert_type(cur) -> dict:
    cur.execute(f"""
        SELECT {ALERT_TYPE_COLUMNS}
        FROM alert_types
        ORDER BY random()
        LIMIT 1
    """)  # noqa: S608 (a constant column list)
    return cur.fetchone()


def typical_value(alert_type: dict, rng: random.Random | None = None) -> float | None:
    """A realistic alarming value for this type (within its typical range), or None for alarms
    that carry no measurement (a fall, a disconnected ventilator)."""
    low, high = alert_type.get("typical_min"), alert_type.get("typical_max")
    if alert_type.get("unit") is None or low is None or high is None:
        return None
    return round((rng or random).uniform(float(low), float(high)), 1)  # noqa: S311 (not a secret)
