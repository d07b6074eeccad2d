"""HTTP routes: a clinician's own notification history and read state, and the WebSocket."""
from flask import Blueprint, current_app, g, request
from flask_sock import Sock

from healthguard.auth import bearer_token, clinician_for_token, clinician_only, current_clinician, public
from healthguard.db import BIGINT_MAX
from healthguard.errors import ApiError
from healthguard.web import json_body, platform

from . import service
from .hub import ClinicianSocket

MAX_PAGE = 200
DEFAULT_PAGE = 50

rest = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications")
sockets = Blueprint("sockets", __name__)
sock = Sock()


def _id_param(name: str, value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not 0 <= number <= BIGINT_MAX:
        raise ApiError(400, f"{name} must be a non-negative integer", parameter=name)
    return number


def _flag_param(name: str) -> bool:
    value = request.args.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(400, f"{name} must be true or false", parameter=name)
    return value in ("true", "1")


@rest.get("")
@clinician_only
def list_my_notifications():
    limit = _id_param("limit", request.args.get("limit", DEFAULT_PAGE))
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, f"limit must be between 1 and {MAX_PAGE}", parameter="limit")
    after_id = request.args.get("after_id")
    after_id = _id_param("after_id", after_id) if after_id is not None else None
    unread_only = _flag_param("unread")
    me = current_clinician().employee_id
    with platform().db.transaction() as cur:
        rows, has_more = service.list_notifications(cur=cur, employee_id=me, unread_only=unread_only,
                                                    after_id=after_id, limit=limit)
        unread = service.unread_count(cur=cur, employee_id=me)
    return {"notifications": [service.as_json(row) for row in rows], "has_more": has_more,
            "unread_count": unread}


@rest.patch("/<int:notification_id>/read")
@clinician_only
def mark_my_notification_read(notification_id: int):
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
def mark_all_my_notifications_read():
    up_to_id = None
    if request.content_length or request.is_json:
        body = json_body()
        if body.get("up_to_id") is not None:
            up_to_id = _id_param("up_to_id", body["up_to_id"])
    me = current_clinician().employee_id
    with platform().db.transaction() as cur:
        marked = service.mark_all_read(cur=cur, employee_id=me, up_to_id=up_to_id)
        unread = service.unread_count(cur=cur, employee_id=me)
    return {"marked_read": marked, "unread_count": unread}


@sockets.before_request
def authenticate_socket():
    """Refuse with a plain HTTP 401 before the upgrade. Browsers cannot set headers on a
    WebSocket, so the session token may come as ?token=; the socket belongs to whoever the
    token's session is, never to an id the client names."""
    token = bearer_token() or request.args.get("token", "").strip()
    if not token:
        raise ApiError(401, "sign in first: pass the session token as ?token= or Authorization: Bearer")
    with platform().db.transaction() as cur:
        clinician = clinician_for_token(cur, token)
    if clinician is None:
        raise ApiError(401, "the session is invalid, expired or signed out; sign in again")
    last_id = request.args.get("last_id")
    g.socket_last_id = _id_param("last_id", last_id) if last_id not in (None, "") else None
    g.socket_clinician = clinician


@sock.route("/ws", bp=sockets)
@public  # authenticated by authenticate_socket above, which can read the token from the URL
def clinician_socket(ws):
    ClinicianSocket(
        ws, g.socket_clinician, hub=current_app.extensions["notification_hub"], db=platform().db,
        ping_seconds=current_app.config["WS_PING_SECONDS"],
    ).serve(g.socket_last_id)
