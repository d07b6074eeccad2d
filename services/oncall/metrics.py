"""oncall_current{role}: clinicians on duty and signed in, read from the database when Prometheus
scrapes, so every worker (and every replica) reports the same truth; sign_in_throttled_total."""
import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from healthguard import clock

from .roster import signed_in_on_duty_by_role

log = logging.getLogger(__name__)


class OnCallCollector:
    def __init__(self, *, db, tz):
        self.db, self.tz = db, tz

    def collect(self):
        try:
            with self.db.transaction() as cur:
                counts = signed_in_on_duty_by_role(cur, tz=self.tz, at=clock.now())
        except Exception as exc:  # a scrape must still answer the other metrics
            log.warning("oncall_current not collected", extra={"error": repr(exc)})
            return
        gauge = GaugeMetricFamily("oncall_current", "Clinicians on duty and signed in, by role",
                                  labels=["role"])
        for role, count in sorted(counts.items()):
            gauge.add_metric([role], count)
        yield gauge


# Sign-in attempts refused without checking the password. reason: "login_address" (one address
# kept failing on one login: progressive delay) or "address" (one address failing across logins).
SIGN_IN_THROTTLED = Counter(
    "sign_in_throttled_total", "Sign-in attempts refused by the throttle, by reason", ["reason"])
