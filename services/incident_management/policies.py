"""Escalation policies, one per severity: how long an assignee has to acknowledge, how long an
acknowledged incident may wait to be started, to which roles it escalates and how many times.
Supervisors edit them; every change is kept in escalation_policy_changes (who, before, after).

A change applies to deadlines set from then on; deadlines already running keep their instant (they
are stored on the incidents, 0006_escalation_deadlines.sql)."""
from psycopg2.extras import Json

from healthguard import clock
from healthguard.auth import Clinician
from healthguard.errors import ApiError

COLUMNS = "severity, ack_timeout_seconds, start_timeout_seconds, escalate_to_roles, max_level"
EDITABLE = ("ack_timeout_seconds", "start_timeout_seconds", "escalate_to_roles", "max_level")
MIN_LEVELS = 1
CRITICAL_ACK_TIMEOUT_MAX = 300  # seconds


def list_policies(cur) -> list[dict]:
    cur.execute(f"""
        SELECT {COLUMNS} FROM escalation_policies
        ORDER BY array_position('{{CRITICAL,HIGH,MEDIUM,LOW}}'::text[], severity)
    """)  # noqa: S608 (a constant column list)
    return cur.fetchall()


def change_policy(cur, *, severity: str, changes: dict, clinician: Clinician) -> dict:
    """Apply `changes` (some of EDITABLE) to the policy of `severity`, recording the change."""
    cur.execute(f"SELECT {COLUMNS} FROM escalation_policies WHERE severity = %s FOR UPDATE",  # noqa: S608
                (severity,))
    before = cur.fetchone()
    if before is None:
        raise ApiError(404, f"no escalation policy for severity {severity!r}")
    roles = changes.get("escalate_to_roles")
    if roles is not None:
        cur.execute("SELECT array_agg(DISTINCT role) AS roles FROM employees")
        known = set(cur.fetchone()["roles"] or [])
        unknown = [role for role in roles if role not in known]
        if unknown:
            raise ApiError(422, f"no clinician has the role {unknown[0]!r}; roles: "
                           f"{', '.join(sorted(known))}", field="escalate_to_roles")
    after = {**before, **{key: value for key, value in changes.items() if key in EDITABLE}}
    # Guard-rails (the database's CHECKs say the same, 0014_ownership_rules.sql): an alarm is
    # escalated at least once, and a CRITICAL one waits at most five minutes for an acknowledgement.
    if after["max_level"] < MIN_LEVELS:
        raise ApiError(422, f"max_level must be at least {MIN_LEVELS}: an unacknowledged alarm must be "
                       f"escalated at least once", field="max_level")
    if severity == "CRITICAL" and after["ack_timeout_seconds"] > CRITICAL_ACK_TIMEOUT_MAX:
        raise ApiError(422, f"a CRITICAL alarm may wait at most {CRITICAL_ACK_TIMEOUT_MAX} seconds for an "
                       f"acknowledgement before it is escalated", field="ack_timeout_seconds")
    cur.execute(f"""
        UPDATE escalation_policies
        SET ack_timeout_seconds = %(ack_timeout_seconds)s, start_timeout_seconds = %(start_timeout_seconds)s,
            escalate_to_roles = %(escalate_to_roles)s, max_level = %(max_level)s
        WHERE severity = %(severity)s
        RETURNING {COLUMNS}
    """, after)  # noqa: S608
    updated = cur.fetchone()
    cur.execute("""
        INSERT INTO escalation_policy_changes (severity, changed_by, before, after, changed_at)
        VALUES (%s, %s, %s, %s, %s)
    """, (severity, clinician.employee_id, Json(dict(before)), Json(dict(updated)), clock.now()))
    return updated
