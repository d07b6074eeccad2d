"""Consumes the alert lanes (`alerts.critical` ... `alerts.low`, most severe first): every alert
becomes exactly one incident, or joins the incident still open for the same alarm (a repeat),
assigned when someone is available.

The message carries the alert id; the handler re-reads the alert. The on-call service is asked
before the transaction (a slow answer must not hold row locks); then one transaction creates the
incident (unique per alert), its history, the assignment and the notification event. The broker
acknowledges the message only after that commit, so a crash redelivers it, and the redelivery
finds the incident and does nothing more.

Under load the messages come in batches (up to BATCH_SIZE, CRITICAL alarms in batches of their
own, the other lanes together, most severe first: broker.Consumer): the batch's alerts are read
in one query, the on-call service is asked once for all of them, and one transaction opens,
correlates and assigns them all, in the batch's order (a repeat later in the batch joins the
incident opened earlier in it; the batch's assignments count for the next alarm's ranking).
Should the batch fail, each alert is handled alone by open_incident_for_alert.
"""
import datetime
import logging

from healthguard import clock
from healthguard.broker import ALERT_LANES, Consumer, PermanentMessageError, RetryPolicy
from healthguard.incident_events import unowned_message, whose
from healthguard.messages import AlertMessage
from healthguard.oncall_client import OnCallClient

from . import care_teams, incidents, routing, silences
from .assignment import assign_least_busy
from .events import Announcement, announce_many
from .metrics import ALERTS_CORRELATED, ASSIGNMENTS, INCIDENTS_CREATED

log = logging.getLogger(__name__)

# A repeat of an alarm within this time of its last sounding joins the incident still open for it.
DEFAULT_CORRELATION_WINDOW = datetime.timedelta(minutes=5)
# Alerts handled in one transaction at most. A CRITICAL alarm arriving while a batch of lower
# ones is being handled waits for that batch (tens of milliseconds), never for the lanes' backlog.
BATCH_SIZE = 50


def open_incident_for_alert(message: dict, *, db, oncall: OnCallClient,
                            window: datetime.timedelta = DEFAULT_CORRELATION_WINDOW) -> dict | None:
    """Handle one alert message (a batch of one); returns the incident (None when it already
    existed and was past OPEN, i.e. a redelivery with nothing left to do)."""
    handled = open_incidents_for_alerts([message], db=db, oncall=oncall, window=window)
    return handled[0] if handled else None


def open_incidents_for_alerts(messages: list[dict], *, db, oncall: OnCallClient,
                              window: datetime.timedelta = DEFAULT_CORRELATION_WINDOW) -> list[dict]:
    """Handle a batch of alert messages in one transaction (see the module's docstring); returns
    the incidents of the alerts that were not handled before, as the transaction left them.
    Raises PermanentMessageError when a message is not an alert message (AlertMessage: wrong
    shape, another schema version) or names an unknown alert, and whatever
    the database raises: nothing is then committed (a batch's caller handles its messages one
    by one)."""
    # An alert delivered twice in one batch (a redelivery beside the original) is handled once.
    alert_ids = list(dict.fromkeys(AlertMessage.parse(message).alert_id for message in messages))
    with db.transaction() as cur:
        found = incidents.alerts_to_open(cur, alert_ids=alert_ids)
        clinical = routing.clinical_roles(cur)
        # The care teams of the batch's patients, one query (routing.candidate_groups).
        care = care_teams.care_teams_of(cur, patient_ids=[a["patient_id"] for a in found.values()],
                                        at=clock.now())
    missing = [alert_id for alert_id in alert_ids if alert_id not in found]
    if missing:
        raise PermanentMessageError("unknown alert " + ", ".join(str(a) for a in missing[:10]))
    # Past OPEN already: redeliveries with nothing left to do.
    alerts = [found[a] for a in alert_ids if found[a]["incident_status"] in (None, "OPEN")]
    if not alerts:
        return []
    # One question to the on-call service for the whole batch; each alarm's candidates are the
    # first of its routing order's groups with anyone available, else anyone who may take it.
    everyone = routing.everyone_available(oncall) or []
    routes = [routing.route(alert_name=alert["alert_name"], severity=alert["severity"],
                            routes_to=alert["routes_to"], escalate_to_roles=alert["escalate_to_roles"],
                            clinical_roles=clinical) for alert in alerts]
    candidates = [routing.first_candidates(everyone, route, care=care.get(alert["patient_id"]))
                  for alert, route in zip(alerts, routes, strict=True)]
    told = [routing.told_of(route, care.get(alert["patient_id"]), owner=None)
            for alert, route in zip(alerts, routes, strict=True)]
    supervisors = routing.supervisors_on_duty(oncall) if not all(candidates) else None
    with db.transaction() as cur:
        now = clock.now()
        # First every incident is opened or joined (row locks, in arrival order), then the
        # assignments (the assignment lock, taken last as every other path takes it).
        opened = incidents.open_incidents(cur, alerts, now=now, window=window)
        announce_many(cur, [repeat_announcement(o) for o in opened if o.correlated])
        # A new incident whose alarm a running silence matches is held: stored, shown, paging
        # nobody (silences.py). A repeat joins its open incident as before: never hidden.
        new = [a for o, a in zip(opened, alerts, strict=True) if o.created]
        held = silences.silences_for(cur, alerts=new, at=now)
        silences.hold(cur, incidents=[(o.incident, held[a["alert_id"]])
                                      for o, a in zip(opened, alerts, strict=True) if a["alert_id"] in held])
        latest = {o.incident["incident_id"]: o.incident for o in opened}
        offers, offered = [], set()
        for o, chosen, names in zip(opened, candidates, told, strict=True):
            incident_id = o.incident["incident_id"]
            if incident_id not in offered:  # a repeat in the batch offers its incident once
                offered.add(incident_id)
                offers.append((latest[incident_id], chosen, names))
        workload = routing.Workload(cur, [c["employee_id"] for chosen in candidates if chosen
                                          for c in chosen.candidates])
        assigned = assign_least_busy(cur, offers, workload=workload)
        latest.update(assigned)
        unowned = [o for o in opened if o.created and o.incident["incident_id"] not in assigned
                   and not o.incident.get("silenced_by")]
        if unowned:
            # Nobody could take them: every dashboard must show them, and the supervisors on duty
            # and signed in must hear of alarms without an owner.
            told = routing.supervisors_to_tell(cur, on_duty=supervisors, at=now)
            announce_many(cur, [Announcement(latest[o.incident["incident_id"]], "INCIDENT_CREATED", o.created,
                                             told, unowned_message(latest[o.incident["incident_id"]]),
                                             {"reason": "UNOWNED"})
                                for o in unowned])
    counted = set()
    for o, alert in zip(opened, alerts, strict=True):
        incident_id = o.incident["incident_id"]
        _count(o, assigned.get(incident_id) if incident_id not in counted else None, alert,
               committed=latest[incident_id])
        counted.add(incident_id)
    return [latest[o.incident["incident_id"]] for o in opened]


def _count(opened: incidents.Opened, assigned: dict | None, alert: dict, *, committed: dict) -> None:
    """The metrics of one handled alert, once its transaction committed (`committed`: its
    incident as the transaction left it)."""
    incident = opened.incident
    if opened.created:
        INCIDENTS_CREATED.labels(severity=incident["severity"]).inc()
    if opened.created or opened.correlated:
        ALERTS_CORRELATED.labels(result="existing_incident" if opened.correlated else "new_incident").inc()
    if assigned:
        ASSIGNMENTS.labels(reason="AUTO").inc()
    elif committed["status"] == "OPEN":
        log.warning("nobody available: incident left OPEN, will retry",
                    extra={"incident_id": incident["incident_id"], "routes_to": alert["routes_to"]})


def repeat_announcement(opened: incidents.Opened) -> Announcement:
    """The announcement of a repeat (events.announce_many): every dashboard learns the new count
    (an incident_updated frame); nobody is paged for a repeat, except the assignee when the
    repeat is more severe than the incident was."""
    incident = opened.incident
    repaged = [incident["assigned_to"]] if opened.raised_from and incident["assigned_to"] else []
    if opened.raised_from:
        message = (f"{whose(incident)}: the alarm sounded again, now "
                   f"{incident['severity']} (was {opened.raised_from}); "
                   f"{incident['alert_count']} alarms in all.")
    else:
        message = (f"{whose(incident)}: the alarm sounded again; "
                   f"{incident['alert_count']} alarms in all.")
    return Announcement(incident, "INCIDENT_ALERT_CORRELATED", opened.correlated, repaged, message,
                        {"paged": repaged})


class AlertConsumer:
    """The background task (run by the service's worker process): a Consumer on the alert lanes."""

    name = "consume-alerts"

    def __init__(self, *, db, rabbitmq_url: str, oncall_url: str, service_token: str,
                 retry: RetryPolicy = RetryPolicy(), window: datetime.timedelta = DEFAULT_CORRELATION_WINDOW,
                 batch_size: int = BATCH_SIZE):
        self.db, self.window = db, window
        self.oncall = OnCallClient(oncall_url, service_token)
        # Most severe lane first: a CRITICAL alarm waits at most for the one batch of lower
        # alarms being handled when it arrived. A batch's worth in hand per lane, so the next
        # batch of a busy higher lane is already here when the previous one is acknowledged,
        # and no lower one slips in between.
        self.consumer = Consumer(rabbitmq_url, ALERT_LANES, self.handle, prefetch=batch_size,
                                 retry=retry, batch_handler=self.handle_batch, batch_size=batch_size)

    def handle(self, message: dict) -> None:
        open_incident_for_alert(message, db=self.db, oncall=self.oncall, window=self.window)

    def handle_batch(self, messages: list[dict]) -> None:
        open_incidents_for_alerts(messages, db=self.db, oncall=self.oncall, window=self.window)

    def start(self) -> "AlertConsumer":
        self.consumer.start()
        return self

    def is_alive(self) -> bool:
        return self.consumer.is_alive()

    def stop(self) -> None:
        self.consumer.stop()
        self.oncall.close()
