"""Tamper evidence (issue 24): the incident audit trail and the PHI access log are hash chains,
sealed by on-call's worker; `python -m healthguard.audit verify` passes an untouched chain and names
the first row an administrator changed; concurrent writers never fork a chain; the head is
published as Prometheus gauges. Real services, PostgreSQL and the test clock."""
import os
import subprocess
import sys
import threading

import psycopg2
import pytest
import requests

from healthguard.audit import head_number
from tests.support import REPO, as_app_role, metric_value, wait_for


@pytest.fixture
def oncall(start_service):
    return start_service("oncall")


def verify(database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO / "services")}
    env.pop("MIGRATION_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "healthguard.audit", "verify"], env=env,
                          cwd=REPO / "services", capture_output=True, text=True, timeout=120)


def write_history(db, incident_id: int, count: int) -> None:
    with db.transaction() as cur:
        for n in range(count):
            cur.execute("""
                INSERT INTO incident_history (incident_id, actor_id, action, previous_status, new_status,
                                              note)
                VALUES (%s, 'N01', 'NOTE_ADDED', 'OPEN', 'OPEN', %s)""", (incident_id, f"note {n}"))


def all_sealed(db) -> bool:
    with db.transaction() as cur:
        cur.execute("""
            SELECT (SELECT count(*) FROM incident_history WHERE row_hash IS NULL)
                 + (SELECT count(*) FROM phi_access_log WHERE row_hash IS NULL) AS unsealed""")
        return cur.fetchone()["unsealed"] == 0


def test_an_untouched_chain_verifies_and_a_changed_row_is_named(oncall, make_incident, login_as, db,
                                                                 database_url, start_service, clock):
    clock.pin_rota()
    incident_id = make_incident()
    write_history(db, incident_id, 5)
    ingestion = start_service("alert-ingestion", env={"ONCALL_URL": oncall.url})
    nurse = {"Authorization": f"Bearer {login_as('N01')}"}
    assert requests.get(f"{ingestion.url}/api/v1/patients", headers=nurse, timeout=10).status_code == 200
    wait_for(lambda: all_sealed(db), 60, 0.2, "on-call's worker to seal both chains")

    done = verify(database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "incident_history: 5 sealed rows walked" in done.stdout
    assert "phi_access_log: 8 sealed rows walked" in done.stdout

    # The heads, published: rows and the hash's first 52 bits.
    with db.transaction() as cur:
        cur.execute("SELECT chain, seq, head_hash FROM audit_chain_heads")
        heads = {row["chain"]: row for row in cur.fetchall()}
    assert metric_value(oncall.url, "audit_chain_rows", chain="incident_history") == 5
    assert metric_value(oncall.url, "audit_chain_head_hash", chain="phi_access_log") == float(
        head_number(bytes(heads["phi_access_log"]["head_hash"])))

    # The administrator (not the services' role: it may not) rewrites the third note.
    with db.transaction() as cur:
        cur.execute("SELECT history_id FROM incident_history ORDER BY chain_seq OFFSET 2 LIMIT 1")
        changed = cur.fetchone()["history_id"]
        cur.execute("UPDATE incident_history SET note = 'nothing happened' WHERE history_id = %s", (changed,))
    done = verify(database_url)
    assert done.returncode == 1, done.stdout
    assert f"incident_history: broken at chain_seq 3 (history_id={changed})" in done.stdout
    assert "content does not match" in done.stdout
    assert "phi_access_log" not in done.stdout.split("BROKEN", 1)[1]  # the other chain is intact


def test_concurrent_writers_do_not_fork_the_chain(oncall, make_incident, db, database_url, clock):
    """Eight connections of the services' role append at once while the worker seals: one chain,
    positions 1..n without a gap or a repeat, and it verifies."""
    clock.pin_rota()
    incident_id = make_incident()
    errors = []

    def writer(number: int) -> None:
        try:
            conn = psycopg2.connect(as_app_role(database_url))
            try:
                for n in range(25):
                    with conn, conn.cursor() as cur:
                        cur.execute("""
                            INSERT INTO phi_access_log (accessed_at, patient_id, employee_id, accessor_kind,
                                                        route, purpose)
                            SELECT %s, p, 'N01', 'EMPLOYEE', 'GET /test', 'treatment'
                            FROM unnest(ARRAY['P001', 'P002', 'P003']) AS p""", (clock.now(),))
                        cur.execute("""
                            INSERT INTO incident_history (incident_id, action, new_status, note)
                            VALUES (%s, 'NOTE_ADDED', 'OPEN', %s)""", (incident_id, f"{number}/{n}"))
            finally:
                conn.close()
        except Exception as exc:  # reported below, with the thread's number
            errors.append((number, exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    wait_for(lambda: all_sealed(db), 60, 0.2, "every row to be sealed")
    with db.transaction() as cur:
        for table, expected in (("phi_access_log", 8 * 25 * 3), ("incident_history", 8 * 25)):
            cur.execute(f"SELECT count(*) AS n, count(DISTINCT chain_seq) AS positions, "  # noqa: S608
                        f"min(chain_seq) AS first, max(chain_seq) AS last FROM {table}")
            row = cur.fetchone()
            assert row["n"] >= expected
            assert (row["positions"], row["first"], row["last"]) == (row["n"], 1, row["n"]), table
    done = verify(database_url)
    assert done.returncode == 0, done.stdout + done.stderr
