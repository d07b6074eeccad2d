"""Container HEALTHCHECK.

    python -m healthguard.healthcheck            exit 0 when this service's /ready answers 200
    python -m healthguard.healthcheck --worker   exit 0 when the worker's heartbeat is fresh

The container's health is readiness, not liveness: compose starts a container only once those it
depends on are healthy (the web UI after the services, incident management after on-call), and
that wait means "can serve". Compose never restarts an unhealthy container, so a database outage
marks the services unhealthy without restarting anything; an orchestrator that restarts on a
failed probe would probe /health (liveness) instead.

The slim image has no curl: this is a few lines of urllib against 127.0.0.1:$PORT.
"""
import os
import sys
import urllib.error
import urllib.request

from .worker import HEARTBEAT_STALE_SECONDS, heartbeat_age, heartbeat_path


def web_ready() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/ready"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own http URL)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1


def worker_alive(service: str | None) -> int:
    path = heartbeat_path(service)
    if path is None:
        print("set WORKER_HEARTBEAT_FILE or name the service: --worker <service>", file=sys.stderr)
        return 2
    try:
        age = heartbeat_age(path)
    except OSError:
        print(f"unhealthy: no heartbeat at {path}", file=sys.stderr)
        return 1
    if age > HEARTBEAT_STALE_SECONDS:
        print(f"unhealthy: last heartbeat {age:.0f}s ago", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker_alive(argv[1] if len(argv) > 1 else None)
    return web_ready()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
