"""What the alert ingestion routes accept and answer. The same models validate requests and
generate the OpenAPI document at /api/v1/openapi.json (healthguard.api)."""
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from healthguard.api import QueryList, RequestModel, ResponseModel, Text, Timestamp, service_api
from healthguard.domain import Severity
from healthguard.params import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

from .alerts import DEVICE_SOURCES, MAX_SOURCE_ALARM_ID_LENGTH, SOURCES
from .hl7_gateways import MAX_ADDRESSES, MAX_ENDPOINT_LENGTH, MAX_NAME_LENGTH

api = service_api(
    "HealthGuard Ops alert ingestion",
    "Receives alarms from bedside devices, stores each durably and, through a transactional "
    "outbox, publishes it to the queue of its severity (`alerts.critical` ... `alerts.low`).")

PatientId = Text(32)
AlertType = Text(64)
# A measurement in the unit of its alert type (beats per minute, %, mmol/L, ...). The bounds
# are far beyond any physiological value; they keep the number a float the database can store.
Measurement = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1e9, le=1e9,
                                     description="the measured value, in the alert type's unit")]


# Requests

class AlertReport(RequestModel):
    """An alarm as a device reports it. Room, severity and category are taken from the patient
    and the alert type, never from the caller; fields not listed here are ignored."""
    patient_id: PatientId = Field(examples=["P001"])
    alert_type: AlertType = Field(examples=["CARDIAC_ARREST"])
    value: Measurement | None = None
    device_id: Text(100) | None = Field(None, examples=["MON-312"])
    source_alarm_id: Text(MAX_SOURCE_ALARM_ID_LENGTH) | None = Field(
        None, description="the device's own id of this alarm: with device_id (required with it) "
                          "a retry of the same alarm is stored once")
    occurred_at: Timestamp | None = Field(None, description="when the device raised it; default: now")
    source: Literal[DEVICE_SOURCES] = "DEVICE"


class ManualAlert(RequestModel):
    """A test alert raised by a signed-in clinician (drills, checks). Every field is optional and
    may be null: a random admitted patient, a random alert type and a typical value of that type
    fill in whatever is missing. Device fields (device_id, source_alarm_id) are refused."""
    model_config = ConfigDict(extra="forbid")

    patient_id: PatientId | None = Field(None, examples=["P004"])
    alert_type: AlertType | None = Field(None, examples=["GLUCOSE_LOW"])
    value: Measurement | None = None
    occurred_at: Timestamp | None = Field(None, description="default: now")
    source: Literal["MANUAL"] = "MANUAL"


class DeviceRegistration(RequestModel):
    """A device or gateway to register. Scope: one ward, or one patient, or neither (any patient);
    both at once is refused (422)."""
    model_config = ConfigDict(extra="forbid")

    name: Text(100) = Field(examples=["Ward 3 monitor gateway"])
    ward: Text(64) | None = Field(None, description="only patients of this ward", examples=["Cardiology"])
    patient_id: PatientId | None = Field(None, description="only this patient", examples=["P001"])


class HeartbeatInterval(RequestModel):
    """How often the device (or the HL7 gateway it is) is expected to be heard; two intervals
    without a beat raise DEVICE_SILENT."""
    model_config = ConfigDict(extra="forbid")

    interval_seconds: Annotated[int, Field(strict=True, ge=5, le=86400)] | None = Field(
        description="null: no heartbeat expected", examples=[60])


class Hl7GatewayRegistration(RequestModel):
    """The HL7 gateway (PCD-04 sender) a device of the registry is: who it says it is in MSH-3 and
    MSH-4 (first components), and optionally the addresses accepted without its key in MSH-8 and
    its MLLP listener for PCD-05 status. 422: an empty application, an HL7 delimiter (| ^ ~ \\ &)
    or a control character in a name, an address that is not an IP address or network or is
    wider than the operator allows (/16, IPv6 /64 by default), an endpoint that is not host:port
    or is outside the operator's device networks."""
    model_config = ConfigDict(extra="forbid")

    # min_length 0: the rules on their content are the domain's (422, shared with the CLI).
    sending_application: Text(MAX_NAME_LENGTH, min_length=0) = Field(
        description="MSH-3, first component", examples=["INTELLIVUE"])
    sending_facility: Text(MAX_NAME_LENGTH, min_length=0) = Field(
        "", description="MSH-4, first component", examples=["ICU_GW"])
    allowed_addresses: list[Text(50, min_length=0)] = Field(
        default_factory=list, max_length=MAX_ADDRESSES,
        description="IP addresses or networks (CIDR) accepted without the device key in MSH-8, "
                    "each no wider than a /16 (IPv6 /64) unless the operator set otherwise",
        examples=[["10.20.0.0/24"]])
    status_endpoint: Text(MAX_ENDPOINT_LENGTH, min_length=0) | None = Field(
        None, description="host:port of the gateway's MLLP listener for PCD-05 status "
                          "([address]:port for IPv6), inside the device networks the operator "
                          "configured; null: it wants no status",
        examples=["10.20.0.5:2576"])


class AlertFilter(RequestModel):
    severity: QueryList(Severity) = Field(default_factory=list)
    patient_id: PatientId | None = None
    alert_type: AlertType | None = None
    since: Timestamp | None = Field(None, description="received at or after")
    until: Timestamp | None = Field(None, description="received before")
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="page size")
    cursor: int | None = Field(None, ge=1, le=2**63 - 1,
                               description="the `next` value of the previous page")


class AlertTypeFilter(RequestModel):
    category: Text(32) | None = Field(None, description="only this category", examples=["CARDIAC"])


class PatientFilter(RequestModel):
    status: Literal["ADMITTED", "DISCHARGED"] | None = None


# Responses

class DeviceAlarm(ResponseModel):
    """What an HL7 gateway (IHE PCD-04) said of the alarm beyond the common fields (HL7.md)."""
    event_code: str = Field(description="the MDC event as received, e.g. 196614^MDC_EVT_ECG_ASYSTOLE")
    unmapped: bool = Field(description="the event code is not in the mapping table: stored as "
                                       "UNMAPPED_DEVICE_ALARM, to be mapped")
    phase: str | None = Field(description="the latest event phase: start, continue, end, ...")
    state: str | None = Field(description="active, latched or inactive")
    priority: str | None = Field(description="PH, PM, PL or PN")
    unit: str | None
    location: str | None = Field(description="PV1-3 as sent: point of care/room/bed")
    equipment: str | None = Field(description="OBX-18, the device")
    channel: str | None
    cleared_at: datetime | None = Field(description="when the device reported the alarm ended "
                                                    "(the incident stays until a clinician resolves it)")


class Alert(ResponseModel):
    alert_id: int
    status: Literal["RECEIVED", "INCIDENT_CREATED"] = Field(
        description="INCIDENT_CREATED once incident management has opened its incident")
    patient_id: str | None = Field(description="null for a device's own alarm (DEVICE_SILENT of a ward "
                                               "monitor or gateway): see device_name and ward")
    patient_name: str | None
    ward: str | None = Field(description="a device's own alarm: the device's ward (null: the whole "
                                         "hospital); a patient's alarm: null, their ward is the patient's")
    device_name: str | None = Field(description="a device's own alarm: the device")
    alert_type: str
    alert_name: str
    severity: Severity
    category: str
    room: str | None
    value: float | None
    device_id: str | None
    source_alarm_id: str | None
    source: Literal[SOURCES]
    triggered_by: str | None = Field(description="the clinician who raised a manual alert")
    occurred_at: datetime
    received_at: datetime
    incident_id: int | None
    incident_status: str | None
    device_alarm: DeviceAlarm | None = Field(description="HL7 (PCD-04) alarms only")


class AlertPage(ResponseModel):
    alerts: list[Alert] = Field(description="newest first")
    next: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
    limit: int


class AlertTypeEntry(ResponseModel):
    alert_type: str
    name: str
    category: str
    severity: Severity
    description: str
    unit: str | None
    typical_min: float | None
    typical_max: float | None
    routes_to: list[str] = Field(description="clinical roles to page, in order")


class AlertTypeCatalogue(ResponseModel):
    alert_types: list[AlertTypeEntry]


class Patient(ResponseModel):
    patient_id: str
    name: str
    date_of_birth: date | None
    room: str
    ward: str
    status: Literal["ADMITTED", "DISCHARGED"]
    admitted_at: datetime


class PatientList(ResponseModel):
    patients: list[Patient]


class Device(ResponseModel):
    device_id: int
    name: str
    ward: str | None = Field(description="scope: only patients of this ward")
    patient_id: str | None = Field(description="scope: only this patient")
    created_by: str | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None = Field(description="set: the key no longer works")
    last_seen_at: datetime | None = Field(description="last request with its key (to the minute)")
    heartbeat_interval_seconds: int | None = Field(
        description="expected interval between beats; null: none expected")
    last_beat_at: datetime | None = Field(description="last beat: an alarm, an HL7 message or a heartbeat")
    silent_since: datetime | None = Field(
        description="set while the device is alarmed as silent: its last beat")


class DeviceList(ResponseModel):
    devices: list[Device]


class DeviceWithKey(ResponseModel):
    device: Device
    key: str = Field(description="send as X-API-Key; shown this once and stored only as a hash")


class RevokedDevice(ResponseModel):
    device: Device


class Hl7Gateway(ResponseModel):
    gateway_id: int
    device_id: int
    device_name: str
    device_revoked: bool = Field(description="true: its messages are refused (AR)")
    sending_application: str = Field(description="MSH-3")
    sending_facility: str = Field(description="MSH-4; empty when it sends none")
    allowed_addresses: list[str] = Field(description="networks accepted without the key in MSH-8")
    status_endpoint: str | None = Field(description="host:port where PCD-05 status goes; null: none")
    created_at: datetime


class Hl7GatewayList(ResponseModel):
    gateways: list[Hl7Gateway]


class PatientBed(ResponseModel):
    patient_id: str
    room: str
    ward: str


class Heartbeat(ResponseModel):
    device_id: int
    last_beat_at: datetime
    silent_after: datetime | None = Field(description="when it is alarmed as silent without another beat")


class PatientRecord(Patient):
    """One patient, with the monitor that is silent now (if any)."""
    monitor_silent_since: datetime | None = Field(
        description="a device monitoring this patient missed two heartbeats: its last beat")
    silent_device: str | None = Field(description="the silent device's name")


class DeviceSelf(ResponseModel):
    """The calling device and the admitted patients it may report for (which bed is whose)."""
    device_id: int | None = Field(description="null for a bootstrap key (DEVICE_API_KEYS)")
    name: str
    ward: str | None
    patient_id: str | None
    patients: list[PatientBed]
