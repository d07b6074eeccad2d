"""Generate realistic alerts through the public API, so the demo suite lives without a device.

    python -m alert_ingestion.simulator --rate 0.5 --url http://localhost:8001 --api-key KEY

Off unless run. Each simulated monitor is a device (SIM-<room>) reporting alarms of the alert
catalogue for its patient, with a typical value from the type's definition and its own alarm id,
so a retried post is idempotent. Minor alarms are more frequent than critical ones.
"""
import argparse
import itertools
import random
import sys
import time
import uuid

import requests

from .catalogue import typical_value

# How often a monitor raises an alarm of each severity, relative to one another.
SEVERITY_WEIGHTS = {"LOW": 8, "MEDIUM": 5, "HIGH": 3, "CRITICAL": 1}


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
            try:
                response = self.post(alarm)
                ok = response.status_code in (200, 201)
                detail = response.json().get("alert_id") if ok else response.text[:200]
            except requests.RequestException as exc:
                ok, detail = False, repr(exc)
            tally["sent"] += 1
            tally["accepted" if ok else "failed"] += 1
            print(f"{'ok' if ok else 'FAILED'} {alarm['alert_type']} for {alarm['patient_id']}: {detail}",
                  file=out, flush=True)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        return tally


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
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    simulator = Simulator(args.url, args.api_key, rng=random.Random(args.seed))  # noqa: S311
    simulator.load_catalogue()
    try:
        tally = simulator.run(args.rate, args.count)
    except KeyboardInterrupt:
        return 0
    print(f"sent {tally['sent']}, accepted {tally['accepted']}, failed {tally['failed']}")
    return 0 if tally["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
