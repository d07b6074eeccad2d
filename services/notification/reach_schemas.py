"""What the off-tab reach routes accept and answer (contact methods, notification rules, the
delivery ledger, reachability, channel acknowledgements). Same `api` as schemas.py: one
OpenAPI document for the service."""
from datetime import datetime
from typing import Literal

from pydantic import Field

from healthguard.api import RequestModel, ResponseModel, Text
from healthguard.db import BIGINT_MAX

Kind = Literal["email", "push", "phone", "badge"]
StepKind = Literal["email", "push", "phone", "badge", "sms", "voice"]  # contact_methods.STEP_KINDS
Urgency = Literal["HIGH", "LOW"]
AttemptStatus = Literal["queued", "sending", "sent", "delivered", "read", "failed", "dead_letter",
                        "cancelled", "acknowledged", "rejected"]


# Requests

class PushKeys(RequestModel):
    p256dh: Text(200) = Field(description="the browser's P-256 key, base64url (65 bytes)")
    auth: Text(100) = Field(description="the browser's auth secret, base64url (16 bytes)")


class PushSubscription(RequestModel):
    """PushSubscription.toJSON() as the browser gives it."""
    endpoint: Text(2048)
    expirationTime: float | None = None  # noqa: N815 (the browser's name)
    keys: PushKeys


class NewContactMethod(RequestModel):
    kind: Kind
    label: Text(100) | None = None
    address: Text(254) | None = Field(None, description="email, E.164 phone or badge id; not for push")
    subscription: PushSubscription | None = Field(None, description="push only: PushSubscription.toJSON()")


class ContactMethodFilter(RequestModel):
    employee_id: Text(64) | None = Field(None, description="a supervisor: that person's methods, masked")


class VerificationCode(RequestModel):
    code: Text(12)


class RuleStep(RequestModel):
    delay_seconds: int = Field(ge=0, le=86400, description="after the assignment")
    kind: StepKind | None = Field(None, description="every verified method of this kind (sms, voice: "
                                  "every verified phone, texted or called)")
    contact_method_id: int | None = Field(None, ge=1, le=BIGINT_MAX, description="your own rules: one method")


class RuleSet(RequestModel):
    """Steps per urgency (HIGH = CRITICAL/HIGH incidents, LOW = MEDIUM/LOW). An urgency left out
    is unchanged; an empty list removes its rules."""
    HIGH: list[RuleStep] | None = None
    LOW: list[RuleStep] | None = None


class DeliveryFilter(RequestModel):
    incident_id: int = Field(ge=1, le=BIGINT_MAX)


class ChannelAck(RequestModel):
    token: Text(100) = Field(description="the single-use token of a push payload or email link")
    action: Literal["acknowledge", "open", "delivered"] = Field(
        "acknowledge", description="acknowledge (uses the token up); open: the person opened the "
                                   "notification or link (the ledger's read time); delivered: the "
                                   "push reached the device's service worker (the ledger's delivered "
                                   "time). The token stays usable after open and delivered.")


# Responses

class ContactMethod(ResponseModel):
    contact_method_id: int
    employee_id: str
    kind: Kind
    label: str
    address: str = Field(description="the owner sees their email/phone/badge in full; a push endpoint "
                                     "and anything a supervisor sees is masked")
    verified: bool = Field(description="usable: verified and not disabled")
    verified_at: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime


class ContactMethodList(ResponseModel):
    contact_methods: list[ContactMethod]


class CreatedContactMethod(ResponseModel):
    contact_method: ContactMethod
    verification_sent: bool = Field(description="email: a code was sent to the address")


class TestResult(ResponseModel):
    status: Literal["sent", "delivered", "failed", "verification_sent"]
    reason: str | None = None


class VapidKey(ResponseModel):
    public_key: str = Field(description="applicationServerKey for PushManager.subscribe (base64url)")


class RuleStepOut(ResponseModel):
    position: int
    delay_seconds: int
    kind: StepKind | None
    contact_method_id: int | None


class UrgencyRules(ResponseModel):
    source: Literal["personal", "role", "hospital"] | None = None
    steps: list[RuleStepOut]


class Rules(ResponseModel):
    HIGH: UrgencyRules
    LOW: UrgencyRules


class DeliveryAttempt(ResponseModel):
    attempt_id: int
    incident_id: int
    employee_id: str
    channel: str
    contact_method_id: int | None
    address_hint: str | None
    rule_step: int
    status: AttemptStatus
    reason: str | None
    attempts: int
    due_at: datetime
    queued_at: datetime
    sending_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    cancelled_at: datetime | None
    acknowledged_at: datetime | None


class DeliveryList(ResponseModel):
    deliveries: list[DeliveryAttempt] = Field(description="oldest first")


class Reachable(ResponseModel):
    employee_id: str
    name: str | None = None
    role: str | None = None
    reachable: bool = Field(description="has a verified off-tab contact method")
    kinds: list[Kind] = Field(description="the kinds of their verified methods")


class Reachability(ResponseModel):
    on_duty: list[Reachable] = Field(description="everyone on the current rota")
    unreachable: list[str] = Field(description="employee ids on the rota with no off-tab method")


class MyReachability(ResponseModel):
    reachable: bool
    kinds: list[Kind]
    on_call: bool | None = Field(description="on the current rota; null when the on-call service "
                                             "did not answer")
    show_banner: bool = Field(description="on call and not reachable off the tab")


class ChannelAcknowledged(ResponseModel):
    incident_id: int
    status: str = Field(description="the incident's status now (acknowledge); read (open)")
