"""PCD-05 Report Alert Status: tell the gateway what became of an alarm it reported (delivered to
a clinician, accepted, resolved) by sending ORA^R41 to its registered MLLP endpoint.

The rows to send (hl7_status_reports) are written by a database trigger in the transaction that
records the incident's change (migration 0009), so none is lost and incident management knows
nothing of HL7. This periodic task of alert ingestion's worker wakes on their NOTIFY (and every
interval as a safety net), claims due rows with FOR UPDATE SKIP LOCKED, sends each with
our MLLP client (mllp_client) and marks it sent once the gateway acknowledged (AA or CA). A failure
is counted (hl7_status_reports_total{result="failed"}), kept with its error, and tried again
after 1, 2, 4 ... 300 s: never dropped. One alert's statuses go in order: a status waits while
an earlier one of the same alert is unsent.

A status goes only to an address inside the device networks (HL7_DEVICE_NETWORKS), checked
here at each send as well as at registration: a host name may resolve elsewhere later, and an
endpoint registered before the rule existed may point anywhere (the database's port, say).
"""
import datetime
import logging
import uuid

from healthguard import clock
from healthguard.domain import HL7_STATUS_WAKE_CHANNEL
from healthguard.tasks import PeriodicTask

from .hl7_gateways import GatewayRules, resolve_endpoint
from .hl7_messages import acknowledged, alert_status
from .metrics import HL7_STATUS_REPORTS
from .mllp_client import MllpClient

log = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 300
SEND_TIMEOUT_SECONDS = 5.0
BATCH = 50


def retry_delay(attempts: int) -> datetime.timedelta:
    return datetime.timedelta(seconds=min(2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


class SendAlertStatus(PeriodicTask):
    name = "send-alert-status"

    def __init__(self, db, *, rules: GatewayRules, interval: float = 5.0,
                 timeout: float = SEND_TIMEOUT_SECONDS):
        super().__init__(interval=interval, wake_on=(db.url, HL7_STATUS_WAKE_CHANNEL))
        self.db, self.rules, self.timeout = db, rules, timeout

    def run_once(self) -> None:
        while not self._stopping.is_set():
            if self.send_due() < BATCH:
                return

    def send_due(self) -> int:
        """Send the statuses due now; returns how many rows were tried."""
        unreachable = set()
        with self.db.transaction() as cur:
            cur.execute("""
                SELECT r.report_id, r.status, r.employee_id, r.attempts,
                       a.patient_id, a.source_alarm_id, a.occurred_at,
                       g.sending_application, g.sending_facility, g.status_host, g.status_port
                FROM hl7_status_reports r
                JOIN alerts a ON a.alert_id = r.alert_id
                JOIN hl7_gateways g ON g.gateway_id = a.hl7_gateway_id
                WHERE r.sent_at IS NULL
                  AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= %(now)s)
                  AND g.status_host IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM hl7_status_reports e
                                  WHERE e.alert_id = r.alert_id AND e.sent_at IS NULL
                                    AND e.report_id < r.report_id)
                ORDER BY r.report_id
                LIMIT %(batch)s
                FOR UPDATE OF r SKIP LOCKED
            """, {"now": clock.now(), "batch": BATCH})
            rows = cur.fetchall()
            for row in rows:
                endpoint = (row["status_host"], row["status_port"])
                error = "an earlier status to this gateway failed in this pass" if endpoint in unreachable \
                    else self._send(row)
                if error is None:
                    cur.execute("UPDATE hl7_status_reports SET sent_at = %s, attempts = attempts + 1, "
                                "last_error = NULL WHERE report_id = %s", (clock.now(), row["report_id"]))
                    HL7_STATUS_REPORTS.labels(result="sent").inc()
                    continue
                unreachable.add(endpoint)
                attempts = row["attempts"] + 1
                cur.execute("""
                    UPDATE hl7_status_reports SET attempts = %s, next_attempt_at = %s, last_error = %s
                    WHERE report_id = %s
                """, (attempts, clock.now() + retry_delay(attempts), error[:500], row["report_id"]))
                HL7_STATUS_REPORTS.labels(result="failed").inc()
                log.warning("PCD-05 status not delivered; will retry", extra={
                    "report_id": row["report_id"], "gateway": f"{endpoint[0]}:{endpoint[1]}",
                    "attempts": attempts, "error": error[:300]})
        return len(rows)

    def _send(self, row: dict) -> str | None:
        """None once the gateway acknowledged the status, else why not."""
        message = alert_status(gateway=row, alert=row, status=row["status"], employee_id=row["employee_id"],
                               control_id="HGS" + uuid.uuid4().hex[:17].upper(), now=clock.now())
        try:
            inside = [address for address in resolve_endpoint(row["status_host"], row["status_port"])
                      if not self.rules.outside_device_networks(address)]
            if not inside:
                return (f"{row['status_host']}:{row['status_port']} is outside the device networks "
                        f"(HL7_DEVICE_NETWORKS): not sent")
            with MllpClient(inside[0], row["status_port"], self.timeout) as client:
                answer = client.send_message(message)
        except (OSError, UnicodeError) as exc:
            return f"cannot reach {row['status_host']}:{row['status_port']}: {exc!r}"
        if isinstance(answer, bytes):
            answer = answer.decode("utf-8", "replace")
        code, why = acknowledged(answer)
        return None if code in ("AA", "CA") else f"the gateway answered {code or 'no acknowledgement'} {why}"
