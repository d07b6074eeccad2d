"""Consumes the alert lanes (`alerts.critical` ... `alerts.low`, most severe first): every alert
becomes exactly one incident, or joins the incident still open for the same alarm (a repeat),
assigned when someone is available.

The message carries the alert id; the handler re-reads the alert. The on-call service is asked
before the transaction (a slow answer must not hold row locks); then one transaction creates the
incident (unique per alert), its history, the assignment and the notification event. The broker
acknowledges the message only after that commit, so a crash redelivers it, and the redelivery
finds the incident and does nothing more.
"""
import datetime
import logging

from healthguard import clock
from healthguard.broker import ALERT_LANES, Consumer, PermanentMessageError, RetryPolicy
from healthguard.incident_events import unowned_message

from . import incidents
from .assignment import OnCallClient, assign_automatically, supervisors_to_tell
from .events import announce
from .metrics import ALERTS_CORRELATED, ASSIGNMENTS, INCIDENTS_CREATED

log = logging.getLogger(__name__)

# A repeat of an alarm within this time of its last sounding joins the incident still open for it.
DEFAULT_CORRELATION_WINDOW = datetime.timedelta(minutes=5)


def alert_id_of(message: dict) -> int:
    alert_id = message.get("alert_id")
    if isinstance(alert_id, bool) or not isinstance(alert_id, int) or alert_id < 1:
        raise PermanentMessageError(f"message has no valid alert_id: {str(message)[:200]}")
    return alert_id


def open_incident_for_alert(message: dict, *, db, oncall: OnCallClient,
                            window: datetime.timedelta = DEFAULT_CORRELATION_WINDOW) -> dict | None:
    """Handle one alert message; returns the incident (None when it already existed and was
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
        opened = incidents.open_incident(cur, alert, now=clock.now(), window=window)
        incident, created = opened.incident, opened.created
        if opened.correlated:
            announce_repeat(cur, opened)
        assigned = assign_automatically(cur, incident, candidates)
        if created and not assigned:
            # Nobody could take it: every dashboard must show it, and the supervisors on duty and
            # signed in must hear of an alarm without an owner.
            announce(cur, incident, type="INCIDENT_CREATED", history=created,
                     recipients=supervisors_to_tell(cur, on_duty=supervisors, at=clock.now()),
                     message=unowned_message(incident))
    if created:
        INCIDENTS_CREATED.labels(severity=incident["severity"]).inc()
    if created or opened.correlated:
        ALERTS_CORRELATED.labels(result="existing_incident" if opened.correlated else "new_incident").inc()
    if assigned:
        ASSIGNMENTS.labels(reason="AUTO").inc()
    elif incident["status"] == "OPEN":
        log.warning("nobody available: incident left OPEN, will retry",
                    extra={"incident_id": incident["incident_id"], "routes_to": alert["routes_to"]})
    return assigned or incident


def announce_repeat(cur, opened: incidents.Opened) -> None:
    """Every dashboard learns the new count (an incident_updated frame); nobody is paged for a
    repeat, except the assignee when the repeat is more severe than the incident was."""
    incident = opened.incident
    repaged = [incident["assigned_to"]] if opened.raised_from and incident["assigned_to"] else []
    if opened.raised_from:
        message = (f"{incident['title']} (patient {incident['patient_id']}): the alarm sounded again, now "
                   f"{incident['severity']} (was {opened.raised_from}); "
                   f"{incident['alert_count']} alarms in all.")
    else:
        message = (f"{incident['title']} (patient {incident['patient_id']}): the alarm sounded again; "
                   f"{incident['alert_count']} alarms in all.")
    announce(cur, incident, type="INCIDENT_ALERT_CORRELATED", history=opened.correlated,
             recipients=repaged, message=message)


class AlertConsumer:
    """The background task (run by the service's worker process): a Consumer on the alert lanes."""

    name = "consume-alerts"

    def __init__(self, *, db, rabbitmq_url: str, oncall_url: str, service_token: str,
                 retry: RetryPolicy = RetryPolicy(), window: datetime.timedelta = DEFAULT_CORRELATION_WINDOW):
        self.db, self.window = db, window
        self.oncall = OnCallClient(oncall_url, service_token)
        # Most severe lane first: a CRITICAL alarm waits at most for the one lower alarm being
        # handled when it arrived. Two in hand per lane, so the next of a busy higher lane is
        # already here when the previous one is acknowledged, and no lower one slips in between.
        self.consumer = Consumer(rabbitmq_url, ALERT_LANES, self.handle, prefetch=2, retry=retry)

    def handle(self, message: dict) -> None:
        open_incident_for_alert(message, db=self.db, oncall=self.oncall, window=self.window)

    def start(self) -> "AlertConsumer":
        self.consumer.start()
        return self

    def is_alive(self) -> bool:
        return self.consumer.is_alive()

    def stop(self) -> None:
        self.consumer.stop()
        self.oncall.close()
