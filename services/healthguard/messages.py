"""Queue messages as models: each message is declared once, as a pydantic model that builds it
(the sender) and parses it (the consumer), with one schema version.

A consumer parses with `Model.parse(message)`. A message of a version it does not know (a newer
sender, during a rolling upgrade) or of the wrong shape raises PermanentMessageError, so the
consumer dead-letters it with the reason: kept, never lost, and never a crashed consumer. A
message without a version is version 1 (what was in flight before the field existed).
"""
import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError, field_validator

from .broker import PermanentMessageError, alert_lane
from .db import BIGINT_MAX
from .domain import SEVERITIES
from .outbox import OutboxRow

SCHEMA_VERSION = 1
VERSION_FIELD = "schema_version"


class QueueMessage(BaseModel):
    """What every queue message shares: its schema version, parsing and its outbox row."""
    model_config = ConfigDict(frozen=True, extra="ignore")
    kind: ClassVar[str] = "message"  # named in the reasons of dead letters

    schema_version: StrictInt = SCHEMA_VERSION

    @classmethod
    def parse(cls, message: dict):
        """The message as this model, or PermanentMessageError naming why it can never be."""
        if not isinstance(message, dict):
            raise PermanentMessageError(f"{cls.kind} is not a JSON object")
        version = message.get(VERSION_FIELD, 1)
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise PermanentMessageError(f"{cls.kind} of schema version {version!r}: this consumer "
                                        f"knows version {SCHEMA_VERSION} only")
        try:
            return cls.model_validate(message)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or cls.kind}: {e['msg']}"
                                 for e in exc.errors(include_url=False)[:5])
            raise PermanentMessageError(f"invalid {cls.kind}: {problems}") from None

    def payload(self) -> dict:
        return self.model_dump(mode="json")

    def outbox_row(self) -> OutboxRow:
        raise NotImplementedError


def known_severity(value: str | None) -> str | None:
    if value is not None and value not in SEVERITIES:
        raise ValueError(f"unknown severity {value!r}")
    return value


def iso_timestamp(value: str | None) -> str | None:
    if value is not None:
        try:
            datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 timestamp") from None
    return value


class AlertMessage(QueueMessage):
    """An alert to turn into an incident, on the lane of its severity (alerts.critical ...
    alerts.low). It carries the alert's id; the consumer re-reads the alert (the rest says what
    the alarm was to whoever reads a dead letter)."""
    kind: ClassVar[str] = "alert message"
    message_id_prefix: ClassVar[str] = "alert-"  # its outbox row's message_id: alert-<alert_id>

    alert_id: StrictInt
    patient_id: str | None = None
    alert_type: str | None = None
    severity: str | None = None
    occurred_at: str | None = None

    @field_validator("alert_id")
    @classmethod
    def _positive(cls, value: int) -> int:
        if not 0 < value <= BIGINT_MAX:
            raise ValueError("must be a positive 64-bit integer")
        return value

    check_severity = field_validator("severity")(known_severity)
    check_occurred_at = field_validator("occurred_at")(iso_timestamp)

    def outbox_row(self) -> OutboxRow:
        return OutboxRow(alert_lane(self.severity), f"{self.message_id_prefix}{self.alert_id}",
                         self.payload())

    @classmethod
    def sql_object(cls) -> str:
        """The message as a SQL jsonb_build_object over columns named as its fields (an alerts
        row): alert ingestion builds it in the statement that stores the alert (one round trip)."""
        fields = [f"'{VERSION_FIELD}', {SCHEMA_VERSION}"] + [
            f"'{name}', {name}" for name in cls.model_fields if name != VERSION_FIELD]
        return f"jsonb_build_object({', '.join(fields)})"
