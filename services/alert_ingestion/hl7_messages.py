"""HL7 v2 messages of IHE PCD Alarm Communication Management, without any I/O: reading a PCD-04
Report Alert (ORU^R40) into an `AlertReport`, and writing the acknowledgement (ACK with MSA and
ERR) and the PCD-05 Report Alert Status (ORA^R41). Parsing is python-hl7's; the segments and
fields used are listed in HL7.md."""
import datetime
import logging
import re
from dataclasses import dataclass

import hl7
import hl7.containers
import hl7.util

from .alerts import MAX_SOURCE_ALARM_ID_LENGTH

# The MLLP block's encoding: HL7's default character set is ASCII; UTF-8 is a superset that
# gateways configured for MSH-18 "UNICODE UTF-8" send. A block that is not UTF-8 is read as
# ISO 8859-1 (MSH-18 "8859/1", common in European gateways), where every byte is a character.
ENCODING = "utf-8"
FALLBACK_ENCODING = "iso-8859-1"
RECEIVING_APPLICATION = "HEALTHGUARD"

PHASES = frozenset({"start", "continue", "end", "present", "absent", "update", "escalate",
                    "inactivate", "deescalate", "reset", "stop", "start_only"})
STATES = frozenset({"inactive", "active", "latched"})
PRIORITIES = frozenset({"PH", "PM", "PL", "PN"})
# A few MDC units (OBX-6) as a clinician writes them; others are kept as received.
UNITS = {
    "MDC_DIM_PERCENT": "%", "MDC_DIM_BEAT_PER_MIN": "bpm", "MDC_DIM_RESP_PER_MIN": "breaths/min",
    "MDC_DIM_MMHG": "mmHg", "MDC_DIM_DEGC": "°C", "MDC_DIM_SEC": "s", "MDC_DIM_MILLI_L": "mL",
}
PHASE_ATTRIBUTE = "MDC_ATTR_EVENT_PHASE"
STATE_ATTRIBUTE = "MDC_ATTR_ALARM_STATE"
PRIORITY_ATTRIBUTE = "MDC_ATTR_ALARM_PRIORITY"
STATUS_TEXT = {"DELIVERED": "delivered", "ACCEPTED": "accepted", "RESOLVED": "resolved"}

# python-hl7 logs every escape sequence it cannot decode, quoting the field (a patient's
# identifier, say), and with a traceback for bad hex: input, never a defect of ours. parse()
# refuses those sequences itself, naming the field.
for _module in (hl7.util, hl7.containers):
    _module.logger.setLevel(logging.CRITICAL)

# The escape sequences of HL7 v2 (2.7 section 2.7) that python-hl7 decodes: delimiters,
# highlighting, hex, local (Z), character sets (C, M) and formatting commands. A formatting
# command's count is at most two digits: python-hl7 repeats the character that many times, so
# \.sp999999999\ would be a gigabyte, and a count that is no number fails it.
ESCAPE_SEQUENCE = re.compile(r"[FSTREHN]|X(?:[0-9A-Fa-f]{2})*|Z[^\r]*|C[0-9A-Fa-f]{4}|M[0-9A-Fa-f]{4,6}"
                             r"|\.(?:br|fi|nf|ce)|\.(?:sp|in|ti|sk)[+-]?[0-9]{0,2}", re.ASCII)

# HL7 table 0357, the error codes an ERR segment gives.
SEGMENT_SEQUENCE_ERROR = "100^Segment sequence error^HL70357"
REQUIRED_FIELD_MISSING = "101^Required field missing^HL70357"
DATA_TYPE_ERROR = "102^Data type error^HL70357"
TABLE_VALUE_NOT_FOUND = "103^Table value not found^HL70357"
UNSUPPORTED_MESSAGE_TYPE = "200^Unsupported message type^HL70357"
UNKNOWN_KEY = "204^Unknown key identifier^HL70357"
APPLICATION_ERROR = "207^Application internal error^HL70357"

# UTC offsets in use somewhere (Baker Island -12:00 to Kiribati +14:00), in minutes.
EARLIEST_OFFSET_MINUTES, LATEST_OFFSET_MINUTES = -12 * 60, 14 * 60


class MessageError(Exception):
    """A message this service cannot use: answered AE with an ERR segment saying why and where."""

    def __init__(self, text: str, *, code: str = DATA_TYPE_ERROR, location: str = ""):
        super().__init__(text)
        self.text, self.code, self.location = text, code, location


@dataclass(frozen=True)
class Header:
    """What an acknowledgement needs of the message it answers, and who sent it."""
    control_id: str
    sending_application: str
    sending_facility: str
    receiving_facility: str
    security: str
    message_type: str
    trigger: str
    version: str


@dataclass(frozen=True)
class AlertReport:
    """One alert of a PCD-04 message, as the device reported it."""
    patient_id: str
    alert_id: str
    occurred_at: datetime.datetime | None
    event_code: int | None
    event_name: str
    parameter_name: str | None
    value: float | None
    unit: str | None
    phase: str | None
    state: str | None
    priority: str | None
    equipment: str | None
    channel: str | None
    location: str | None


def _field(segment, field: int, component: int = 1, repeat: int = 1) -> str:
    """The text of SEG-field.repeat.component, '' when absent (python-hl7 counts MSH fields as
    HL7 does: MSH-3 is field 3)."""
    try:
        return str(segment.extract_field(1, field, repeat, component, 1)).strip()
    except (IndexError, KeyError, AttributeError):
        return ""


def _components(segment, field: int) -> list[str]:
    components, number = [], 1
    while number <= 10:
        text = _field(segment, field, number)
        components.append(text)
        number += 1
    while components and not components[-1]:
        components.pop()
    return components


def parse(block: bytes) -> hl7.Message:
    """The message in an MLLP block (raises MessageError when it is not HL7)."""
    try:
        text = block.decode(ENCODING)
    except UnicodeDecodeError:
        text = block.decode(FALLBACK_ENCODING)
    # Blank lines between segments (some senders end each with CR LF, or two CRs) are not
    # segments; python-hl7 fails on an empty one.
    text = "\r".join(segment for segment in text.replace("\n", "\r").split("\r") if segment)
    if not text.startswith("MSH") or len(text) < 8:
        raise MessageError("the message does not begin with an MSH segment",
                           code=SEGMENT_SEQUENCE_ERROR, location="MSH")
    try:
        return hl7.parse(text)
    except Exception as exc:  # python-hl7 raises several types for broken text
        raise MessageError(f"unparseable HL7: {exc}", code=SEGMENT_SEQUENCE_ERROR) from exc


def _refuse_unknown_escapes(text: str) -> None:
    """MessageError naming the first field holding an escape sequence python-hl7 cannot decode
    safely. The escape character is MSH-2's third; MSH-1 and MSH-2 themselves are never decoded."""
    end_of_msh2 = text.find(text[3], 4)
    characters = text[4:end_of_msh2] if end_of_msh2 != -1 else text[4:]
    if len(characters) < 3:
        return
    escape = characters[2]
    body = text[end_of_msh2:] if end_of_msh2 != -1 else ""
    for sequence in re.findall(re.escape(escape) + "(.*?)" + re.escape(escape), body, re.DOTALL):
        if not ESCAPE_SEQUENCE.fullmatch(sequence):
            segment, number, field = _field_holding(text, f"{escape}{sequence}{escape}")
            raise MessageError(f"{segment}-{field} holds an escape sequence that is not HL7's: "
                               f"{_text(sequence[:20])!r}", location=f"{segment}^{number}^{field}")


def refuse_unreadable(message: hl7.Message) -> None:
    """MessageError naming the first field that holds what cannot be read safely:
    - a NUL. PostgreSQL cannot store one in text: said here, where the field is known, rather
      than by the database, whose error would read as "not stored now" and have the gateway
      send it again for ever;
    - an escape sequence python-hl7 cannot decode safely (see ESCAPE_SEQUENCE).
    Called before any field but the header's is read."""
    text = str(message)
    if "\x00" in text:
        segment, sequence, field = _field_holding(text, "\x00")
        raise MessageError(f"{segment}-{field} holds a NUL character",
                           location=f"{segment}^{sequence}^{field}")
    _refuse_unknown_escapes(text)


def header(message: hl7.Message) -> Header:
    """MSH's fields as sent, escape sequences not decoded: the header is read before
    refuse_unreadable() has looked at the message, and its fields are names and codes."""
    msh = str(message.segment("MSH"))
    fields = msh.split(msh[3])  # fields[n - 1] is MSH-n: MSH-1 is the separator itself
    encoding = fields[1] if len(fields) > 1 else ""
    component, repetition = (encoding[:1] or "^"), (encoding[1:2] or "~")
    subcomponent = encoding[3:4] or "&"

    def raw(number: int, part: int = 1) -> str:
        value = fields[number - 1] if number - 1 < len(fields) else ""
        parts = value.split(repetition)[0].split(component)
        return parts[part - 1].split(subcomponent)[0].strip() if part - 1 < len(parts) else ""
    return Header(
        control_id=raw(10), sending_application=raw(3), sending_facility=raw(4),
        receiving_facility=raw(6), security=raw(8), message_type=raw(9, 1), trigger=raw(9, 2),
        version=raw(12) or "2.6",
    )


def _segment(message: hl7.Message, name: str):
    try:
        return message.segment(name)
    except KeyError:
        raise MessageError(f"the {name} segment is missing", code=SEGMENT_SEQUENCE_ERROR,
                           location=name) from None


def parse_timestamp(text: str, *, field: str) -> datetime.datetime | None:
    """An HL7 DTM (YYYYMMDDHHMM[SS[.S+]][+/-ZZZZ]) of `field` (OBR-7); without an offset it is
    taken as UTC."""
    if not text:
        return None
    location = _location(field)
    match = re.fullmatch(r"(\d{12})(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?", text, re.ASCII)
    if match is None:
        raise MessageError(f"{field} is not an HL7 timestamp: {text[:40]!r}", location=location)
    try:
        moment = datetime.datetime.strptime(match.group(1) + (match.group(2) or "00"), "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise MessageError(f"{field} is not a valid date and time", location=location) from exc
    offset = match.group(3)
    zone = datetime.UTC
    if offset:
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        signed = (hours * 60 + minutes) * (1 if offset[0] == "+" else -1)
        # The offsets that exist on Earth; +2359 is a valid number but no clock's zone, and the
        # database refuses anything past +-15:59.
        if minutes >= 60 or not EARLIEST_OFFSET_MINUTES <= signed <= LATEST_OFFSET_MINUTES:
            raise MessageError(f"{field} has a time zone offset {offset} outside -1200 to +1400",
                               location=location)
        zone = datetime.timezone(datetime.timedelta(minutes=signed))
    return moment.replace(tzinfo=zone)


def _location(field: str) -> str:
    """ERR-2 (segment^sequence^field) of a field named as people write it: OBR-7 is OBR^1^7."""
    segment, _, number = field.partition("-")
    return f"{segment}^1^{number}"


def _field_holding(text: str, character: str) -> tuple[str, int, int]:
    """(segment name, its sequence among segments of that name, field number) of the first field
    holding `character` (a character or a few), numbered as HL7 does (MSH-1 is the field
    separator itself)."""
    separator = text[3]
    seen: dict[str, int] = {}
    for segment in text.split("\r"):
        name = segment[:3]
        seen[name] = seen.get(name, 0) + 1
        if character in segment:
            fields = segment.split(separator)
            index = next((i for i, value in enumerate(fields) if character in value), None)
            if index is None:  # across fields, or the field separator itself
                return _text(name) or "MSH", seen[name], 1 if name == "MSH" else 0
            if name == "MSH":
                index += 1
            return _text(name) or "MSH", seen[name], index
    return "MSH", 1, 1


def alert_report(message: hl7.Message) -> AlertReport:
    """The alert of a PCD-04 message (raises MessageError naming the field that is wrong)."""
    pid = _segment(message, "PID")
    obr = _segment(message, "OBR")
    patient_id = _field(pid, 3)
    if not patient_id:
        raise MessageError("PID-3 (the patient identifier) is missing", code=REQUIRED_FIELD_MISSING,
                           location="PID^1^3")
    alert_id = _field(obr, 3)
    if not alert_id:
        raise MessageError("OBR-3 (the alert identifier) is missing", code=REQUIRED_FIELD_MISSING,
                           location="OBR^1^3")
    if len(alert_id) > MAX_SOURCE_ALARM_ID_LENGTH:
        raise MessageError(f"OBR-3 (the alert identifier) is longer than {MAX_SOURCE_ALARM_ID_LENGTH} "
                           f"characters", location="OBR^1^3")
    try:
        observations = message.segments("OBX")
    except KeyError:
        raise MessageError("the alert has no OBX segments", code=SEGMENT_SEQUENCE_ERROR,
                           location="OBX") from None
    try:
        location = "/".join(_components(message.segment("PV1"), 3)) or None
    except KeyError:
        location = None

    event = next((obx for obx in observations if _field(obx, 3, 2).startswith("MDC_EVT")),
                 observations[0])
    event_name = _field(event, 3, 2)
    code_text = _field(event, 3, 1)
    if not event_name and not code_text:
        raise MessageError("OBX-3 of the alert (its MDC event code) is missing",
                           code=REQUIRED_FIELD_MISSING, location="OBX^1^3")
    # MDC codes are 32-bit (partition << 16 | term): nine digits at most, as the mapping table's column.
    if code_text and not re.fullmatch(r"[0-9]{1,9}", code_text, re.ASCII):
        raise MessageError(f"OBX-3.1 of the alert is not a numeric MDC code: {code_text[:40]!r}",
                           location=f"OBX^{observations.index(event) + 1}^3")
    event_code = int(code_text) if code_text else None

    attributes = {_field(obx, 3, 2): _field(obx, 5) for obx in observations}
    phase = attributes.get(PHASE_ATTRIBUTE, "").lower() or None
    state = attributes.get(STATE_ATTRIBUTE, "").lower() or None
    priority = (attributes.get(PRIORITY_ATTRIBUTE) or _field(event, 8)).upper() or None
    for name, value, allowed in (("event phase", phase, PHASES), ("alarm state", state, STATES),
                                 ("alarm priority", priority, PRIORITIES)):
        if value is not None and value not in allowed:
            raise MessageError(f"unknown {name} {value[:40]!r}", code=TABLE_VALUE_NOT_FOUND, location="OBX")

    measured = next((obx for obx in observations if _field(obx, 2) == "NM"), None)
    value = unit = parameter = None
    if measured is not None:
        parameter = _field(measured, 3, 2) or None
        try:
            value = float(_field(measured, 5)) if _field(measured, 5) else None
        except ValueError:
            raise MessageError("OBX-5 of the measured value is not a number",
                               location=f"OBX^{observations.index(measured) + 1}^5") from None
        if value is not None and not -1e9 < value < 1e9:
            raise MessageError("OBX-5 of the measured value is out of range",
                               location=f"OBX^{observations.index(measured) + 1}^5")
        unit_name = _field(measured, 6, 2) or _field(measured, 6, 1)
        unit = UNITS.get(unit_name, unit_name) or None

    sub_id = _field(event, 4).split(".")
    return AlertReport(
        patient_id=patient_id, alert_id=alert_id,
        occurred_at=parse_timestamp(_field(obr, 7), field="OBR-7"),
        event_code=event_code, event_name=event_name or code_text, parameter_name=parameter,
        value=value, unit=unit, phase=phase, state=state, priority=priority,
        equipment=_field(event, 18) or None,
        channel=sub_id[2] if len(sub_id) >= 3 and sub_id[2] else None,
        location=location,
    )


# --- Writing ------------------------------------------------------------------------------------

def _text(value) -> str:
    """A value made safe to put in one HL7 component: no separators, no segment breaks, no other
    control characters (a NUL echoed from the message answered)."""
    return re.sub(r"[|^~\\&\x00-\x1f\x7f]", " ", str(value or ""))[:200]


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y%m%d%H%M%S+0000")


def acknowledgement(head: Header | None, code: str, *, control_id: str, now: datetime.datetime,
                    error: MessageError | None = None) -> bytes:
    """The ACK (original mode) answering a message: MSA-1 AA, AE or AR, MSA-2 its control id,
    and an ERR segment when it was not accepted. `head` is None for a block that was not HL7."""
    head = head or Header("", "", "", "", "", "", "", "2.6")
    segments = [
        "|".join(["MSH", "^~\\&", RECEIVING_APPLICATION, _text(head.receiving_facility),
                  _text(head.sending_application), _text(head.sending_facility), timestamp(now), "",
                  f"ACK^{_text(head.trigger) or 'R40'}^ACK", control_id, "P", _text(head.version)]),
        "|".join(["MSA", code, _text(head.control_id)]),
    ]
    if error is not None:
        severity = "E"
        segments.append("|".join(["ERR", "", _text(error.location).replace(" ", "^"), error.code,
                                  severity, "", "", "", _text(error.text)]))
    return ("\r".join(segments) + "\r").encode(ENCODING)


def alert_status(*, gateway: dict, alert: dict, status: str, employee_id: str | None,
                 control_id: str, now: datetime.datetime) -> str:
    """PCD-05 Report Alert Status (ORA^R41): what became of the alert the gateway reported
    (OBR-3 its identifier): delivered to a clinician, accepted (acknowledged) or resolved."""
    segments = [
        "|".join(["MSH", "^~\\&", RECEIVING_APPLICATION, "", _text(gateway["sending_application"]),
                  _text(gateway["sending_facility"]), timestamp(now), "", "ORA^R41^ORA_R41",
                  control_id, "P", "2.6", "", "", "AL", "NE"]),
        "|".join(["PID", "", "", _text(alert["patient_id"])]),
        "|".join(["OBR", "1", _text(alert["source_alarm_id"]), _text(alert["source_alarm_id"]),
                  "196616^MDC_EVT_ALARM^MDC", "", "", timestamp(alert["occurred_at"])]),
        "|".join(["OBX", "1", "ST", "ALERT_STATUS^Alert dissemination status^HEALTHGUARD", "1",
                  STATUS_TEXT[status], "", "", "", "", "", "F", "", "", timestamp(now)]),
    ]
    if employee_id:
        segments.append("|".join(["OBX", "2", "ST", "ALERT_RECIPIENT^Clinician^HEALTHGUARD", "2",
                                  _text(employee_id), "", "", "", "", "", "F"]))
    return "\r".join(segments) + "\r"


def acknowledged(answer: str) -> tuple[str, str]:
    """MSA-1 of an acknowledgement and the ERR-8 text saying why when there is one ('' when
    absent)."""
    try:
        message = hl7.parse(answer.strip("\x0b\x1c\r\n"))
        code = _field(message.segment("MSA"), 1)
    except Exception:
        return "", ""
    try:
        return code, _field(message.segment("ERR"), 8)
    except KeyError:
        return code, ""


def report_alert(*, control_id: str, alert_id: str, patient_id: str, occurred_at: datetime.datetime,
                 event: str = "196614^MDC_EVT_ECG_ASYSTOLE^MDC", phase: str = "start",
                 state: str = "active", priority: str = "PH", measured: str | None = None,
                 value: float | None = None, unit: str | None = None, application: str = "GATEWAY",
                 facility: str = "", security: str = "", location: str = "",
                 equipment: str = "0123456789ABCDEF^EUI-64") -> str:
    """A PCD-04 Report Alert (ORU^R40) laid out as the PCD TF-2 examples: the alert's event row
    (OBX-3 the MDC event, OBX-8 its priority, OBX-18 the device), the measured value when there
    is one, then its phase, state and priority rows, all under sub-ids 1.1.1.<n>. For the
    simulator, the benchmark and the tests: what a gateway sends."""
    when = timestamp(occurred_at)
    obx = [["1", "ST", event, "1.1.1.1", "", "", "", priority, "", "", "F", "", "", when,
            "", "", "", equipment]]
    if measured is not None:
        obx.append([str(len(obx) + 1), "NM", measured, "1.1.1.2", f"{value:g}" if value is not None else "",
                    unit or "", "", "", "", "", "F"])
    for code, text in (("68481^MDC_ATTR_EVENT_PHASE^MDC", phase), ("68482^MDC_ATTR_ALARM_STATE^MDC", state),
                       ("68484^MDC_ATTR_ALARM_PRIORITY^MDC", priority)):
        obx.append([str(len(obx) + 1), "ST", code, f"1.1.1.{len(obx) + 1}", text, "", "", "", "", "", "F"])
    segments = [
        ["MSH", "^~\\&", application, facility, RECEIVING_APPLICATION, "", when, security,
         "ORU^R40^ORU_R40", control_id, "P", "2.6", "", "", "AL", "NE", "", "UNICODE UTF-8", "", "",
         "IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.4.4.4^ISO"],
        ["PID", "", "", f"{patient_id}^^^HOSPITAL^PI"],
        ["PV1", "", "I", location],
        ["OBR", "1", f"{alert_id}^{application}", f"{alert_id}^{application}", "196616^MDC_EVT_ALARM^MDC",
         "", "", when],
        *(["OBX", *row] for row in obx),
    ]
    return "\r".join("|".join(segment) for segment in segments) + "\r"


def keep_alive(*, control_id: str, now: datetime.datetime, application: str = "GATEWAY", facility: str = "",
               security: str = "") -> str:
    """An MSH-only message: a gateway's keep-alive on its connection, a heartbeat (heartbeats.py)."""
    return "|".join(["MSH", "^~\\&", application, facility, RECEIVING_APPLICATION, "", timestamp(now),
                     security, "ORU^R40^ORU_R40", control_id, "P", "2.6"]) + "\r"
