"""Each process's memory and CPU, the figures behind the Kubernetes requests and limits
(deploy/kubernetes, docs/SCALING.md): the four services, web processes and workers as `make up`
runs them, on a suite of their own (bench/common.py: own database and vhost, dropped at the end).

    .venv/bin/python bench/process_footprint.py [--rate 100] [--seconds 30] [--flood-seconds 15]

Three phases, each process measured on its own (a web process counts its gunicorn master and
workers together, as one pod would):
- idle, every clinician signed in: resident memory (RSS);
- alarms offered at --rate a second for --seconds, end to end (stored, published, an incident
  assigned, its notification stored): CPU used, in cores (user + system time over wall time),
  and the highest RSS seen;
- device alarms from 32 keep-alive clients as fast as they are answered for --flood-seconds
  (the bench's ingestion step): the same, and the alarms accepted per second.

Prints a table and writes bench/results/process_footprint-<time>.json. Asserts nothing. The load
generator runs on the same cores, so on a shared machine the CPU figures are an upper bound of
what the processes need and the rates a lower bound of what they can do.
"""
import argparse
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services")]

from bench.common import AlertPoster, Suite, catalogue, git_commit, sign_everyone_in  # noqa: E402

SERVICES = ("oncall", "alert-ingestion", "incident-management", "notification")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def usage(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds used so far, RSS in MiB) summed over the processes."""
    cpu = rss = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICKS
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB / 1024
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


class Footprint:
    """CPU and peak RSS of each process group over one phase, sampled every half second."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self.peak = {name: usage(pids)[1] for name, pids in groups.items()}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.5):
            for name, pids in self.groups.items():
                self.peak[name] = max(self.peak[name], usage(pids)[1])

    def __enter__(self):
        self.started = time.monotonic()
        self.cpu_before = {name: usage(pids)[0] for name, pids in self.groups.items()}
        self._sampler.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._sampler.join()
        wall = time.monotonic() - self.started
        self.result = {name: {"cores": round((usage(pids)[0] - self.cpu_before[name]) / wall, 3),
                              "peak_rss_mib": round(self.peak[name], 1)}
                       for name, pids in self.groups.items()}
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="alarms offered per second, end to end")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--flood-seconds", type=float, default=15.0)
    args = parser.parse_args()
    figures = {}
    with Suite(tag="footprint") as suite:
        suite.start(*SERVICES)
        groups = {}
        for name, service in suite.services.items():
            groups[f"{name} web"] = [service.proc.pid, *children(service.proc.pid)]
            groups[f"{name} worker"] = [service.worker_proc.pid]
        sign_everyone_in(suite.url("oncall"), suite.db_url)
        patients, types = catalogue(suite.url("alert-ingestion"))
        alarms = ((random.choice(patients), random.choice(types)["alert_type"]) for _ in iter(int, 1))
        time.sleep(5.0)
        figures["idle_rss_mib"] = {name: round(usage(pids)[1], 1) for name, pids in groups.items()}
        poster = AlertPoster(suite.url("alert-ingestion"))
        with Footprint(groups) as steady:
            answers, offered = poster.offered(alarms, args.rate, args.seconds, clients=32)
        figures["steady"] = {"offered_per_second": args.rate, "seconds": args.seconds,
                             "offered": offered, "processes": steady.result,
                             "accepted": sum(1 for answer in answers if answer[1] == 201)}
        with Footprint(groups) as flood:
            answers, took = poster.as_fast_as_possible(alarms, 32, seconds=args.flood_seconds)
        accepted = sum(1 for answer in answers if answer[1] == 201)
        figures["flood"] = {"clients": 32, "seconds": round(took, 1), "accepted": accepted,
                            "answers": dict(Counter(str(answer[1]) for answer in answers)),
                            "accepted_per_second": round(accepted / took, 1), "processes": flood.result}
    result = {"bench": "bench/process_footprint.py",
              "at": datetime.now(UTC).isoformat(timespec="seconds"), "git_commit": git_commit(),
              "cores": os.cpu_count(), "load_average": os.getloadavg(), "figures": figures}
    out = REPO / "bench" / "results" / f"process_footprint-{datetime.now(UTC):%Y-%m-%dT%H%M%S%z}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'process':<30} {'idle MiB':>9} {'steady cores':>13} {'steady MiB':>11} "
          f"{'flood cores':>12} {'flood MiB':>10}")
    for name in groups:
        steady, flood = figures["steady"]["processes"][name], figures["flood"]["processes"][name]
        print(f"{name:<30} {figures['idle_rss_mib'][name]:>9} {steady['cores']:>13} "
              f"{steady['peak_rss_mib']:>11} {flood['cores']:>12} {flood['peak_rss_mib']:>10}")
    print(f"steady: {figures['steady']['accepted']} of {figures['steady']['offered']} accepted at "
          f"{args.rate}/s offered; flood: {figures['flood']['accepted_per_second']}/s accepted")
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
