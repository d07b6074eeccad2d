"""What the care-team and silence routes accept and answer (documented in the service's OpenAPI
with the incident routes: the same `api`)."""
from datetime import datetime
from typing import Literal

from pydantic import Field

from healthguard.api import RequestModel, ResponseModel, Text, Timestamp

from .routing import ROUTED_AS
from .silences import REASONS

EmployeeId = Text(32)
PatientId = Text(32)
Ward = Text(64)


# Care teams

class WardQuery(RequestModel):
    ward: Ward | None = Field(None, description="by default the first ward by name",
                              examples=["Internal Medicine"])


class PatientAssignment(RequestModel):
    nurse_id: EmployeeId = Field(description="the patient's nurse until the end of their shift (rota)",
                                 examples=["N02"])
    doctor_id: EmployeeId | None = Field(None, description="optionally, the patient's doctor",
                                         examples=["D01"])


class Handover(RequestModel):
    from_employee_id: EmployeeId = Field(examples=["N02"])
    to_employee_id: EmployeeId = Field(examples=["N04"])


class ChargeNurse(RequestModel):
    employee_id: EmployeeId = Field(description="a nurse on duty now (rota)", examples=["N01"])


class Carer(ResponseModel):
    care_assignment_id: int
    employee_id: str
    name: str
    role: str
    care_role: Literal["NURSE", "DOCTOR"]
    starts_at: datetime
    ends_at: datetime = Field(description="the end of the carer's shift")
    assigned_by: str


class WardPatient(ResponseModel):
    patient_id: str
    name: str
    room: str
    nurse: Carer | None
    doctor: Carer | None


class Charge(ResponseModel):
    charge_id: int
    employee_id: str
    name: str
    starts_at: datetime
    ends_at: datetime


class StaffOnDuty(ResponseModel):
    employee_id: str
    name: str | None
    role: str
    signed_in: bool


class WardCareTeam(ResponseModel):
    ward: str
    wards: list[str] = Field(description="every ward with admitted patients")
    charge_nurse: Charge | None
    patients: list[WardPatient]
    staff_on_duty: list[StaffOnDuty] = Field(description="who may be given a patient now (rota)")


class HandoverDone(ResponseModel):
    from_employee_id: str
    to_employee_id: str
    patients: list[str]
    told: list[str] = Field(description="both are told (a notification each)")


class CareHistoryEntry(ResponseModel):
    care_assignment_id: int
    patient_id: str
    ward: str
    care_role: Literal["NURSE", "DOCTOR"]
    employee_id: str
    name: str
    assigned_by: str
    starts_at: datetime
    ends_at: datetime
    ended_at: datetime | None
    end_reason: Literal["REPLACED", "HANDOVER", "TRANSFER", "DISCHARGE", "ENDED"] | None


class CareHistory(ResponseModel):
    patient_id: str
    assignments: list[CareHistoryEntry] = Field(description="who cared for the patient, newest first")


# Silences

class NewSilence(RequestModel):
    patient_id: PatientId | None = None
    device_id: Text(64) | None = Field(None, examples=["MON-509"])
    alert_type: Text(64) | None = Field(None, examples=["O2_SATURATION_LOW"])
    ward: Ward | None = None
    reason: Literal[REASONS]
    note: Text(500) | None = Field(None, description="free text beside the reason")
    ends_at: Timestamp = Field(description="at most 8 hours from now")


class SilenceChange(RequestModel):
    ends_at: Timestamp | None = Field(None, description="at most 8 hours from the silence's start")
    note: Text(500) | None = None


class SilenceFilter(RequestModel):
    ward: Ward | None = Field(None, description="silences of this ward or of its patients")
    active: bool = Field(True, description="only the running ones")


class Silence(ResponseModel):
    silence_id: int
    patient_id: str | None
    device_id: str | None
    alert_type: str | None
    alert_name: str | None = Field(None, description="the alert type in words (in lists)")
    ward: str | None
    reason: Literal[REASONS]
    note: str | None
    created_by: str
    starts_at: datetime
    ends_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    end_reason: Literal["EXPIRED", "ENDED", "PATIENT_RETURNED"] | None
    active: bool
    held_incidents: list[int] = Field(description="the OPEN incidents it holds now (paging nobody)")


class Silences(ResponseModel):
    silences: list[Silence]


class EndedSilences(ResponseModel):
    ended: list[Silence]


class SilenceAuditEntry(ResponseModel):
    audit_id: int
    action: Literal["CREATED", "EDITED", "ENDED", "EXPIRED", "PATIENT_RETURNED"]
    actor_id: str | None
    at: datetime
    silence: dict


class SilenceAudit(ResponseModel):
    silence_id: int
    audit: list[SilenceAuditEntry]


# On the incident

class Told(ResponseModel):
    employee_id: str
    name: str
    role: str
    reason: str
    told_at: datetime


RoutedAs = Literal[ROUTED_AS]
