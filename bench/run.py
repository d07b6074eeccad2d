"""`make bench`: every figure of issue 10 in one run, against a suite this run starts and stops.

    .venv/bin/python bench/run.py [--quick] [--results DIR] [--keep-logs DIR]

1. pgbench -N (8 clients, 10 s) on a throw-away database of its own: how fast this machine writes
   now. Every throughput below is also printed as a ratio to it (absolute figures on a shared
   2-core machine drift from run to run; the ratios drift less).
2. A suite on a database and vhost of its own (bench/common.py's Suite: on-call, alert ingestion,
   notification, incident management, each web process and worker as `make up` runs them), the
   seeded staff signed in, 2,000 more admitted patients so no alarm repeats within a measurement.
3. Ingestion: device alarms posted by 32 keep-alive clients as fast as they are answered, while
   incident management is not yet running (its lanes are emptied afterwards): accepted/s, POST
   p50/p99, 5xx; once with the demo profile's bootstrap key, once with a registered device's key
   (looked up in the registry for every alarm, as a hospital's monitors are).
4. Latency over offered load: 25, 50, 100 and 200 alarms/s, 20 s each (open loop; 200 only when
   100 was worked off in time), with a socket open for every clinician: alert-to-assigned
   p50/p95/p99 (database clock) and POST answered to the assignee's WebSocket `notification`
   frame (client clock). Right after the 100/s step, the same step again with every patient in a
   care team (issue 22: a nurse of those on duty for each patient, a charge nurse for each ward),
   so routing by care team is measured against the step without in the same state
   (care_teams_step); the care teams end after it.
4b. Off-tab reach: every clinician subscribed to Web Push at a local push service, alarms at
   100/s for 20 s: assignment to the push request leaving us, p50/p95/p99 (bench/push_latency.py).
5. End to end, empty database: up to 500 alarms/s for 60 s (bench/pipeline_rate.py): the
   sustained rate of alarms turned into an assigned incident with a stored notification, lost
   and duplicated counted in the database.
6. Reads with 100,000 incidents (bench/seed_history.py, 300 of them in progress; their audit rows
   sealed first, as years of history would be): GET
   /incidents/metrics and GET /incidents (active, limit 50), p50/p99 from one client.
7. End to end again with 1,000,000 resolved incidents of history (the same seed), as a ratio to 5.

Between measurements the clinicians finish the work in hand (every incident resolved, in the
database), so each starts from a ward with no active incident. Writes bench/results/bench-<time>.json
(figures, git commit, date, cores, the pgbench reference) and PNG plots beside it (latency over
offered load, throughput over time; latest-*.png are the last full run's, shown in the README),
and prints the table. `--quick` runs every step briefly (the smoke test's mode): its figures mean
nothing. The database, the vhost and every process are removed at the end, also after an error,
Ctrl-C or SIGTERM.
"""
import argparse
import datetime
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import pika  # noqa: E402
import requests  # noqa: E402

from bench.common import (  # noqa: E402
    RESULTS,
    AlertPoster,
    FrameReader,
    Suite,
    close_sockets,
    execute,
    git_commit,
    metric_total,
    open_socket,
    percentile,
    pgbench_reference,
    registered_device_key,
    sign_everyone_in,
)
from bench.pipeline_rate import Alarms, Pipeline, measure_rate, prepare_database  # noqa: E402
from bench.push_latency import measure_push_latency  # noqa: E402
from bench.seed_history import seed_history  # noqa: E402
from healthguard.broker import ALERT_LANES  # noqa: E402

PROFILES = {
    "full": {"pgbench_seconds": 10, "ingest_seconds": 15, "ingest_clients": 32, "warmup_seconds": 3,
             "offered_loads": [25, 50, 100, 200], "load_seconds": 20, "ws_target_load": 100,
             "e2e_rate": 500, "e2e_seconds": 60, "backlog": 100, "settle": 240,
             "read_incidents": 100_000, "read_active": 300, "read_requests": 200, "history": 1_000_000,
             "push_rate": 100},
    "quick": {"pgbench_seconds": 1, "ingest_seconds": 2, "ingest_clients": 8, "warmup_seconds": 1,
              "offered_loads": [10, 20], "load_seconds": 2, "ws_target_load": 20,
              "e2e_rate": 50, "e2e_seconds": 3, "backlog": 50, "settle": 60,
              "read_incidents": 2000, "read_active": 20, "read_requests": 10, "history": 5000,
              "push_rate": 20},
}
ACTIVE = "OPEN,ASSIGNED,ACKNOWLEDGED,REASSIGNED,IN_PROGRESS"


def log(text: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {text}", flush=True)


def ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


def measure_ingest(suite: Suite, poster: AlertPoster, alarms: Alarms, p: dict) -> dict:
    answers, took = poster.as_fast_as_possible(alarms.take(), p["ingest_clients"],
                                               seconds=p["ingest_seconds"])
    accepted = [a for a in answers if a[1] == 201]
    post = [a[3] for a in answers]
    # The relay publishes what was accepted; nothing consumes it yet: emptied before the next step.
    deadline = time.monotonic() + 120
    while (execute(suite.db_url, "SELECT count(*) FROM outbox", fetch=True)[0][0]
           and time.monotonic() < deadline):
        time.sleep(0.5)
    connection = pika.BlockingConnection(pika.URLParameters(suite.rabbitmq_url))
    try:
        for lane in ALERT_LANES:
            channel = connection.channel()
            try:
                channel.queue_purge(lane)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                pass  # not declared yet: nothing to empty
    finally:
        connection.close()
    return {"clients": p["ingest_clients"], "seconds": round(took, 1), "posted": len(answers),
            "accepted_per_second": round(len(accepted) / took, 1),
            "post_p50_ms": ms(percentile(post, 50)), "post_p99_ms": ms(percentile(post, 99)),
            "http_5xx": sum(1 for a in answers if a[1] and a[1] >= 500),
            "other_failures": sum(1 for a in answers if a[1] is None or a[1] < 500 and a[1] != 201),
            "first_failure": next((f"{a[1]} {a[5]}" for a in answers if a[1] != 201), None)}


class Frames:
    """The first INCIDENT_ASSIGNED `notification` frame of each incident, by arrival time."""

    def __init__(self):
        self.arrived = {}

    def __call__(self, ws, message, arrived):
        if (message.get("type") == "notification" and message.get("event_type") == "INCIDENT_ASSIGNED"
                and not message.get("replay")):
            self.arrived.setdefault(message["incident_id"], arrived)


def measure_latency(suite: Suite, pipeline: Pipeline, poster: AlertPoster, alarms: Alarms, frames: Frames,
                    rate: float, p: dict) -> dict:
    pipeline.resolve_everything()
    marks = pipeline.marks()
    answers, offered = poster.offered(alarms.take(), rate, p["load_seconds"], clients=64)
    accepted = {a[2]["alert_id"]: a[4] for a in answers if a[1] == 201}
    rows, waited = pipeline.settle(list(accepted), marks, p["settle"])
    to_assigned = [float(r[1]) - float(r[0]) for r in rows if r[1] is not None]
    incident_of = dict(execute(suite.db_url, "SELECT alert_id, incident_id FROM incidents "
                                             "WHERE alert_id = ANY(%s)", (list(accepted),), fetch=True))
    time.sleep(1.0)  # frames still in flight after the last notification was stored
    to_frame = [frames.arrived[incident_of[a]] - answered for a, answered in accepted.items()
                if incident_of.get(a) in frames.arrived]
    return {"offered_rate": rate, "seconds": p["load_seconds"], "offered": offered, "accepted": len(accepted),
            "drained_after_seconds": round(waited, 1),
            "alert_to_assigned_p50_ms": ms(percentile(to_assigned, 50)),
            "alert_to_assigned_p95_ms": ms(percentile(to_assigned, 95)),
            "alert_to_assigned_p99_ms": ms(percentile(to_assigned, 99)),
            "alert_to_assigned_by_severity": pipeline.by_severity(list(accepted)),
            "ws_frames": len(to_frame),
            "post_to_ws_frame_p50_ms": ms(percentile(to_frame, 50)),
            "post_to_ws_frame_p95_ms": ms(percentile(to_frame, 95)),
            "post_to_ws_frame_p99_ms": ms(percentile(to_frame, 99))}


def assign_every_patient(suite: Suite) -> int:
    """Every admitted patient gets a nurse of those on duty now (round robin; the services' clock
    is the wall clock here) and every ward a charge nurse, for the next 12 hours, straight into
    the database as care_teams.py writes them. Returns how many patients."""
    answer = requests.get(suite.url("oncall") + "/api/v1/oncall/current", params={"role": "NURSE"},
                          headers={"Authorization": f"Bearer {suite.service_token}"}, timeout=30)
    answer.raise_for_status()
    nurses = sorted(c["employee_id"] for c in answer.json()["clinicians"])
    if not nurses:
        return 0
    now = datetime.datetime.now(datetime.UTC)
    until = now + datetime.timedelta(hours=12)
    execute(suite.db_url, """
        INSERT INTO care_team_assignments (patient_id, ward, employee_id, care_role, assigned_by,
                                           starts_at, ends_at)
        SELECT p.patient_id, p.ward, (%(nurses)s::text[])[1 + (row_number() OVER (ORDER BY p.patient_id))::int
                                                             %% cardinality(%(nurses)s::text[])],
               'NURSE', %(by)s, %(now)s, %(until)s
        FROM patients p WHERE p.status = 'ADMITTED'""", {"nurses": nurses, "by": nurses[0], "now": now,
                                                         "until": until})
    execute(suite.db_url, """
        INSERT INTO ward_charge_nurses (ward, employee_id, assigned_by, starts_at, ends_at)
        SELECT DISTINCT ward, %(nurse)s, %(nurse)s, %(now)s, %(until)s FROM patients WHERE status = 'ADMITTED'
    """, {"nurse": nurses[0], "now": now, "until": until})
    return execute(suite.db_url, "SELECT count(*) FROM care_team_assignments WHERE ended_at IS NULL",
                   fetch=True)[0][0]


def end_care_teams(suite: Suite) -> None:
    now = datetime.datetime.now(datetime.UTC)
    execute(suite.db_url, "UPDATE care_team_assignments SET ended_at = %s, end_reason = 'ENDED' "
                          "WHERE ended_at IS NULL", (now,))
    execute(suite.db_url, "UPDATE ward_charge_nurses SET ended_at = %s WHERE ended_at IS NULL", (now,))


def measure_care_teams_step(suite: Suite, pipeline: Pipeline, poster: AlertPoster, alarms: Alarms,
                            frames: Frames, rate: float, p: dict) -> dict:
    """The step at `rate` again with every patient in a care team (issue 22); the care teams end
    after it. With which routing step chose each owner (routing.ROUTED_AS)."""
    assigned = assign_every_patient(suite)
    log(f"latency at {rate} alarms/s with every patient in a care team ({assigned} assigned)")
    since = datetime.datetime.now(datetime.UTC)
    try:
        step = measure_latency(suite, pipeline, poster, alarms, frames, rate, p)
    finally:
        end_care_teams(suite)
    routed = dict(execute(suite.db_url, """
        SELECT coalesce(routed_as, 'NONE'), count(*) FROM incident_assignments
        WHERE reason = 'AUTO' AND assigned_at >= %s GROUP BY 1""", (since,), fetch=True))
    log(f"  {step}")
    return {"patients_assigned": assigned, "routed_as": routed, **step}


def seal_audit_chains(db_url: str) -> float:
    """Seal every unsealed audit row now (the database's own seal_audit_chains, as the on-call
    worker runs it every few seconds); returns the seconds it took."""
    started = time.monotonic()
    while execute(db_url, "SELECT coalesce(sum(sealed), 0) FROM seal_audit_chains(now(), 50000)",
                  fetch=True)[0][0]:
        pass
    return round(time.monotonic() - started, 1)


def measure_reads(url: str, token: str, requests_each: int) -> dict:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    figures = {}
    for name, path, params in (("metrics", "/api/v1/incidents/metrics", {}),
                               ("active_list", "/api/v1/incidents", {"status": ACTIVE, "limit": 50})):
        session.get(url + path, params=params, timeout=60).raise_for_status()  # warm: connection, caches
        took = []
        for _ in range(requests_each):
            started = time.perf_counter()
            session.get(url + path, params=params, timeout=60).raise_for_status()
            took.append(time.perf_counter() - started)
        figures[f"{name}_p50_ms"] = ms(percentile(took, 50))
        figures[f"{name}_p99_ms"] = ms(percentile(took, 99))
    figures["requests_each"] = requests_each
    return figures


def run(profile: str, keep_logs: Path | None) -> dict:
    p = PROFILES[profile]
    result = {"bench": "make bench", "profile": profile,
              "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "git_commit": git_commit(), "cores": os.cpu_count(),
              # what else ran on the machine meanwhile (1, 5, 15 minutes), at the start and the end
              "load_average": {"start": [round(x, 1) for x in os.getloadavg()]}, "settings": p}
    log(f"pgbench -N, 8 clients, {p['pgbench_seconds']} s")
    result["pgbench_reference"] = pgbench_reference(p["pgbench_seconds"], clients=8)
    log(f"pgbench: {result['pgbench_reference']}")
    figures = result["figures"] = {}
    with Suite(prepare=prepare_database, tag="run") as suite:
        result["suite"] = suite.name  # its database and its vhost
        try:
            log("starting the suite")
            suite.start("oncall", "alert-ingestion", "notification")
            tokens = sign_everyone_in(suite.url("oncall"), suite.db_url)
            poster = AlertPoster(suite.url("alert-ingestion"))
            alarms, pipeline = Alarms(suite.db_url), Pipeline(suite.db_url)

            log(f"ingestion: {p['ingest_clients']} clients for {p['ingest_seconds']} s")
            figures["ingest"] = measure_ingest(suite, poster, alarms, p)
            log(f"ingestion: {figures['ingest']}")
            registered = AlertPoster(suite.url("alert-ingestion"), registered_device_key(suite.db_url))
            log(f"ingestion with a registered device's key: {p['ingest_clients']} clients for "
                f"{p['ingest_seconds']} s")
            figures["ingest_registered"] = measure_ingest(suite, registered, alarms, p)
            log(f"ingestion with a registered device's key: {figures['ingest_registered']}")
            suite.start("incident-management")

            frames = Frames()
            reader = FrameReader(frames).start()
            sockets = []
            try:
                for token in tokens.values():
                    sockets.append(open_socket("ws://" + suite.url("notification").split("://", 1)[1], token))
                    reader.add(sockets[-1])
                # Not measured: the first alarms after a start open connections and fill caches.
                poster.offered(alarms.take(), 10, p["warmup_seconds"], clients=8)
                figures["latency_by_offered_load"] = []
                for rate in p["offered_loads"]:
                    if rate > p["ws_target_load"] and _saturated(figures["latency_by_offered_load"]):
                        log(f"latency at {rate} alarms/s: left out, the pipeline is saturated below it")
                        continue
                    log(f"latency at {rate} alarms/s for {p['load_seconds']} s")
                    step = measure_latency(suite, pipeline, poster, alarms, frames, rate, p)
                    figures["latency_by_offered_load"].append(step)
                    log(f"  {step}")
                    if rate == p["ws_target_load"]:
                        # Right after the same step without care teams, in the same state: after the
                        # saturating 200/s step its backlog of notifications was still being worked
                        # off, which the care-team step was charged for.
                        figures["care_teams_step"] = measure_care_teams_step(
                            suite, pipeline, poster, alarms, frames, rate, p)
            finally:
                reader.stop()
                close_sockets(sockets)

            log(f"assignment to Web Push request at {p['push_rate']} alarms/s for {p['load_seconds']} s")
            figures["push"] = measure_push_latency(suite, pipeline, poster, alarms, tokens,
                                                   rate=p["push_rate"], seconds=p["load_seconds"],
                                                   settle=p["settle"])
            log(f"  {figures['push']}")

            log(f"end to end, empty database: up to {p['e2e_rate']}/s for {p['e2e_seconds']} s")
            figures["end_to_end_empty"] = measure_rate(
                pipeline, poster, alarms, rate=p["e2e_rate"], seconds=p["e2e_seconds"], backlog=p["backlog"],
                settle=p["settle"])
            log(f"  {_short(figures['end_to_end_empty'])}")

            pipeline.resolve_everything()
            log(f"seeding {p['read_incidents']} incidents ({p['read_active']} in progress)")
            took = seed_history(suite.db_url, p["read_incidents"] - p["read_active"], active=p["read_active"])
            # The seed's half a million history rows are sealed into the audit chain (issue 24)
            # before the reads are timed, as a hospital's years of history would have been: the
            # chain's sealer working through them shared the two cores with the reads (the
            # metrics read's p50 went from 27 to 67 ms with no change to its code).
            sealed_in = seal_audit_chains(suite.db_url)
            supervisor = tokens[sorted(tokens)[0]]  # D01, an emergency doctor and supervisor
            figures["reads"] = {"incidents": p["read_incidents"], "seeded_in_seconds": round(took, 1),
                                "sealed_in_seconds": sealed_in,
                                **measure_reads(suite.url("incident-management"), supervisor,
                                                p["read_requests"])}
            log(f"  {figures['reads']}")

            pipeline.resolve_everything()
            more = p["history"] - p["read_incidents"]
            log(f"seeding {more} more resolved incidents ({p['history']} of history)")
            took = seed_history(suite.db_url, more)
            log(f"end to end with {p['history']} incidents of history")
            figures["end_to_end_history"] = {"history": p["history"], "seeded_in_seconds": round(took, 1),
                                             **measure_rate(pipeline, poster, alarms, rate=p["e2e_rate"],
                                                            seconds=p["e2e_seconds"], backlog=p["backlog"],
                                                            settle=p["settle"])}
            log(f"  {_short(figures['end_to_end_history'])}")
            # Why alarms waited, over the whole run: lookups of who is on call that failed (the
            # incident waits OPEN for the retrier), messages parked to retry, dead letters.
            incidents_url = suite.url("incident-management")
            figures["diagnostics"] = {
                "oncall_lookup_failures": metric_total(incidents_url, "oncall_lookup_failures_total"),
                **{f"{name}_{service}": metric_total(suite.url(service), f"{name}_total")
                   for name in ("messages_retried", "messages_dead_lettered")
                   for service in ("incident-management", "notification")}}
            log(f"  {figures['diagnostics']}")
        finally:
            if keep_logs:
                suite.keep_logs(keep_logs)
    result["load_average"]["end"] = [round(x, 1) for x in os.getloadavg()]
    result["table"] = table(result)
    return result


def _saturated(steps: list[dict]) -> bool:
    """The last load offered took longer to work off than to offer: a higher one measures only how
    long its queue grows (and takes minutes to drain)."""
    return bool(steps) and steps[-1]["drained_after_seconds"] > steps[-1]["seconds"]


def _short(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if not isinstance(v, list)}


def table(result: dict) -> list[dict]:
    """The issue's figures, each with its target and, for a throughput, its ratio to pgbench."""
    f = result["figures"]
    tps = (result.get("pgbench_reference") or {}).get("tps")
    by_rate = {step["offered_rate"]: step for step in f["latency_by_offered_load"]}
    ws = by_rate.get(result["settings"]["ws_target_load"], f["latency_by_offered_load"][-1])
    empty, history = f["end_to_end_empty"], f["end_to_end_history"]

    def ratio(rate):
        return round(rate / tps, 3) if tps and rate is not None else None

    def ladder(rate):
        step = by_rate.get(rate)
        if not step or step["alert_to_assigned_p99_ms"] is None:
            return "not measured"
        return f"p50 {step['alert_to_assigned_p50_ms']:.0f} ms, p99 {step['alert_to_assigned_p99_ms']:.0f} ms"

    def row(figure, value, target="", rate=None):
        return {"figure": figure, "value": value, "target": target, "ratio": ratio(rate)}

    ingest, reads = f["ingest"], f["reads"]
    registered = f.get("ingest_registered")  # not in runs before 2026-12-06
    push = f.get("push")  # not in runs before issue 21
    return [
        row("device alerts accepted/s (32 keep-alive clients, the bootstrap key)",
            f"{ingest['accepted_per_second']}/s, p99 {ingest['post_p99_ms']} ms, {ingest['http_5xx']} 5xx",
            ">= 1,000/s, p99 <= 100 ms, zero 5xx", ingest["accepted_per_second"]),
        *([row("device alerts accepted/s (32 keep-alive clients, a registered device's key)",
               f"{registered['accepted_per_second']}/s, p99 {registered['post_p99_ms']} ms, "
               f"{registered['http_5xx']} 5xx",
               ">= 1,000/s, p99 <= 100 ms, zero 5xx", registered["accepted_per_second"])]
          if registered else []),
        row("end to end, sustained (alert -> assigned incident with stored notification)",
            f"{empty['sustained_per_second']}/s; lost {empty['lost']}, duplicated {empty['duplicated']}",
            ">= 500/s for 60 s, zero lost, zero duplicated", empty["sustained_per_second"]),
        row("alert-to-assigned at 50 alerts/s offered", ladder(50)),
        row("alert-to-assigned at 100 alerts/s offered", ladder(100), "p99 <= 250 ms"),
        *([row(f"alert-to-assigned at {care['offered_rate']} alerts/s, every patient in a care team",
               f"p50 {care['alert_to_assigned_p50_ms']} ms, p99 {care['alert_to_assigned_p99_ms']} ms "
               f"({_percent(care['alert_to_assigned_p99_ms'], _p99(by_rate, care['offered_rate']))} of "
               "the step without)", "p99 within 10% of the step without care teams")]
          if (care := f.get("care_teams_step")) else []),
        row(f"POST answered -> WebSocket frame at {ws['offered_rate']} alerts/s",
            f"p50 {ws['post_to_ws_frame_p50_ms']} ms, p99 {ws['post_to_ws_frame_p99_ms']} ms",
            "p99 <= 300 ms"),
        *([row(f"assignment -> Web Push request leaving us at {push['offered_rate']} alarms/s "
               "(local push service)",
               f"p50 {push['assigned_to_push_p50_ms']} ms, p99 {push['assigned_to_push_p99_ms']} ms")]
          if push else []),
        row(f"GET /incidents/metrics with {reads['incidents']:,} incidents",
            f"p50 {reads['metrics_p50_ms']} ms, p99 {reads['metrics_p99_ms']} ms", "p99 <= 50 ms"),
        row(f"GET /incidents (active, limit 50) with {reads['incidents']:,} incidents",
            f"p50 {reads['active_list_p50_ms']} ms, p99 {reads['active_list_p99_ms']} ms", "p99 <= 50 ms"),
        row(f"end to end with {history['history']:,} resolved incidents of history",
            f"{history['sustained_per_second']}/s "
            f"({_percent(history['sustained_per_second'], empty['sustained_per_second'])} of empty); "
            f"lost {history['lost']}, duplicated {history['duplicated']}",
            "within 10% of the empty database", history["sustained_per_second"]),
    ]


def _p99(by_rate: dict, rate) -> float | None:
    step = by_rate.get(rate)
    return step and step["alert_to_assigned_p99_ms"]


def _percent(part, whole):
    return f"{100 * part / whole:.0f}%" if whole and part is not None else "n/a"


def markdown(result: dict) -> str:
    ref = result.get("pgbench_reference") or {}
    load = result["load_average"]
    lines = [f"`make bench` at {result['at']} (commit {str(result['git_commit'])[:10]}, "
             f"{result['cores']} cores, load average {load['start'][0]} at the start and {load['end'][0]} "
             f"at the end; pgbench -N, 8 clients: {ref.get('tps') or 0:,.0f} tps)", "",
             "| figure | measured | target | / pgbench tps |", "|---|---|---|---|"]
    for row in result["table"]:
        lines.append(f"| {row['figure']} | {row['value']} | {row['target']} | "
                     f"{'' if row['ratio'] is None else row['ratio']} |")
    return "\n".join(lines)


def plot(result: dict, stem: Path) -> list[Path]:
    """latency over offered load, and throughput over time of the two end-to-end runs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    steps = result["figures"]["latency_by_offered_load"]
    rates = [s["offered_rate"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label, style in (("alert_to_assigned_p50_ms", "alert-to-assigned p50", "o-"),
                              ("alert_to_assigned_p95_ms", "alert-to-assigned p95", "s-"),
                              ("alert_to_assigned_p99_ms", "alert-to-assigned p99", "^-"),
                              ("post_to_ws_frame_p99_ms", "POST answered -> WebSocket frame p99", "x--")):
        ax.plot(rates, [s[key] for s in steps], style, label=label)
    ax.axhline(250, color="grey", linestyle=":", linewidth=1, label="target: p99 250 ms at 100/s")
    ax.set_xlabel("offered load (alerts/s)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_yscale("log")
    ax.set_xticks(rates)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Latency over offered load ({result['profile']}, {result['at'][:16]})", fontsize=10)
    fig.tight_layout()
    written.append(Path(f"{stem}-latency.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label, color in (("end_to_end_empty", "empty database", "tab:blue"),
                              ("end_to_end_history", "with history", "tab:orange")):
        run_ = result["figures"][key]
        if key == "end_to_end_history":
            label = f"with {run_['history']:,} incidents of history"
        ax.plot(run_["timeline_done"], color=color, label=f"done/s, {label}")
        ax.plot(run_["timeline_accepted"], color=color, alpha=0.35, linestyle="--",
                label=f"accepted/s, {label}")
    ax.axhline(500, color="grey", linestyle=":", linewidth=1, label="target: 500/s")
    ax.set_xlabel("seconds since the offer started")
    ax.set_ylabel("alerts per second")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("End to end: alerts accepted and done (assigned, notification stored) per second",
                 fontsize=10)
    fig.tight_layout()
    written.append(Path(f"{stem}-throughput.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every step briefly (figures mean nothing)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON and plots go")
    parser.add_argument("--keep-logs", type=Path, help="copy the services' logs here")
    args = parser.parse_args()
    started = time.monotonic()
    result = run("quick" if args.quick else "full", args.keep_logs)
    result["took_seconds"] = round(time.monotonic() - started, 1)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"bench-{result['at'].replace(':', '')}"
    result["plots"] = [path.name for path in plot(result, stem)]
    Path(f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    if not args.quick:
        for name in result["plots"]:  # the README shows the last full run's
            shutil.copy(args.results / name, args.results / ("latest-" + name.rsplit("-", 1)[1]))
    print()
    print(markdown(result))
    print(f"\nwritten: {stem}.json and {', '.join(result['plots'])} ({result['took_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
