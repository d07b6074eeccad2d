"""Consumes the `alerts` queue: every alert becomes exactly one incident, assigned when someone
is available.

The message carries the alert id; the handler re-reads the alert. The on-call service is asked
before the transaction (a slow answer must not hold row locks); then one transaction creates the
incident (unique per alert), its history, the assignment and the notification event. The broker
acknowledges the message only after that commit, so a crash redelivers it, and the redelivery
finds the incident and does nothing more.
"""
import logging

from healthguard import clock
from healthguard.broker import ALERTS_QUEUE, Consumer, PermanentMessageError, RetryPolicy
from healthguard.incident_events import unowned_message

from . import incidents
from .assignment import OnCallClient, assign_automatically, supervisors_to_tell
from .events import announce
from .metrics import ASSIGNMENTS, INCIDENTS_CREATED

log = logging.getLogger(__name__)


def alert_id_of(message: dict) -> int:
    alert_id = message.get("alert_id")
    if isinstance(alert_id, bool) or not isinstance(alert_id, int) or alert_id < 1:
        raise PermanentMessageError(f"message has no valid alert_id: {str(message)[:200]}")
    return alert_id


def open_incident_for_alert(message: dict, *, db, oncall: OnCallClient) -> dict | None:
    """Handle one `alerts` message; returns the incident (None when it already existed and was
    past OPEN, i.e. a redelivery with nothing left to do)."""
    alert_id = alert_id_of(message)
    with db.transaction() as cur:
        alert = incidents.alert_to_open(cur, alert_id=alert_id)
    if alert is None:
        raise PermanentMessageError(f"unknown alert {alert_id}")
    if alert["incident_status"] not in (None, "OPEN"):
        return None  # already an incident past OPEN: a redelivery
    candidates = oncall.candidates(alert["routes_to"])
    supervisors = None if candidates else oncall.supervisors_on_duty()
    with db.transaction() as cur:
        incident, created = incidents.open_incident(cur, alert)
        assigned = assign_automatically(cur, incident, candidates)
        if created and not assigned:
            # Nobody could take it: every dashboard must show it, and the supervisors on duty and
            # signed in must hear of an alarm without an owner.
            announce(cur, incident, type="INCIDENT_CREATED", history=created,
                     recipients=supervisors_to_tell(cur, on_duty=supervisors, at=clock.now()),
                     message=unowned_message(incident))
    if created:
        INCIDENTS_CREATED.labels(severity=incident["severity"]).inc()
    if assigned:
        ASSIGNMENTS.labels(reason="AUTO").inc()
    elif incident["status"] == "OPEN":
        log.warning("nobody available: incident left OPEN, will retry",
                    extra={"incident_id": incident["incident_id"], "routes_to": alert["routes_to"]})
    return assigned or incident


class AlertConsumer:
    """The background task (run by the service's worker process): a Consumer on `alerts`."""

    name = "consume-alerts"

    def __init__(self, *, db, rabbitmq_url: str, oncall_url: str, service_token: str,
                 retry: RetryPolicy = RetryPolicy()):
        self.db = db
        self.oncall = OnCallClient(oncall_url, service_token)
        self.consumer = Consumer(rabbitmq_url, ALERTS_QUEUE, self.handle, prefetch=20, retry=retry)

    def handle(self, message: dict) -> None:
        open_incident_for_alert(message, db=self.db, oncall=self.oncall)

    def start(self) -> "AlertConsumer":
        self.consumer.start()
        return self

    def is_alive(self) -> bool:
        return self.consumer.is_alive()

    def stop(self) -> None:
        self.consumer.stop()
        self.oncall.close()
