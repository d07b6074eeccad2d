"""A real Prometheus, with the project's own scrape config and rules (targets pointed at the
services running here), scrapes all four services and sees their metrics."""
import shutil
import subprocess
import tempfile

import pytest
import requests

from scripts.local_config import render_prometheus
from tests.support import SERVICE_MODULES, free_port, wait_for


@pytest.fixture
def prometheus(tmp_path):
    def start(targets: dict[str, str]):
        port = free_port()
        config = render_prometheus(tmp_path, listen=port, ports=targets, interval="1s")
        storage = tempfile.mkdtemp(prefix="hg-prom-")
        proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={storage}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
        started.append((proc, storage))
        return f"http://127.0.0.1:{port}"

    started = []
    yield start
    for proc, storage in started:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(storage, ignore_errors=True)


def query(base, promql):
    try:
        answer = requests.get(base + "/api/v1/query", params={"query": promql}, timeout=5).json()
    except (requests.RequestException, ValueError):
        return []
    return answer.get("data", {}).get("result", [])


def test_prometheus_scrapes_every_service_with_the_shipped_config(start_service, prometheus):
    services = {name: start_service(name) for name in SERVICE_MODULES}
    base = prometheus({name: proc.port for name, proc in services.items()})
    for name in SERVICE_MODULES:
        requests.get(services[name].url + "/no-such-page", timeout=5)

    def all_up():
        return {r["metric"]["job"] for r in query(base, "up == 1")} >= set(SERVICE_MODULES)
    wait_for(all_up, 60, 0.5, "Prometheus to scrape all four services")

    def not_found_counted():
        result = query(base, 'sum by (service) (http_requests_total{status="404"})')
        return {r["metric"]["service"] for r in result if float(r["value"][1]) >= 1}
    assert wait_for(lambda: not_found_counted() >= set(SERVICE_MODULES), 30, 0.5,
                    "the 404s to show up in Prometheus")

    rules = requests.get(base + "/api/v1/rules", timeout=5).json()["data"]["groups"]
    names = {rule["name"] for group in rules for rule in group["rules"]}
    assert "ServiceDown" in names
    firing = query(base, 'ALERTS{alertname="ServiceDown"}')
    assert firing == []  # every service is up: the rule is loaded and quiet
