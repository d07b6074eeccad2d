"""Wait until every given /health URL answers 200, or fail naming those that do not."""
import sys
import time
import urllib.error
import urllib.request


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (our own http URLs)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(urls: list[str], timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        pending = [url for url in pending if not healthy(url)]
        if pending:
            time.sleep(0.5)
    for url in pending:
        print(f"not healthy after {timeout:.0f}s: {url}", file=sys.stderr)
    return 1 if pending else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
