"""Generate realistic alerts through the public API, so the demo suite lives without a device.

    python -m alert_ingestion.simulator --rate 0.5 --url http://localhost:8001 --api-key KEY
    python -m alert_ingestion.simulator --protocol hl7 --mllp 127.0.0.1:2575 --application SIM_GW \
        --url http://localhost:8001 --api-key KEY

Off unless run. Each simulated monitor is a device (SIM-<room>) reporting alarms of the alert
catalogue for its patient, with a typical value from the type's definition and its own alarm id,
so a retried post is idempotent. Minor alarms are more frequent than critical ones.

With `--protocol hl7` it is a device gateway instead: IHE PCD-04 messages (ORU^R40) over MLLP,
sent with python-hl7's MLLPClient, as MSH-3 `--application` (register it first:
`python -m alert_ingestion.hl7_gateways register`) with the gateway's device key in MSH-8; some
alarms are followed by their "end" phase, as a monitor whose alarm condition cleared. The key
also reads the beds in its scope over HTTP (--url).
"""
import argparse
import datetime
import itertools
import random
import sys
import time
import uuid

import requests

from healthguard.domain import SEVERITY_WEIGHTS

from . import hl7_messages
from .catalogue import typical_value
from .mllp_client import MllpClient


class Simulator:
    def __init__(self, url: str, api_key: str, *, rng: random.Random | None = None, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = api_key
        self.rng = rng or random.Random()  # noqa: S311 (a simulation, not a secret)
        self.timeout = timeout
        self.patients, self.alert_types = [], []

    def load_catalogue(self) -> None:
        # A device key reads the beds in its own scope (ids and rooms), never patient records.
        self.patients = self._get("/api/v1/devices/me")["patients"]
        self.alert_types = self._get("/api/v1/alert-types")["alert_types"]
        if not self.patients or not self.alert_types:
            raise SystemExit("simulator: no admitted patients or no alert types to simulate")

    def _get(self, path: str, **params) -> dict:
        response = self.session.get(self.url + path, params=params, timeout=self.timeout)
        if response.status_code != 200:
            raise SystemExit(f"simulator: GET {path} answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def next_alarm(self) -> dict:
        patient = self.rng.choice(self.patients)
        weights = [SEVERITY_WEIGHTS.get(t["severity"], 1) for t in self.alert_types]
        alert_type = self.rng.choices(self.alert_types, weights)[0]
        alarm = {"patient_id": patient["patient_id"], "alert_type": alert_type["alert_type"],
                 "device_id": f"SIM-{patient['room']}", "source_alarm_id": uuid.uuid4().hex,
                 "source": "SIMULATOR"}
        value = typical_value(alert_type, self.rng)
        if value is not None:
            alarm["value"] = value
        return alarm

    def send(self, alarm: dict) -> tuple[bool, object]:
        """(accepted, what to print): the alert id, or why not."""
        try:
            response = self.post(alarm)
        except requests.RequestException as exc:
            return False, repr(exc)
        ok = response.status_code in (200, 201)
        return ok, response.json().get("alert_id") if ok else response.text[:200]

    def post(self, alarm: dict) -> requests.Response:
        # One retry of the same alarm (same source_alarm_id): the service answers it idempotently.
        for attempt in (1, 2):
            try:
                return self.session.post(self.url + "/api/v1/alerts", json=alarm, timeout=self.timeout)
            except requests.RequestException:
                if attempt == 2:
                    raise

    def run(self, rate: float, count: int | None = None, out=sys.stdout) -> dict:
        """Post `count` alarms (forever when None) at `rate` per second; returns the tally."""
        tally = {"sent": 0, "accepted": 0, "failed": 0}
        interval = 1.0 / rate
        next_at = time.monotonic()
        for _ in (range(count) if count is not None else itertools.count()):
            alarm = self.next_alarm()
            ok, detail = self.send(alarm)
            tally["sent"] += 1
            tally["accepted" if ok else "failed"] += 1
            print(f"{'ok' if ok else 'FAILED'} {alarm['alert_type']} for {alarm['patient_id']}: {detail}",
                  file=out, flush=True)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        return tally


# What the simulated gateway's monitors report: (MDC event, measured value, its MDC unit, typical
# range, weight). Limit alarms name the measured value; the mapping table does the rest.
MDC_ALARMS = (
    ("196614^MDC_EVT_ECG_ASYSTOLE^MDC", None, None, None, 1),
    ("^MDC_EVT_ECG_V_FIB^MDC", None, None, None, 1),
    ("^MDC_EVT_APNEA^MDC", None, None, None, 1),
    ("196670^MDC_EVT_LO_VAL_LT_LIM^MDC", "150456^MDC_PULS_OXIM_SAT_O2^MDC", "262688^MDC_DIM_PERCENT^MDC",
     (78, 89), 4),
    ("196670^MDC_EVT_LO_VAL_LT_LIM^MDC", "147842^MDC_ECG_HEART_RATE^MDC", "264864^MDC_DIM_BEAT_PER_MIN^MDC",
     (28, 44), 3),
    ("196648^MDC_EVT_HI_VAL_GT_LIM^MDC", "147842^MDC_ECG_HEART_RATE^MDC", "264864^MDC_DIM_BEAT_PER_MIN^MDC",
     (141, 185), 3),
    ("196648^MDC_EVT_HI_VAL_GT_LIM^MDC", "151562^MDC_RESP_RATE^MDC", "264928^MDC_DIM_RESP_PER_MIN^MDC",
     (26, 40), 3),
    ("^MDC_EVT_LEAD_DISCONN^MDC", None, None, None, 6),
)
# How often an alarm's condition clears and the monitor reports its "end" phase.
END_PHASE_SHARE = 0.3


class Hl7Simulator(Simulator):
    """A device gateway: PCD-04 over MLLP, one connection kept open (reopened when it breaks)."""

    def __init__(self, url: str, api_key: str, *, mllp: tuple[str, int], application: str,
                 facility: str = "", rng: random.Random | None = None, timeout: float = 5.0):
        super().__init__(url, api_key, rng=rng, timeout=timeout)
        self.mllp, self.application, self.facility, self.key = mllp, application, facility, api_key
        self.client = None
        self.ending = []  # alarms whose "end" phase is still to be reported

    def next_alarm(self) -> dict:
        if self.ending and self.rng.random() < 0.5:
            return {**self.ending.pop(0), "phase": "end", "state": "inactive"}
        patient = self.rng.choice(self.patients)
        event, measured, unit, typical, _ = self.rng.choices(MDC_ALARMS, [a[4] for a in MDC_ALARMS])[0]
        alarm = {"patient_id": patient["patient_id"], "alert_type": event.split("^")[1],
                 "alert_id": uuid.uuid4().hex[:16], "event": event, "measured": measured, "unit": unit,
                 "value": self.rng.randint(*typical) if typical else None, "phase": "start",
                 "state": "active", "location": f"{patient['ward']}^{patient['room']}"}
        if self.rng.random() < END_PHASE_SHARE:
            self.ending.append(alarm)
        return alarm

    def send(self, alarm: dict) -> tuple[bool, object]:
        message = hl7_messages.report_alert(
            control_id=uuid.uuid4().hex[:20], alert_id=alarm["alert_id"], patient_id=alarm["patient_id"],
            occurred_at=datetime.datetime.now(datetime.UTC), event=alarm["event"], phase=alarm["phase"],
            state=alarm["state"], measured=alarm["measured"], value=alarm["value"], unit=alarm["unit"],
            application=self.application, facility=self.facility, security=self.key,
            location=alarm["location"], equipment=f"SIM-{alarm['patient_id']}^LOCAL")
        for attempt in (1, 2):  # the same message again after a broken connection: idempotent
            try:
                if self.client is None:
                    self.client = MllpClient(*self.mllp, self.timeout)
                answer = self.client.send_message(message)
                break
            except OSError as exc:
                self.close()
                if attempt == 2:
                    return False, repr(exc)
        code, why = hl7_messages.acknowledged(answer.decode("utf-8", "replace"))
        return code == "AA", f"{alarm['phase']} {alarm['alert_id']}: {code or 'no acknowledgement'} {why}"

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except OSError:
                pass
            self.client = None


def endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port")
    return host, int(port)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=0.2, help="alerts per second (default 0.2)")
    parser.add_argument("--url", required=True, help="alert ingestion service, e.g. http://localhost:8001")
    parser.add_argument("--api-key", required=True,
                        help="a registered device key (POST /api/v1/devices) or a bootstrap key "
                             "(DEVICE_API_KEYS)")
    parser.add_argument("--count", type=int, help="stop after this many alerts (default: run until stopped)")
    parser.add_argument("--seed", type=int, help="random seed, for a reproducible stream")
    parser.add_argument("--protocol", choices=("json", "hl7"), default="json",
                        help="json: POST /api/v1/alerts (default); hl7: PCD-04 over MLLP")
    parser.add_argument("--mllp", type=endpoint, default=("127.0.0.1", 2575),
                        help="hl7: the MLLP listener, host:port (default 127.0.0.1:2575)")
    parser.add_argument("--application", default="SIM_GW", help="hl7: MSH-3 of the registered gateway")
    parser.add_argument("--facility", default="", help="hl7: MSH-4 of the registered gateway")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    rng = random.Random(args.seed)  # noqa: S311
    if args.protocol == "hl7":
        simulator = Hl7Simulator(args.url, args.api_key, mllp=args.mllp, application=args.application,
                                 facility=args.facility, rng=rng)
    else:
        simulator = Simulator(args.url, args.api_key, rng=rng)
    simulator.load_catalogue()
    try:
        tally = simulator.run(args.rate, args.count)
    except KeyboardInterrupt:
        return 0
    finally:
        if isinstance(simulator, Hl7Simulator):
            simulator.close()
    print(f"sent {tally['sent']}, accepted {tally['accepted']}, failed {tally['failed']}")
    return 0 if tally["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
