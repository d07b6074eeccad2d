"""HTTP routes: a clinician's own notification history and read state, and the WebSocket."""
from flask import Blueprint, current_app, g, request
from flask_sock import Sock

from healthguard import phi_access
from healthguard.api import responses
from healthguard.auth import bearer_token, clinician_for_token, clinician_only, current_clinician, public
from healthguard.db import BIGINT_MAX
from healthguard.errors import ApiError
from healthguard.incident_events import patients_named
from healthguard.web import platform

from . import service, tickets
from .hub import ClinicianSocket
from .schemas import AllRead, HistoryPage, NotificationList, NotificationRead, ReadAll, SocketTicket, api

rest = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications")
ticket_office = Blueprint("socket_tickets", __name__, url_prefix="/api/v1")
sockets = Blueprint("sockets", __name__)
sock = Sock()


@rest.get("")
@clinician_only
@api.validate(query=HistoryPage, resp=responses({200: NotificationList}, (403,)))
def list_my_notifications(query: HistoryPage):
    """The caller's own notifications

    Newest first; with after_id, oldest first from there (catching up). 403: the service token
    is not a clinician, and these are a person's notifications."""
    me = current_clinician().employee_id
    with platform().db.transaction() as cur:
        rows, has_more = service.list_notifications(cur=cur, employee_id=me, unread_only=query.unread,
                                                    after_id=query.after_id, limit=query.limit)
        unread = service.unread_count(cur=cur, employee_id=me)
        # A notification names its patient and room, a handover its patients (incident_events.py).
        phi_access.record(cur, (patient for row in rows for patient in patients_named(row["data"])))
    return {"notifications": [service.as_json(row) for row in rows], "has_more": has_more,
            "unread_count": unread}


@rest.patch("/<int:notification_id>/read")
@clinician_only
@api.validate(resp=responses({200: NotificationRead}, (403, 404)))
def mark_my_notification_read(notification_id: int):
    """Mark one of the caller's notifications read (idempotent)

    404 also for someone else's notification: whether it exists is not revealed."""
    me = current_clinician().employee_id
    row = None
    with platform().db.transaction() as cur:
        if notification_id <= BIGINT_MAX:
            row = service.mark_read(cur=cur, employee_id=me, notification_id=notification_id)
        unread = service.unread_count(cur=cur, employee_id=me)
    if row is None:  # also when it is someone else's: never reveal that it exists
        raise ApiError(404, f"you have no notification {notification_id}")
    return {"notification": service.as_json(row), "unread_count": unread}


@rest.post("/read-all")
@clinician_only
@api.validate(json=ReadAll, body_optional=True, resp=responses({200: AllRead}, (403, 413)))
def mark_all_my_notifications_read(json: ReadAll):
    """Mark all the caller's unread notifications read"""
    me = current_clinician().employee_id
    with platform().db.transaction() as cur:
        marked = service.mark_all_read(cur=cur, employee_id=me, up_to_id=json.up_to_id)
        unread = service.unread_count(cur=cur, employee_id=me)
    return {"marked_read": marked, "unread_count": unread}


def _last_id() -> int | None:
    """?last_id=N on the WebSocket handshake: replay the caller's notifications after N."""
    raw = request.args.get("last_id", "")
    if raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > BIGINT_MAX:
        raise ApiError(400, "last_id must be a notification id (a whole number)", field="last_id")
    return int(raw)


@ticket_office.post("/ws-ticket")
@clinician_only
@api.validate(resp=responses({201: SocketTicket}, (403,)))
def issue_socket_ticket():
    """A one-time ticket for opening the WebSocket

    Open `/ws?ticket=<ticket>` within `expires_in` seconds; the ticket opens one socket, for the
    session that asked for it, and never another. 403: the service token is not a clinician."""
    with platform().db.transaction() as cur:
        ticket, expires_at = tickets.issue_ticket(cur, session_id=current_clinician().session_id)
    return {"ticket": ticket, "expires_at": expires_at.isoformat(), "expires_in": tickets.TICKET_SECONDS}, 201


@sockets.before_request
def authenticate_socket():
    """Refuse with a plain HTTP 401 before the upgrade. Browsers cannot set headers on a
    WebSocket, so they present a one-time ticket as ?ticket=; other clients may send their
    session in Authorization: Bearer. A session token in the URL is refused even when valid:
    URLs end up in logs. The socket belongs to whoever the session is, never to an id the
    client names."""
    if "token" in request.args:
        raise ApiError(401, "a session token is not accepted in a URL: get a one-time ticket from "
                            "POST /api/v1/ws-ticket and open /ws?ticket=<ticket>", field="token")
    ticket = request.args.get("ticket", "").strip()
    token = bearer_token()
    if not ticket and not token:
        raise ApiError(401, "sign in first: open /ws?ticket=<one-time ticket from POST /api/v1/ws-ticket> "
                            "or send Authorization: Bearer <session token>")
    last_id = _last_id()
    phi_access.declared_purpose()  # a malformed purpose is refused before the ticket is spent
    with platform().db.transaction() as cur:
        clinician = tickets.redeem_ticket(cur, ticket) if ticket else clinician_for_token(cur, token)
    if clinician is None:
        raise ApiError(401, "the ticket is unknown, used or expired, or the session has ended; "
                            "get a new ticket" if ticket else
                            "the session is invalid, expired or signed out; sign in again")
    g.socket_last_id = last_id
    g.socket_clinician = clinician
    # Whom the frames' patients are logged for, from where and why (a program may declare
    # break-glass in the handshake's headers; a browser reads for treatment).
    g.socket_accessor = phi_access.request_accessor(clinician)


@sock.route("/ws", bp=sockets)
@public  # authenticated by authenticate_socket above (a ticket in the URL, or a Bearer header)
def clinician_socket(ws):
    ClinicianSocket(
        ws, g.socket_clinician, hub=current_app.extensions["notification_hub"], db=platform().db,
        ping_seconds=platform().settings.WS_PING_SECONDS, accessor=g.socket_accessor,
    ).serve(g.socket_last_id)
