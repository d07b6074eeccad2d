"""`make bench` in its quick mode: it starts its own suite, measures every figure of issue 10 briefly,
writes its JSON and plots, and leaves nothing behind. Only that the harness works is checked here:
no figure's value (speed lives in bench/, never in a test's assertions)."""
import json
import os
import shutil
import subprocess
import sys

import psycopg2
import pytest

from tests.support import REPO, rabbitmqctl

pytestmark = pytest.mark.skipif(not shutil.which("rabbitmqctl"),
                                reason="the bench makes its vhost with rabbitmqctl")


def databases(admin_url: str) -> set[str]:
    conn = psycopg2.connect(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_quick_bench_writes_every_figure_and_both_plots(tmp_path, postgres_admin_url):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick",
                           "--results", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ADMIN_DATABASE_URL": postgres_admin_url})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [written] = list(tmp_path.glob("bench-*.json"))
    result = json.loads(written.read_text())
    assert result["git_commit"] and result["cores"] and result["at"]
    assert result["pgbench_reference"]["tps"] > 0
    figures = result["figures"]
    for ingest in ("ingest", "ingest_registered"):  # the bootstrap key, a registered device's key
        for key in ("accepted_per_second", "post_p50_ms", "post_p99_ms", "http_5xx"):
            assert figures[ingest][key] is not None, (ingest, key)
    assert len(figures["latency_by_offered_load"]) == len(result["settings"]["offered_loads"])
    for step in figures["latency_by_offered_load"]:
        for key in ("alert_to_assigned_p50_ms", "alert_to_assigned_p95_ms", "alert_to_assigned_p99_ms",
                    "post_to_ws_frame_p50_ms", "post_to_ws_frame_p99_ms"):
            assert step[key] is not None, (step["offered_rate"], key)
    for run in ("end_to_end_empty", "end_to_end_history"):
        for key in ("sustained_per_second", "lost", "duplicated", "timeline_done", "timeline_accepted"):
            assert figures[run][key] is not None, (run, key)
        # Zero lost, zero duplicated is what the bench counts in the database for every run.
        assert figures[run]["accepted"] > 0
    for key in ("metrics_p50_ms", "metrics_p99_ms", "active_list_p50_ms", "active_list_p99_ms"):
        assert figures["reads"][key] is not None, key
    # The 100/s step again with every patient in a care team (issue 22), beside the step without.
    care = figures["care_teams_step"]
    assert care["patients_assigned"] > 0 and care["alert_to_assigned_p99_ms"] is not None
    # Assignment to the Web Push request leaving us (issue 21).
    assert figures["push"]["assigned_to_push_p99_ms"] is not None
    assert len(result["table"]) == 11 and all(row["value"] for row in result["table"])
    # Each throughput also as a ratio to the pgbench reference of the same run.
    assert all(row["ratio"] is not None for row in result["table"] if "/s" in row["value"])

    for name in result["plots"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert {name.rsplit("-", 1)[1] for name in result["plots"]} == {"latency.png", "throughput.png"}
    assert "| figure | measured | target |" in done.stdout
    # Its suite's database and vhost (one name) and pgbench's database are gone.
    left = databases(postgres_admin_url)
    assert result["suite"] not in left and result["pgbench_reference"]["database"] not in left
    assert result["suite"] not in rabbitmqctl("-q", "list_vhosts", "name").split()
