"""Wait until every given URL answers 200 (a service's /ready, nginx's /health, ...) and every
given worker heartbeat file exists and is fresh, or fail naming those that are not."""
import sys
import time
import urllib.error
import urllib.request

from healthguard.worker import HEARTBEAT_STALE_SECONDS, heartbeat_age


def healthy(target: str) -> bool:
    if not target.startswith(("http://", "https://")):
        try:
            return heartbeat_age(target) <= HEARTBEAT_STALE_SECONDS
        except OSError:
            return False
    try:
        with urllib.request.urlopen(target, timeout=3) as response:  # noqa: S310 (our own http URLs)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(targets: list[str], timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    pending = list(targets)
    while pending and time.monotonic() < deadline:
        pending = [target for target in pending if not healthy(target)]
        if pending:
            time.sleep(0.5)
    for target in pending:
        print(f"not healthy after {timeout:.0f}s: {target}", file=sys.stderr)
    return 1 if pending else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
