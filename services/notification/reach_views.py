"""HTTP routes of the off-tab reach (issue 21; the contract: /work/notes/REACH-CONTRACT.md):
contact methods, notification rules, the delivery ledger, reachability and the single-use
acknowledge of a push action or an email link."""
import logging

from flask import Blueprint

from healthguard import clock
from healthguard.api import PUBLIC, responses
from healthguard.auth import clinician_only, current_clinician, public, supervisor_only
from healthguard.errors import ApiError
from healthguard.web import platform

from . import ack_tokens, channel_ack, channels, contact_methods, ledger, reachability, rules
from .channels import telephony
from .channels.base import Alarm, Attempt
from .reach_schemas import (
    ChannelAck,
    ChannelAcknowledged,
    ContactMethod,
    ContactMethodFilter,
    ContactMethodList,
    CreatedContactMethod,
    DeliveryFilter,
    DeliveryList,
    MyReachability,
    NewContactMethod,
    Reachability,
    Rules,
    RuleSet,
    TestResult,
    VapidKey,
    VerificationCode,
)
from .schemas import api
from .settings import NotificationSettings

log = logging.getLogger(__name__)

reach = Blueprint("reach", __name__, url_prefix="/api/v1")


def _settings() -> NotificationSettings:
    return platform().settings


# --- Contact methods ---------------------------------------------------------------------------

@reach.get("/contact-methods")
@api.validate(query=ContactMethodFilter, resp=responses({200: ContactMethodList}, (403, 404)))
def list_contact_methods(query: ContactMethodFilter):
    """The caller's contact methods, or (a supervisor, ?employee_id=) a person's, masked

    Secrets (push keys) are never answered; a push endpoint is shown by its service only."""
    me = current_clinician()
    if query.employee_id is None or (me and query.employee_id == me.employee_id):
        if me is None:
            raise ApiError(403, "the service token has no contact methods: name an employee_id")
        with platform().db.transaction() as cur:
            rows = contact_methods.list_for(cur, employee_id=me.employee_id)
        return {"contact_methods": [contact_methods.as_json(r, owner=True) for r in rows]}
    if me is not None and not me.is_supervisor:
        raise ApiError(403, "only a supervisor sees another person's contact methods")
    with platform().db.transaction() as cur:
        cur.execute("SELECT 1 FROM employees WHERE employee_id = %s", (query.employee_id,))
        if cur.fetchone() is None:
            raise ApiError(404, f"no employee {query.employee_id}", field="employee_id")
        rows = contact_methods.list_for(cur, employee_id=query.employee_id)
    return {"contact_methods": [contact_methods.as_json(r, owner=False) for r in rows]}


@reach.post("/contact-methods")
@clinician_only
@api.validate(json=NewContactMethod, resp=responses({201: CreatedContactMethod}, (403, 409, 413, 422)))
def add_contact_method(json: NewContactMethod):
    """Add one of the caller's contact methods

    email: a 6-digit code is sent to the address; POST .../verify with it makes it usable.
    push: `subscription` is PushSubscription.toJSON(), usable at once. phone and badge are kept
    unverified until their channels (issue 23) verify them."""
    me = current_clinician().employee_id
    now = clock.now()
    label = json.label or ""
    code = ""
    with platform().db.transaction() as cur:
        if json.kind == "push":
            if json.subscription is None:
                raise ApiError(422, "push needs the browser's subscription", field="subscription")
            row = contact_methods.add_push(
                cur, employee_id=me, endpoint=json.subscription.endpoint,
                p256dh=json.subscription.keys.p256dh, auth=json.subscription.keys.auth,
                label=label or "browser", now=now,
                allow_local_http=_settings().PUSH_ALLOW_LOCAL_HTTP)
        elif json.address is None:
            raise ApiError(422, f"{json.kind} needs an address", field="address")
        elif json.kind == "email":
            row, code = contact_methods.add_email(cur, employee_id=me, address=json.address, label=label,
                                                  now=now)
        else:
            address = json.address
            if json.kind == "phone":  # stored in E.164 (issue 23), typed as people write them
                address = telephony.e164(json.address, _settings().PHONE_DEFAULT_REGION or None)
                if address is None:
                    raise ApiError(422, "address must be a phone number (+44 20 7946 0018, or as dialled "
                                        "in PHONE_DEFAULT_REGION)", field="address")
            row = contact_methods.add_placeholder(cur, employee_id=me, kind=json.kind, address=address,
                                                  label=label, now=now)
            if row["verified_at"] is None:  # a code by SMS or to the badge, entered in the app
                code = contact_methods.new_code(cur, contact_method_id=row["contact_method_id"], now=now)
    sent = bool(code) and _send_code(row, code)
    return {"contact_method": contact_methods.as_json(row, owner=True), "verification_sent": sent}, 201


# The channel that carries a method's verification code (not a ledger attempt).
CODE_CHANNEL = {"email": "email", "phone": "sms", "badge": "badge"}


def _send_code(row: dict, code: str) -> bool:
    """Send the verification code: mailed (the email channel's SMTP server), texted to a phone,
    or shown on a badge."""
    try:
        channel = channels.for_kind(CODE_CHANNEL[row["kind"]])
    except LookupError:
        log.warning("no channel configured to send a verification code", extra={"kind": row["kind"]})
        return False
    try:
        return channel.send_verification_code(row["address"], code)
    except Exception:
        log.exception("could not send a verification code")
        return False


@reach.delete("/contact-methods/<int:contact_method_id>")
@clinician_only
@api.validate(resp=responses({204: None}, (403, 404)))
def delete_contact_method(contact_method_id: int):
    """Delete one of the caller's contact methods (its rules go with it; the ledger keeps its rows)"""
    with platform().db.transaction() as cur:
        contact_methods.delete(cur, employee_id=current_clinician().employee_id,
                               contact_method_id=contact_method_id)
    return "", 204


@reach.post("/contact-methods/<int:contact_method_id>/verify")
@clinician_only
@api.validate(json=VerificationCode, resp=responses({200: ContactMethod}, (403, 404, 410, 413, 422)))
def verify_contact_method(contact_method_id: int, json: VerificationCode):
    """Verify an email address with the code sent to it

    422: not the code sent (5 tries); 410: the code expired or was tried too often."""
    with platform().db.transaction() as cur:
        row = contact_methods.verify(cur, employee_id=current_clinician().employee_id,
                                     contact_method_id=contact_method_id, code=json.code, now=clock.now())
    return contact_methods.as_json(row, owner=True)


@reach.post("/contact-methods/<int:contact_method_id>/test")
@clinician_only
@api.validate(resp=responses({200: TestResult}, (403, 404, 409)))
def test_contact_method(contact_method_id: int):
    """Send a test message to one of the caller's methods now (an unverified email: a new code)

    409: the method is not verified and cannot be (phone/badge until issue 23), or no channel
    is configured for its kind."""
    me = current_clinician().employee_id
    now = clock.now()
    with platform().db.transaction() as cur:
        row = contact_methods.get_own(cur, employee_id=me, contact_method_id=contact_method_id, lock=True)
        code = ""
        if row["verified_at"] is None and row["kind"] in CODE_CHANNEL:
            code = contact_methods.new_code(cur, contact_method_id=contact_method_id, now=now)
        cur.execute("SELECT secret FROM contact_methods WHERE contact_method_id = %s", (contact_method_id,))
        secret = cur.fetchone()["secret"]
    if code:
        return {"status": "verification_sent" if _send_code(row, code) else "failed"}
    if row["verified_at"] is None:
        raise ApiError(409, f"this {row['kind']} method is not verified yet")
    try:
        channel = channels.for_kind(contact_methods.STEP_CHANNEL.get(row["kind"], row["kind"]))
    except LookupError:
        raise ApiError(409, f"no {row['kind']} channel is configured on this server") from None
    attempt = Attempt(id=0, incident_id=0, employee_id=me, channel=row["kind"], address=row["address"],
                      secret=secret, rule_step=0, ack_token="", contact_method_id=contact_method_id)
    alarm = Alarm(incident_id=0, severity="LOW", alert_name="Test", room=None, ward=None, patient_label=None,
                  title="HealthGuard test notification", summary="This is a test of your notifications.")
    result = channel.send(attempt, alarm)
    return {"status": result.status, "reason": result.reason}


@reach.get("/push/vapid-public-key")
@public  # a public key: the app asks for it before subscribing
@api.validate(security=PUBLIC, resp=responses({200: VapidKey}, (404,), public_route=True))
def vapid_public_key():
    """The server's VAPID public key (applicationServerKey); 404 when Web Push is not configured"""
    key = _settings().VAPID_PUBLIC_KEY
    if not key:
        raise ApiError(404, "Web Push is not configured on this server")
    return {"public_key": key}


# --- Notification rules ------------------------------------------------------------------------

@reach.get("/notification-rules")
@clinician_only
@api.validate(resp=responses({200: Rules}, (403,)))
def get_my_rules():
    """The caller's rules in force per urgency, and where they come from (personal, role, hospital)"""
    with platform().db.transaction() as cur:
        return rules.my_rules(cur, employee_id=current_clinician().employee_id)


@reach.put("/notification-rules")
@clinician_only
@api.validate(json=RuleSet, resp=responses({200: Rules}, (403, 413, 422)))
def put_my_rules(json: RuleSet):
    """Replace the caller's own rules for the urgencies given (an empty list: back to the role's)"""
    me = current_clinician().employee_id
    with platform().db.transaction() as cur:
        rules.replace(cur, employee_id=me, urgency_steps=_urgency_steps(json))
        return rules.my_rules(cur, employee_id=me)


def _urgency_steps(json: RuleSet) -> dict:
    return {u: [s.model_dump() for s in steps] for u, steps in (("HIGH", json.HIGH), ("LOW", json.LOW))
            if steps is not None}


def _known_role(cur, role: str) -> None:
    cur.execute("SELECT 1 FROM employees WHERE role = %s LIMIT 1", (role,))
    if cur.fetchone() is None:
        raise ApiError(404, f"nobody has the role {role}")


@reach.get("/notification-rules/defaults/<role>")
@supervisor_only
@api.validate(resp=responses({200: Rules}, (403, 404)))
def get_role_defaults(role: str):
    """A role's default rules (a supervisor)"""
    with platform().db.transaction() as cur:
        _known_role(cur, role)
        return rules.role_defaults(cur, role=role)


@reach.put("/notification-rules/defaults/<role>")
@supervisor_only
@api.validate(json=RuleSet, resp=responses({200: Rules}, (403, 404, 413, 422)))
def put_role_defaults(role: str, json: RuleSet):
    """Replace a role's default rules for the urgencies given (a supervisor); steps name kinds"""
    with platform().db.transaction() as cur:
        _known_role(cur, role)
        rules.replace(cur, role=role, urgency_steps=_urgency_steps(json))
        return rules.role_defaults(cur, role=role)


# --- The ledger ---------------------------------------------------------------------------------

@reach.get("/deliveries")
@api.validate(query=DeliveryFilter, resp=responses({200: DeliveryList}, (404,)))
def list_deliveries(query: DeliveryFilter):
    """The delivery ledger of an incident, oldest first: every off-tab attempt and its times"""
    with platform().db.transaction() as cur:
        cur.execute("SELECT 1 FROM incidents WHERE incident_id = %s", (query.incident_id,))
        if cur.fetchone() is None:
            raise ApiError(404, f"no incident {query.incident_id}", field="incident_id")
        rows = ledger.for_incident(cur, incident_id=query.incident_id)
    keep = ("assignment_key", "assigned_at", "provider_ref", "next_try_at")
    return {"deliveries": [{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()
                            if k not in keep} for row in rows]}


# --- Reachability -------------------------------------------------------------------------------

@reach.get("/reachability")
@supervisor_only
@api.validate(resp=responses({200: Reachability}, (403,)))
def who_cannot_be_reached():
    """Who on the current rota has no verified off-tab method (a supervisor)

    503 when the on-call service does not answer."""
    on_duty = reachability.on_duty(_settings())
    with platform().db.transaction() as cur:
        return reachability.of(cur, on_duty)


@reach.get("/reachability/me")
@clinician_only
@api.validate(resp=responses({200: MyReachability}, (403,)))
def my_reachability():
    """Whether the caller can be reached off the tab, and whether to show the banner"""
    me = current_clinician().employee_id
    try:
        on_call = any(c["employee_id"] == me for c in reachability.on_duty(_settings()))
    except ApiError:
        on_call = None
    with platform().db.transaction() as cur:
        mine = reachability.of(cur, [{"employee_id": me}])["on_duty"][0]
    return {"reachable": mine["reachable"], "kinds": mine["kinds"], "on_call": on_call,
            "show_banner": bool(on_call) and not mine["reachable"]}


# --- Acknowledging from a channel ---------------------------------------------------------------

@reach.post("/channel-ack")
@public  # the single-use token is the credential (a locked phone's notification has no session)
@api.validate(security=PUBLIC, json=ChannelAck,
              resp=responses({200: ChannelAcknowledged}, (400, 404, 409, 410, 413, 503),
                             public_route=True))
def acknowledge_from_channel(json: ChannelAck):
    """Acknowledge the incident with the single-use token of a push message or email link

    With action open or delivered, only record that the person opened it (the ledger's read
    time) or that it reached their device (its delivered time).

    As the person the token was sent to, through incident management (the audit trail records
    the channel). 410: the token was used or has expired; 404: no such token. 409: incident management refused
    (the alarm is no longer theirs, or resolved)."""
    settings = _settings()
    refused = None
    if json.action in REPORTED_STATUS:
        return _reported(json.token, REPORTED_STATUS[json.action])
    with platform().db.transaction() as cur:
        attempt = ack_tokens.redeem(cur, token=json.token, at=clock.now())
        if attempt is None and ack_tokens.was_issued(cur, token=json.token):
            raise ApiError(410, "this acknowledge link was used already or has expired: open the app")
        if attempt is None:
            raise ApiError(404, "no such acknowledge link: open the app")
        if not settings.INCIDENT_MANAGEMENT_URL:  # rolled back: the token stays usable
            raise ApiError(503, "acknowledging from a channel is not configured (INCIDENT_MANAGEMENT_URL)")
        try:
            incident = channel_ack.acknowledge_as(
                incidents_url=settings.INCIDENT_MANAGEMENT_URL, service_token=settings.SERVICE_TOKEN,
                incident_id=attempt["incident_id"], employee_id=attempt["employee_id"],
                channel=attempt["channel"])
        except channel_ack.IncidentManagementError as exc:
            if exc.status is None or exc.status >= 500:
                raise ApiError(503, "incident management is not answering; try again") from exc
            refused = exc  # the token is used up: committed below
        else:
            ledger.acknowledged_from(cur, attempt_id=attempt["attempt_id"], channel=attempt["channel"],
                                     at=clock.now())
    if refused is not None:
        raise ApiError(409, f"not acknowledged: {refused}")
    return {"incident_id": incident["incident_id"], "status": incident["status"]}


# What a report of the service worker or the link page stamps on the attempt.
REPORTED_STATUS = {"open": "read", "delivered": "delivered"}


def _reported(token: str, status: str):
    """The push reached the device (delivered), or the person opened the notification or the
    link (read): that time on the ledger. Never moves an attempt backwards (ledger.record)."""
    now = clock.now()
    with platform().db.transaction() as cur:
        attempt = ack_tokens.peek(cur, token=token, at=now)
        if attempt is None:
            issued = ack_tokens.was_issued(cur, token=token)
            raise ApiError(410 if issued else 404, "this link was used already or has expired: open the app"
                           if issued else "no such link: open the app")
        ledger.record(cur, attempt_id=attempt["attempt_id"], status=status, at=now)
    return {"incident_id": attempt["incident_id"], "status": status}
