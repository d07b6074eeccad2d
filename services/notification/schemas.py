"""What the notification REST routes accept and answer. The same models validate requests and
generate the OpenAPI document at /api/v1/openapi.json (healthguard.api). The WebSocket at /ws is
not an HTTP operation and is not in the document: its handshake and frames are in WEBSOCKET.md."""
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from healthguard.api import RequestModel, ResponseModel, service_api
from healthguard.db import BIGINT_MAX
from healthguard.domain import Severity
from healthguard.incident_events import INCIDENT_EVENT_TYPES

api = service_api(
    "HealthGuard Ops notification service",
    "Stored notification history and read state of the signed-in clinician. Live push is the "
    "WebSocket at /ws (not an HTTP operation, so not in this document; see WEBSOCKET.md).")

MAX_PAGE, DEFAULT_PAGE = 200, 50


# Requests

class HistoryPage(RequestModel):
    unread: bool = Field(False, description="true: only unread notifications")
    after_id: int | None = Field(None, ge=0, le=BIGINT_MAX,
                                 description="catch up: only ids above this one, oldest first")
    limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class ReadAll(RequestModel):
    up_to_id: int | None = Field(None, ge=0, le=BIGINT_MAX,
                                 description="only up to this id: one that arrived after the list "
                                             "was shown stays unread")


# Responses

class Notification(ResponseModel):
    id: int = Field(description="increasing; the cursor for after_id and the WebSocket's last_id")
    event_id: str
    event_type: Literal[INCIDENT_EVENT_TYPES]
    employee_id: str = Field(description="always the caller")
    incident_id: int | None
    title: str
    message: str
    severity: Severity | None
    data: dict = Field(description="status, patient_id, room, alert_type, assigned_to, alert_count, "
                                   "reason (what happened), paged (whom it alarms), unowned_since, "
                                   "assignment_reason, previous_assignee, actor_id")
    created_at: datetime
    read_at: datetime | None


UnreadCount = Annotated[int, Field(ge=0, description="the caller's unread notifications after this request")]


class NotificationList(ResponseModel):
    notifications: list[Notification] = Field(description="newest first; oldest first with after_id")
    has_more: bool
    unread_count: UnreadCount


class NotificationRead(ResponseModel):
    notification: Notification
    unread_count: UnreadCount


class AllRead(ResponseModel):
    marked_read: int = Field(ge=0)
    unread_count: UnreadCount


class SocketTicket(ResponseModel):
    ticket: str = Field(description="open /ws?ticket=<ticket> with it; it opens one socket")
    expires_at: datetime
    expires_in: int = Field(description="seconds the ticket is valid for")


class BackgroundAlertsPrompt(ResponseModel):
    show: bool = Field(description="ask for system notifications now: never answered, or "
                                   "\"Not now\" a week ago or more")
    not_now_until: datetime | None = Field(description="\"Not now\" holds until then; null: never answered")


class MyPreferences(ResponseModel):
    background_alerts_prompt: BackgroundAlertsPrompt


class HospitalPreferences(ResponseModel):
    timezone: str = Field(description="HOSPITAL_TZ: the zone every time in the web UI is shown in",
                          examples=["Europe/London"])
