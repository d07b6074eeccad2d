"""Who can be reached off the open tab: everyone on the current rota (the on-call service's
GET /api/v1/oncall/current, asked by healthguard's OnCallClient, as incident management asks it) and
whether each has a verified off-tab contact method."""
from healthguard.errors import ApiError
from healthguard.oncall_client import ONCALL_ERRORS, OnCallClient


def on_duty(settings) -> list[dict]:
    """Everyone on duty now by the rota (signed in or not): employee_id, name, role."""
    try:
        with OnCallClient(settings.ONCALL_URL or "", settings.SERVICE_TOKEN) as oncall:
            return oncall.on_duty()
    except ONCALL_ERRORS as exc:
        raise ApiError(503, "the on-call service is not answering; try again shortly") from exc


def of(cur, people: list[dict]) -> dict:
    """Each person with whether they have a verified off-tab method and of which kinds."""
    ids = list(dict.fromkeys(p["employee_id"] for p in people))
    cur.execute("""SELECT employee_id, array_agg(DISTINCT kind ORDER BY kind) AS kinds
                   FROM contact_methods
                   WHERE employee_id = ANY(%s) AND verified_at IS NOT NULL AND disabled_at IS NULL
                   GROUP BY employee_id""", (ids,))
    kinds = {row["employee_id"]: row["kinds"] for row in cur.fetchall()}
    seen, result = set(), []
    for person in people:
        if person["employee_id"] in seen:
            continue
        seen.add(person["employee_id"])
        mine = kinds.get(person["employee_id"], [])
        result.append({"employee_id": person["employee_id"], "name": person.get("name"),
                       "role": person.get("role"), "reachable": bool(mine), "kinds": mine})
    return {"on_duty": result, "unreachable": [p["employee_id"] for p in result if not p["reachable"]]}
