"""The PHI access log: who read which patient's identifying data, when, from where and why.

Every route whose answer carries patient-identifying data (names, ages, rooms, readings, patient
ids) calls `record(cur, patient_ids)` with the patients of its answer, inside the transaction that
read them: one INSERT for the whole answer (a list of 50 incidents is one statement, not 50), no
transaction of its own. The log is append-only for the services' database role (migration 0020:
INSERT and SELECT only), hash-chained by healthguard.audit, and read by privacy officers only.

Purpose. A clinician reads for "treatment" unless they say otherwise. To read a patient they are
not caring for, they break the glass: the request carries

    X-Access-Purpose: break-glass
    X-Access-Reason: <why, typed by the clinician; 3 to 500 characters>

and the reason is kept with the record. With PHI_BREAK_GLASS_REQUIRED=1, a single patient's record
(an incident's or an alert's detail) read by a clinician who is not caring for that patient
(`cares_for` below: assigned to one of their alarms, or on their care team this shift) without
the break-glass headers is refused with 403, naming the headers.
Devices and services always read for treatment: the device for its own beds, the service for a
clinician it acts for.

What is not an HTTP answer: the notification service's WebSocket pushes patients' data to open
dashboards long after the handshake. Its frames are logged through `BatchedAccessLog` (below),
with the reader, address and purpose taken once from the handshake (`request_accessor`).
"""
import collections
import dataclasses
import datetime
import logging
import threading

from flask import g, has_request_context, request

from . import clock
from .addresses import client_address
from .care_team_terms import CURRENT, CURRENT_CHARGE
from .context import settings
from .errors import ApiError
from .threads import BackgroundThread

log = logging.getLogger(__name__)

PURPOSE_HEADER = "X-Access-Purpose"
REASON_HEADER = "X-Access-Reason"
TREATMENT = "treatment"
BREAK_GLASS = "break-glass"
PURPOSES = (TREATMENT, BREAK_GLASS)
REASON_LENGTH = (3, 500)

# A read's transaction wrote nothing before the log did, so its commit used to cost nothing; with
# the entry it would wait for the WAL to reach the disk, which measured +13 ms a request on this
# shared machine (the insert itself is well under a millisecond). The read's commit does not wait
# (synchronous_commit off for this transaction only, sent with the insert: no extra round trip):
# the entry is durable a few hundred milliseconds later, and only a crash of PostgreSQL itself in
# that window loses it (never half of it; the WAL stays consistent). Only for read routes: a
# transaction that changed anything else must not call record() before its commit.
# One statement for any number of entries (one column array each), an answer's or a batch's.
INSERT_ACCESS = """
    SET LOCAL synchronous_commit = off;
    INSERT INTO phi_access_log (accessed_at, patient_id, employee_id, device_id, accessor_kind, route,
                                address, purpose, reason)
    SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[],
                         %s::inet[], %s::text[], %s::text[])
"""


def declared_purpose() -> tuple[str, str | None]:
    """The purpose the request declares (treatment when it declares none) and its reason.
    400 for an unknown purpose, or break-glass without a reason."""
    purpose = request.headers.get(PURPOSE_HEADER, "").strip().lower() or TREATMENT
    if purpose not in PURPOSES:
        raise ApiError(400, f"{PURPOSE_HEADER} must be one of: {', '.join(PURPOSES)}", field=PURPOSE_HEADER)
    reason = request.headers.get(REASON_HEADER, "").strip() or None
    if purpose == BREAK_GLASS:
        low, high = REASON_LENGTH
        if reason is None or not low <= len(reason) <= high:
            raise ApiError(400, f"break-glass needs a reason of {low} to {high} characters in "
                                f"{REASON_HEADER}", field=REASON_HEADER)
        return purpose, reason
    return purpose, None


def cares_for(cur, *, employee_id: str, patient_id: str) -> bool:
    """Whether the clinician is caring for the patient now: the assignee of one of the patient's
    unresolved incidents, or on duty for the patient: their nurse or doctor this shift, or the
    charge nurse of their ward (care_team_terms, the care team routing pages). Being signed in
    is not enough: whoever asks with a session is signed in."""
    cur.execute(f"""
        SELECT EXISTS (
            SELECT 1 FROM incidents i
            WHERE i.patient_id = %(patient)s AND i.status <> 'RESOLVED' AND i.assigned_to = %(employee)s
        ) OR EXISTS (
            SELECT 1 FROM care_team_assignments c
            WHERE c.patient_id = %(patient)s AND c.employee_id = %(employee)s AND {CURRENT}
        ) OR EXISTS (
            SELECT 1 FROM ward_charge_nurses w JOIN patients p ON p.ward = w.ward
            WHERE p.patient_id = %(patient)s AND w.employee_id = %(employee)s AND {CURRENT_CHARGE}
        ) AS cares""", {"patient": patient_id, "employee": employee_id, "at": clock.now()})  # noqa: S608
    return cur.fetchone()["cares"]


def check_single_patient_access(cur, patient_id: str | None) -> None:
    """Before answering one patient's record: with PHI_BREAK_GLASS_REQUIRED, a clinician who is
    not caring for the patient must break the glass (403 otherwise)."""
    caller = getattr(g, "caller", None)
    if patient_id is None:
        return  # a device's own alarm (migration 0022): no patient's data
    if caller is None or caller.is_service or not settings().PHI_BREAK_GLASS_REQUIRED:
        return
    purpose, _ = declared_purpose()
    if purpose == BREAK_GLASS:
        return
    if not cares_for(cur, employee_id=caller.clinician.employee_id, patient_id=patient_id):
        raise ApiError(403, f"you are not caring for patient {patient_id}: to read their record, send "
                            f"{PURPOSE_HEADER}: {BREAK_GLASS} and the reason in {REASON_HEADER} "
                            "(the privacy office reviews every break-glass access)")


@dataclasses.dataclass(frozen=True, slots=True)
class Accessor:
    """Who reads, from which address and why: the same for every patient of one answer, and for
    every frame of one WebSocket."""
    kind: str  # EMPLOYEE, DEVICE or SERVICE
    employee_id: str | None
    device_id: int | None
    address: str | None
    purpose: str
    reason: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Access:
    """One entry of the log: this patient's data went to this reader at this time, by this route."""
    at: datetime.datetime
    patient_id: str
    accessor: Accessor
    route: str


def request_accessor(clinician=None) -> Accessor:
    """The reader of this request's answer: its device, its clinician (`clinician` when the
    request authenticated them itself, as the WebSocket's handshake does) or the service token.
    400 for a malformed declared purpose (declared_purpose)."""
    device = getattr(g, "device", None)
    caller = getattr(g, "caller", None)
    if clinician is None and device is None and caller is not None:
        clinician = caller.clinician
    if device is not None:
        return Accessor("DEVICE", None, device.device_id, _address(), TREATMENT, None)
    purpose, reason = declared_purpose()
    if clinician is not None:
        return Accessor("EMPLOYEE", clinician.employee_id, None, _address(), purpose, reason)
    return Accessor("SERVICE", None, None, _address(), purpose, reason)


def _address() -> str | None:
    return client_address(request, settings().TRUSTED_PROXIES)


def unique_patients(patient_ids) -> list[str]:
    """Each patient once, in order; no patient (None, "") is no entry."""
    return list(dict.fromkeys(p for p in patient_ids if p))


def insert(cur, accesses) -> None:
    """Append these entries in one statement, in the caller's transaction (whose commit does not
    wait for the disk: INSERT_ACCESS)."""
    accesses = list(accesses)
    if accesses:
        cur.execute(INSERT_ACCESS, (
            [a.at for a in accesses], [a.patient_id for a in accesses],
            [a.accessor.employee_id for a in accesses], [a.accessor.device_id for a in accesses],
            [a.accessor.kind for a in accesses], [a.route for a in accesses],
            [a.accessor.address for a in accesses], [a.accessor.purpose for a in accesses],
            [a.accessor.reason for a in accesses]))


def record(cur, patient_ids) -> int:
    """Log that this request's answer carries these patients' data: one row per patient, one
    statement, in the caller's (read) transaction. Returns the number of patients recorded."""
    patients = unique_patients(patient_ids)
    if not patients or not has_request_context():
        return 0
    accessor, at = request_accessor(), clock.now()
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    insert(cur, (Access(at, patient, accessor, f"{request.method} {rule}") for patient in patients))
    return len(patients)


class BatchedAccessLog(BackgroundThread):
    """The log of what a process pushes rather than answers (the WebSocket's frames): `add` only
    appends to memory, so a frame's send never waits on the database; this one thread per process
    writes what was added every `seconds`, or as soon as `batch` entries are held, one INSERT per
    batch (`insert`, the same statement as an HTTP answer's). Stopping writes what is held.

    What a crash can lose: the entries added since the last write, at most `seconds` worth (half
    a second by default), and never a partial batch (one statement). Acceptable because the
    same window already exists for every HTTP answer (INSERT_ACCESS commits without waiting for
    the disk), because the frames lost are the last ones before the process died, and because
    the alternative that loses nothing, logging in the notification worker's storing
    transaction, logs the wrong thing: the recipients a notification is addressed to, not the
    sockets that were open to receive it, nothing of the incident_updated broadcast (whoever has a
    dashboard open on any instance) and nothing of replays. A write per frame would put the
    database on the push path. While the database is unreachable the entries wait (and are
    retried) up to `max_held`; beyond that new ones are dropped, counted and logged as an error,
    rather than holding the sockets up or growing without bound."""

    name = "phi-access-log"

    def __init__(self, db, *, seconds: float = 0.5, batch: int = 1000, max_held: int = 100_000):
        super().__init__()
        self.db, self.seconds, self.batch, self.max_held = db, seconds, batch, max_held
        self._held = collections.deque()  # appends and pops are atomic: no lock on the push path
        self._wakeup = threading.Event()
        self._drops = threading.Lock()  # only when the database is away and max_held reached
        self._dropped = 0

    def add(self, accessor: Accessor, route: str, patient_ids) -> int:
        """Hold one entry per patient (none for a frame that names no patient), timed now.
        Returns how many were held."""
        patients = unique_patients(patient_ids)
        if not patients:
            return 0
        if len(self._held) + len(patients) > self.max_held:
            with self._drops:
                self._dropped += len(patients)  # reported by the writing thread
            return 0
        at = clock.now()
        self._held.extend(Access(at, patient, accessor, route) for patient in patients)
        if len(self._held) >= self.batch:
            self._wakeup.set()
        return len(patients)

    def _interrupt(self) -> None:
        self._wakeup.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.wait(self.seconds)
            self._wakeup.clear()
            self._write_held()
        self._write_held(retry=False)  # stopping: what is held now, once

    def _write_held(self, *, retry: bool = True) -> None:
        with self._drops:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.error("PHI access log: %d entries dropped, more than %d were waiting for the "
                      "database", dropped, self.max_held)
        while self._held:
            taken = [self._held.popleft() for _ in range(min(self.batch, len(self._held)))]
            try:
                with self.db.transaction() as cur:
                    insert(cur, taken)
            except Exception:
                log.exception("PHI access log: %d entries %s", len(taken),
                              "not written yet, retried" if retry else "lost at shutdown")
                if retry:
                    self._held.extendleft(reversed(taken))  # first again at the next tick
                return
