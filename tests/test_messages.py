"""Queue messages as models (healthguard.messages, incident_events): what a sender builds is what
a consumer parses; another schema version or a wrong shape is refused with a reason (the
consumer dead-letters it), never taken for something else."""
import datetime

import pytest

from healthguard.broker import NOTIFICATIONS_QUEUE, PermanentMessageError, alert_lane
from healthguard.incident_events import IncidentEvent, incident_event
from healthguard.messages import SCHEMA_VERSION, AlertMessage

INCIDENT = {"incident_id": 42, "title": "Asystole", "severity": "CRITICAL", "status": "ASSIGNED",
            "patient_id": "P001", "room": "101", "alert_type": "ASYSTOLE", "assigned_to": "D01",
            "created_at": datetime.datetime(2026, 2, 1, 10, 0, tzinfo=datetime.UTC)}
HISTORY = {"history_id": 7, "created_at": datetime.datetime(2026, 2, 1, 10, 0, 5, tzinfo=datetime.UTC)}


def test_an_incident_event_is_parsed_as_it_was_built():
    event = incident_event(INCIDENT, type="INCIDENT_ASSIGNED", history=HISTORY,
                           recipients=["D01", "D01", None, "N01"], message="assigned to you", paged=["D01"])
    row = event.outbox_row()
    assert row.queue == NOTIFICATIONS_QUEUE and row.message_id == "incident-42-assigned-7"
    assert row.payload["schema_version"] == SCHEMA_VERSION
    assert row.payload["recipients"] == ["D01", "N01"]
    assert IncidentEvent.parse(row.payload) == event


def test_an_alert_message_names_its_lane_and_parses_back():
    message = AlertMessage(alert_id=5, patient_id="P001", alert_type="ASYSTOLE", severity="CRITICAL",
                           occurred_at="2026-02-01T10:00:00+00:00")
    row = message.outbox_row()
    assert (row.queue, row.message_id) == (alert_lane("CRITICAL"), "alert-5")
    assert AlertMessage.parse(row.payload) == message
    # What was in flight before the version field existed is version 1.
    assert AlertMessage.parse({"alert_id": 5}).alert_id == 5


def test_the_alert_message_built_in_sql_has_the_models_fields():
    sql = AlertMessage.sql_object()
    for name in AlertMessage.model_fields:
        assert f"'{name}'" in sql
    assert f"'schema_version', {SCHEMA_VERSION}" in sql


@pytest.mark.parametrize(("message", "reason"), [
    ({"schema_version": 2, "alert_id": 5}, "schema version 2"),
    ({"schema_version": "1", "alert_id": 5}, "schema version '1'"),
    ({"alert_id": "5"}, "alert_id"),
    ({"alert_id": True}, "alert_id"),
    ({"alert_id": 0}, "alert_id"),
    ({"alert": 5}, "alert_id"),
    ({"alert_id": 5, "severity": "URGENT"}, "severity"),
    ({"alert_id": 5, "occurred_at": "yesterday"}, "occurred_at"),
    (["alert_id", 5], "not a JSON object"),
])
def test_an_alert_message_of_another_version_or_shape_is_refused_with_a_reason(message, reason):
    with pytest.raises(PermanentMessageError, match=reason):
        AlertMessage.parse(message)


GOOD_EVENT = {"event_id": "e1", "type": "INCIDENT_ESCALATED", "recipients": ["D01"], "incident_id": 3,
              "title": "Escalated", "message": "nobody acknowledged", "severity": "HIGH", "data": None,
              "occurred_at": "2026-02-01T10:00:00Z"}


@pytest.mark.parametrize(("change", "reason"), [
    ({"schema_version": 3}, "schema version 3"),
    ({"type": "INCIDENT_EXPLODED"}, "INCIDENT_EXPLODED"),
    ({"title": "  "}, "title"),
    ({"recipients": ["D01", ""]}, "recipients"),
    ({"recipients": ["D01"] * 501}, "recipients"),
    ({"incident_id": -1}, "incident_id"),
    ({"incident_id": "3"}, "incident_id"),
    ({"data": []}, "data"),
    ({"message": "x" * 4001}, "message"),
])
def test_an_incident_event_of_another_version_or_shape_is_refused_with_a_reason(change, reason):
    assert IncidentEvent.parse(GOOD_EVENT).data == {}
    with pytest.raises(PermanentMessageError, match=reason):
        IncidentEvent.parse({**GOOD_EVENT, **change})
