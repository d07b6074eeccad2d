#!/usr/bin/env bash
# `make down`: stop what `make up` started (honcho stops its gunicorn children).
set -euo pipefail
cd "$(dirname "$0")/.."
pidfile=${HG_RUN_DIR:-.run}/honcho.pid
[ -f "$pidfile" ] || { echo "nothing running"; exit 0; }
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
fi
rm -f "$pidfile"
echo "stopped"
