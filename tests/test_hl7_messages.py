"""Reading PCD-04 messages (hl7_messages, no I/O): whatever bytes a gateway or a stranger sends,
reading them either gives the alert or raises MessageError (answered AE, naming the field),
never another exception (answered AR, "send it again", with a traceback in the log) and never a
gigabyte. The listener's end-to-end answers are in test_hl7.py."""
import datetime
import random
import tracemalloc

from alert_ingestion import hl7_messages
from alert_ingestion.hl7_messages import MessageError

NOW = datetime.datetime(2026, 12, 7, 12, tzinfo=datetime.UTC)
GOOD = hl7_messages.report_alert(control_id="MSG-1", alert_id="AL-1", patient_id="P001", occurred_at=NOW,
                                 measured="150456^MDC_PULS_OXIM_SAT_O2^MDC", value=82,
                                 unit="262688^MDC_DIM_PERCENT^MDC", security="hgd_key")
HOSTILE_VALUES = ["\x00", "", "^^^^", "~~~", "\\", "&", "9" * 40, "١٢٣", "nan", "inf", "1e400", "\u2028",
                  "20261207120000+9999", "202612071200+2359", "2026120712", "00010101000000+1400",
                  "x" * 5000, "MSH", "|", "\\.sp999999999\\", "\\.spx\\", "\\X0G\\", "\\Zlocal\\",
                  "\\C2842\\", "\\.in+4\\", "\\Q\\", "\\F\\"]


def read(block: bytes):
    """What the listener does with a block before it touches the database, then the alert."""
    message = hl7_messages.parse(block)
    head = hl7_messages.header(message)
    hl7_messages.refuse_unreadable(message)
    hl7_messages.acknowledgement(head, "AE", control_id="X", now=NOW)
    return hl7_messages.alert_report(message)


def mutations(seed: int, count: int):
    """GOOD with fields replaced by hostile values, or its bytes flipped, cut and inserted."""
    rng = random.Random(seed)
    segments = [line.split("|") for line in GOOD.split("\r") if line]
    for _ in range(count):
        if rng.random() < 0.6:
            fields = [list(segment) for segment in segments]
            for _ in range(rng.randint(1, 3)):
                segment = fields[rng.randrange(len(fields))]
                number = rng.randrange(1, len(segment) + 2)
                segment.extend([""] * (number + 1 - len(segment)))
                segment[number] = rng.choice(HOSTILE_VALUES) if rng.random() < 0.7 \
                    else segment[number] + rng.choice(HOSTILE_VALUES)
            yield ("\r".join("|".join(segment) for segment in fields) + "\r").encode()
        else:
            block = bytearray(GOOD.encode())
            for _ in range(rng.randint(1, 6)):
                at = rng.randrange(len(block))
                choice = rng.random()
                if choice < 0.4:
                    block[at] = rng.randrange(256)
                elif choice < 0.7:
                    del block[at:at + rng.randint(1, 20)]
                else:
                    block[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
            yield bytes(block)


def test_the_good_message_reads():
    report = read(GOOD.encode())
    assert (report.patient_id, report.alert_id, report.value, report.unit) == ("P001", "AL-1", 82, "%")


def test_every_hostile_message_reads_or_is_a_message_error_within_a_few_megabytes():
    tracemalloc.start()
    try:
        outcomes = {"read": 0, "refused": 0}
        for block in mutations(seed=17, count=1500):
            try:
                read(block)
                outcomes["read"] += 1
            except MessageError as exc:
                assert exc.text, block
                outcomes["refused"] += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcomes["read"] > 0 and outcomes["refused"] > 0, outcomes  # both paths were taken
    assert peak < 64 * 1024 * 1024, peak  # \.sp999999999\ decoded would be a gigabyte


def test_unreadable_fields_are_named():
    for value, location in (("P0\x0001", "PID^1^3"), ("P001\\.sp999999999\\", "PID^1^3"),
                            ("P001\\.spx\\", "PID^1^3")):
        block = GOOD.replace("|P001^", f"|{value}^", 1).encode()
        message = hl7_messages.parse(block)
        assert hl7_messages.header(message).control_id == "MSG-1"  # the AE still answers it
        try:
            hl7_messages.refuse_unreadable(message)
        except MessageError as exc:
            assert exc.location == location and "PID-3" in exc.text, exc.text
        else:
            raise AssertionError(f"{value!r} was not refused")
