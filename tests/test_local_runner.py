"""`make up` / `make down` without Docker: the local runner brings all four services to healthy
against the configured servers, applies migrations and stops everything it started."""
import os
import subprocess

import psycopg2
import requests
from psycopg2 import sql

from tests.support import REPO, SERVICE_MODULES, as_app_role, free_port, port_open, wait_for
from tests.test_accounts import client


def test_local_runner_starts_every_service_healthy_and_stops_them(
        postgres_admin_url, rabbitmq_url, service_env, tmp_path):
    name = f"hg_localrun_{os.getpid()}"
    database_url = postgres_admin_url.rsplit("/", 1)[0] + "/" + name
    ports = {service: free_port() for service in SERVICE_MODULES}
    web_port, prometheus_port, mllp_port = free_port(), free_port(), free_port()
    # The migrator as the administrator, the services as their own role (migration 0011).
    env = {**os.environ, **service_env, "MIGRATION_DATABASE_URL": database_url,
           "DATABASE_URL": as_app_role(database_url), "RABBITMQ_URL": rabbitmq_url,
           "HG_RUN_DIR": str(tmp_path / "run"),
           "ALERT_INGESTION_PORT": str(ports["alert-ingestion"]),
           "INCIDENT_MANAGEMENT_PORT": str(ports["incident-management"]),
           "ONCALL_PORT": str(ports["oncall"]), "NOTIFICATION_PORT": str(ports["notification"]),
           "WEB_UI_PORT": str(web_port), "PROMETHEUS_PORT": str(prometheus_port),
           "HL7_MLLP_PORT": str(mllp_port)}
    # `make up` reads .env. One written here is removed afterwards: every service a later test
    # starts would read it too (find_dotenv), with this machine's settings instead of the test's.
    wrote_env = not (REPO / ".env").exists()
    if wrote_env:
        subprocess.run([str(REPO / ".venv/bin/python"), "scripts/make_env.py"], cwd=REPO, check=True)
    try:
        up = subprocess.run(["scripts/local-up.sh"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "HealthGuard Ops is up" in up.stdout
        for service, port in ports.items():
            ready = requests.get(f"http://127.0.0.1:{port}/ready", timeout=5)
            assert ready.status_code == 200 and ready.json()["service"] == service
            # Its worker runs beside it (honcho), beating.
            assert (tmp_path / "run" / f"{service}-worker.heartbeat").is_file(), service
        # The clinicians' entry point: nginx serves the SPA and proxies to each service.
        page = requests.get(f"http://127.0.0.1:{web_port}/", timeout=5)
        assert page.status_code == 200 and "<div id=\"root\"" in page.text
        for service in SERVICE_MODULES:
            proxied = requests.get(f"http://127.0.0.1:{web_port}/ready/{service}", timeout=5)
            assert proxied.status_code == 200 and proxied.json()["status"] == "ok", service
        assert requests.get(f"http://127.0.0.1:{prometheus_port}/-/ready", timeout=5).status_code == 200
        # `make up` is the demo profile: the demo staff sign in with the demo password.
        signed_in = requests.post(f"http://127.0.0.1:{web_port}/api/v1/auth/login", timeout=10,
                                  json={"login": "D01", "password": "password123"})
        assert signed_in.status_code == 200, signed_in.text
        # nginx beside the services is the one trusted proxy: its X-Real-IP names the client;
        # a header sent straight to the service port from another address is ignored.
        workstation = client("127.0.0.9")
        workstation.post(f"http://127.0.0.1:{web_port}/api/v1/auth/login", timeout=10,
                         json={"login": "N02", "password": "not-it"})
        workstation.post(f"http://127.0.0.1:{ports['oncall']}/api/v1/auth/login", timeout=10,
                         headers={"X-Real-IP": "198.51.100.1"}, json={"login": "N03", "password": "not-it"})
        with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT login, host(source_address) FROM login_attempts "
                        "WHERE login IN ('N02', 'N03') ORDER BY login")
            assert cur.fetchall() == [("N02", "127.0.0.9"), ("N03", "127.0.0.9")]
        with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM employees), (SELECT count(*) FROM patients), "
                        "(SELECT count(*) FROM alert_types)")
            # 24 clinicians and the privacy officer; 33 seeded alert types, UNMAPPED_DEVICE_ALARM and
            # DEVICE_SILENT (0020).
            assert cur.fetchone() == (25, 8, 35)
        # The alert ingestion worker listens for HL7 device gateways (MLLP), once its start-up
        # reaches the listener (the web process answering /ready does not wait for it).
        wait_for(lambda: port_open(mllp_port), 30, 0.1, "the MLLP listener")
    finally:
        down = subprocess.run(["scripts/local-down.sh"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
        if wrote_env:
            (REPO / ".env").unlink(missing_ok=True)
        admin = psycopg2.connect(postgres_admin_url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not any(port_open(port) for port in [*ports.values(), web_port, prometheus_port])
