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

    # The rule is loaded, has been evaluated against these scrapes without error, and is quiet
    # (not pending, not firing): every service is up. ALERTS being empty would prove nothing:
    # with `for: 1m` the rule could not fire within this test even with a service down.
    def service_down_rule():
        groups = requests.get(base + "/api/v1/rules", timeout=5).json()["data"]["groups"]
        rule = next(r for g in groups for r in g["rules"] if r["name"] == "ServiceDown")
        return rule if not rule["lastEvaluation"].startswith("0001-") else None
    rule = wait_for(service_down_rule, 30, 0.5, "the ServiceDown rule to be evaluated")
    assert rule["health"] == "ok", rule
    assert rule["state"] == "inactive" and rule["alerts"] == [], rule


def dashboard_queries():
    """Every PromQL query of the two Grafana dashboards, with the dashboard variable filled in."""
    import json

    from tests.support import REPO
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"].replace("$window", "5m")


def test_dashboards_show_an_alarm_that_went_through_the_platform(start_service, prometheus, login_as,
                                                                   service_env):
    """Grafana cannot run here; its queries can. An alarm goes through every service and is
    acknowledged and resolved; then every dashboard query evaluates on the real Prometheus, and
    the panels an SRE reads first show it."""
    services = {"oncall": start_service("oncall")}
    services["alert-ingestion"] = start_service("alert-ingestion")
    services["incident-management"] = start_service(
        "incident-management", env={"ONCALL_URL": services["oncall"].url})
    services["notification"] = start_service("notification")
    base = prometheus({name: proc.port for name, proc in services.items()})

    service_auth = {"Authorization": f"Bearer {service_env['SERVICE_TOKEN']}"}
    on_duty = requests.get(services["oncall"].url + "/api/v1/oncall/current", headers=service_auth,
                           params={"role": "EMERGENCY_DOCTOR"}, timeout=5).json()["clinicians"]
    for doctor in on_duty:
        login_as(doctor["employee_id"])
    alert = requests.post(services["alert-ingestion"].url + "/api/v1/alerts", timeout=5,
                          headers={"X-API-Key": service_env["DEVICE_API_KEYS"]},
                          json={"patient_id": "P001", "alert_type": "CARDIAC_ARREST"}).json()
    incidents_url = services["incident-management"].url + "/api/v1/incidents"

    def assigned():
        listed = requests.get(incidents_url, headers=service_auth, timeout=5).json()["incidents"]
        return next((i for i in listed if i["alert_id"] == alert["alert_id"] and i["assigned_to"]), None)
    incident = wait_for(assigned, 15, 0.1, "the alarm to be assigned")
    clinician = {"Authorization": f"Bearer {login_as(incident['assigned_to'])}"}
    for action, body in (("acknowledge", None), ("start", None), ("resolve", {"resolution_notes": "ROSC"})):
        answer = requests.patch(f"{incidents_url}/{incident['incident_id']}/{action}", json=body,
                                headers=clinician, timeout=5)
        assert answer.status_code == 200, answer.text

    def shows(promql):
        return [r for r in query(base, promql) if float(r["value"][1]) > 0]
    for promql in ('sum(incidents_total)', 'sum by (severity) (alerts_received_total)',
                   'sum(incident_mtta_seconds_count)', 'sum(incident_mttr_seconds_count)',
                   'sum by (status) (notifications_sent_total)', 'sum by (role) (oncall_current)'):
        wait_for(lambda promql=promql: shows(promql), 30, 0.5, f"Prometheus to show {promql}")
    assert shows('sum by (severity) (alerts_received_total)')[0]["metric"] == {"severity": "CRITICAL"}

    for title, promql in dashboard_queries():
        answer = requests.get(base + "/api/v1/query", params={"query": promql}, timeout=5).json()
        assert answer["status"] == "success", f"panel {title!r}: {promql}: {answer}"
