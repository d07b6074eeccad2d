"""Acknowledging (or declining) an incident from an off-tab channel, on the person's behalf.

Incident management owns the incident: the notification service asks it, with the SERVICE_TOKEN,
to acknowledge as `employee_id` from `channel` (PATCH /api/v1/incidents/<id>/acknowledge with
{"employee_id", "channel"}); it checks the person is the one the alarm pages, records the channel
in the audit trail and announces the change like any acknowledgement (whose event cancels the
person's remaining steps here; the ledger row is marked at once too). A second acknowledgement,
from another channel, answers the incident unchanged."""
import threading

import requests

from healthguard import clock

from . import ledger

TIMEOUT = (2.0, 5.0)
_local = threading.local()


class IncidentManagementError(Exception):
    """Incident management refused (status, message) or could not be reached (status None)."""

    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status


def _session(service_token: str) -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    session.headers["Authorization"] = f"Bearer {service_token}"
    return session


def acknowledge_as(*, incidents_url: str, service_token: str, incident_id: int, employee_id: str,
                   channel: str, action: str = "acknowledge") -> dict:
    """Ask incident management to acknowledge (or `action` decline); the incident as it is now."""
    try:
        response = _session(service_token).patch(
            f"{incidents_url.rstrip('/')}/api/v1/incidents/{incident_id}/{action}",
            json={"employee_id": employee_id, "channel": channel}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise IncidentManagementError(None, f"incident management unreachable: {type(exc).__name__}") from exc
    if response.status_code != 200:
        try:
            message = response.json().get("error") or response.text
        except ValueError:
            message = response.text
        raise IncidentManagementError(response.status_code, str(message)[:300])
    return response.json()


def acknowledge_from_channel(*, db, incidents_url: str, service_token: str, attempt_id: int,
                             channel: str) -> dict:
    """Acknowledge the incident of a ledger attempt as its person, from `channel`, and mark the
    attempt acknowledged (cancelling the person's remaining steps). Returns the incident."""
    return _as_the_person(db=db, incidents_url=incidents_url, service_token=service_token,
                          attempt_id=attempt_id, channel=channel, action="acknowledge",
                          mark=ledger.acknowledged_from)


def reject_from_channel(*, db, incidents_url: str, service_token: str, attempt_id: int,
                        channel: str) -> dict:
    """Decline the incident of a ledger attempt as its person, from `channel` (a badge's Reject,
    an SMS `2`, a voice key 2): incident management moves it at once to the next person of the
    routing order, whose steps its event schedules; the attempt is marked rejected. Returns the
    incident. 409 (IncidentManagementError) when nobody else is available."""
    return _as_the_person(db=db, incidents_url=incidents_url, service_token=service_token,
                          attempt_id=attempt_id, channel=channel, action="decline",
                          mark=ledger.rejected_from)


def _as_the_person(*, db, incidents_url: str, service_token: str, attempt_id: int, channel: str,
                   action: str, mark) -> dict:
    with db.transaction() as cur:
        cur.execute("SELECT incident_id, employee_id FROM delivery_attempts WHERE attempt_id = %s",
                    (attempt_id,))
        attempt = cur.fetchone()
    if attempt is None:
        raise IncidentManagementError(404, f"no delivery attempt {attempt_id}")
    incident = acknowledge_as(incidents_url=incidents_url, service_token=service_token,
                              incident_id=attempt["incident_id"], employee_id=attempt["employee_id"],
                              channel=channel, action=action)
    with db.transaction() as cur:
        mark(cur, attempt_id=attempt_id, channel=channel, at=clock.now())
    return incident
