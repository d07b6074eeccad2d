"""A service's worker process: its queue consumers, outbox relays and periodic tasks.

    python -m healthguard.worker incident_management        (or: incident-management)

The web process (gunicorn) serves HTTP only. Background work runs here, once per worker process
however many HTTP workers there are, so scaling HTTP does not multiply consumers and a stuck
consumer never holds an HTTP thread. The worker is built by the service's own app factory, so it
reads and validates exactly the settings the web process does (a missing DATABASE_URL stops it
the same way), and it runs `platform().background`.

SIGTERM or SIGINT stops it cleanly: every task is stopped (a consumer finishes the message in
hand and acknowledges it after its commit), then it exits 0. A task whose thread ends on its own
is a bug, not an outage (tasks survive outages by retrying): the worker exits 1 so its supervisor
(compose's restart policy, honcho) notices and restarts it.

Health: a worker has no HTTP. While every task's thread is alive it writes the time to its
heartbeat file (WORKER_HEARTBEAT_FILE; by default one per service in the temp directory) every
few seconds; `python -m healthguard.healthcheck --worker` passes while that file is fresh. The
same beat is the gauge worker_heartbeat_timestamp_seconds in the service's /metrics, which
Prometheus alerts on (WorkerStalled): a dead worker leaves the web process answering.

Metrics: prometheus-client's multiprocess mode, in the same PROMETHEUS_MULTIPROC_DIR as the web
process of the service, so the service's /metrics sums the worker's counters with the web
workers'. The worker's files are named `<type>_worker-<host>-<pid>.db` instead of by bare pid:
the web master wipes the files of the previous web run when it starts (gunicorn_conf.on_starting)
and leaves these alone, because the worker may be running and a deleted mmapped file would hide
every count it makes afterwards; the host part keeps worker containers that share a directory
(all of them pid 1) apart. A worker's files outlive it like a dead gunicorn worker's do, so summed
counters never go backwards; they go when the directory does (`make up` starts from an empty one,
compose keeps it on a tmpfs volume that lives as long as the service's containers).

Where the worker cannot share that directory (Kubernetes: a pod's emptyDir is its own), it serves
its own counters: WORKER_METRICS_PORT set makes it answer GET /metrics on that port (on
WORKER_METRICS_ADDRESS, all addresses by default), summing its own directory's files. Unset (compose,
`make up`), nothing listens: the web process's /metrics already includes them.
"""
import importlib
import importlib.util
import logging
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time

from .settings import ConfigError, WorkerSettings

log = logging.getLogger("healthguard.worker")

HEARTBEAT_SECONDS = 5.0
# The healthcheck's limit: several missed beats, not one slow one.
HEARTBEAT_STALE_SECONDS = 30.0
WORKER_FILE_PREFIX = "worker-"


def heartbeat_path(service: str | None = None) -> str | None:
    """WORKER_HEARTBEAT_FILE, or the service's default in the temp directory."""
    if os.environ.get("WORKER_HEARTBEAT_FILE"):
        return os.environ["WORKER_HEARTBEAT_FILE"]
    if service is None:
        return None
    return os.path.join(tempfile.gettempdir(), f"healthguard-worker-{_package(service)}.heartbeat")


def heartbeat_age(path: str) -> float:
    """Seconds since the last beat (raises OSError when there was none)."""
    return time.time() - os.stat(path).st_mtime


def remove_web_metric_files(directory: str) -> None:
    """Delete the multiprocess files of web workers (`<type>_<pid>.db`), keeping the worker's."""
    for name in os.listdir(directory):
        identity = name[:-3].rsplit("_", 1)[-1] if name.endswith(".db") else ""
        if identity.isdigit():
            os.remove(os.path.join(directory, name))


def _package(service: str) -> str:
    return service.replace("-", "_")


def _metric_identity() -> str:
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
    return f"{WORKER_FILE_PREFIX}{host}-{os.getpid()}"


def _name_metric_files(identity: str) -> None:
    """Make this process's metric files `<type>_<identity>.db`. Must run before any metric is
    created, i.e. before the service's modules are imported."""
    from prometheus_client import values
    values.ValueClass = values.MultiProcessValue(lambda: identity)


def _alive(task) -> bool:
    is_alive = getattr(task, "is_alive", None)
    return is_alive() if is_alive is not None else True


def _task_name(task) -> str:
    return getattr(task, "name", None) or type(task).__name__


def run(tasks: list, *, heartbeat: str, stopping: threading.Event) -> int:
    """Start the tasks, beat while they all live, stop them when `stopping` is set. Returns the
    exit status: 0 after a requested stop, 1 when a task died on its own."""
    from .metrics import WORKER_HEARTBEAT  # only now: main() names the metric files first
    started, status = [], 0
    try:
        for task in tasks:
            task.start()
            started.append(task)
        log.info("worker started", extra={"tasks": [_task_name(task) for task in tasks]})
        while True:
            dead = [_task_name(task) for task in started if not _alive(task)]
            if dead:
                log.error("background task ended unexpectedly; exiting to be restarted",
                          extra={"tasks": dead})
                status = 1
                break
            with open(heartbeat, "w") as beat:
                beat.write(f"{time.time():.0f}\n")
            WORKER_HEARTBEAT.set_to_current_time()
            if stopping.wait(HEARTBEAT_SECONDS):
                log.info("worker stopping", extra={"tasks": [_task_name(task) for task in started]})
                break
    finally:
        for task in reversed(started):
            try:
                task.stop()
            except Exception:
                log.exception("background task did not stop cleanly", extra={"task": _task_name(task)})
        try:
            os.remove(heartbeat)
        except OSError:
            pass
    return status


def serve_metrics(port: int, address: str):
    """Answer Prometheus's scrapes of this worker: its own multiprocess files, summed. Returns the
    server (prometheus-client serves it from a daemon thread)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    server, _thread = start_http_server(port, addr=address, registry=registry)
    return server


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m healthguard.worker <service>  (e.g. incident_management)", file=sys.stderr)
        return 2
    service = argv[0]
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        print("healthguard worker: missing required setting PROMETHEUS_MULTIPROC_DIR (the metrics "
              "directory of the service's web process, which serves this worker's counters)",
              file=sys.stderr)
        return 2
    os.makedirs(directory, exist_ok=True)
    identity = _metric_identity()
    _name_metric_files(identity)
    if importlib.util.find_spec(_package(service)) is None:
        print(f"healthguard worker: no service {service!r} (a package with app.create_app)", file=sys.stderr)
        return 2
    factory = importlib.import_module(f"{_package(service)}.app").create_app
    try:
        app = factory()  # settings are validated here, exactly as for the web process
        own = WorkerSettings.load()
    except ConfigError as exc:
        print(f"healthguard worker ({service}): {exc}", file=sys.stderr)
        return 2
    if own.WORKER_METRICS_PORT is not None:
        serve_metrics(own.WORKER_METRICS_PORT, own.WORKER_METRICS_ADDRESS)
        log.info("worker metrics listening", extra={"port": own.WORKER_METRICS_PORT})
    stopping = threading.Event()

    def request_stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        return run(list(app.extensions["healthguard"].background), heartbeat=heartbeat_path(service),
                   stopping=stopping)
    finally:
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(identity)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
