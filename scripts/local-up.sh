#!/usr/bin/env bash
# `make up` without Docker: the four services as local processes under honcho, against the
# PostgreSQL and RabbitMQ named in .env (default: this machine's). Returns once all are healthy.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${HG_RUN_DIR:-.run}
mkdir -p "$run"
if [ -f "$run/honcho.pid" ] && kill -0 "$(cat "$run/honcho.pid")" 2>/dev/null; then
  echo "HealthGuard Ops is already running (make down stops it)."
  exit 0
fi
# .env fills in what the environment does not already say.
while IFS= read -r line; do
  [[ $line =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]] || continue
  [ -n "${!BASH_REMATCH[1]:-}" ] || export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
done < .env
export BIND_HOST=127.0.0.1 HG_RUN_DIR="$run"
.venv/bin/python -m healthguard.migrate --create-database
setsid .venv/bin/honcho -f Procfile -e /dev/null start >"$run/honcho.log" 2>&1 </dev/null &
echo $! >"$run/honcho.pid"
ports=("${ALERT_INGESTION_PORT:-8001}" "${INCIDENT_MANAGEMENT_PORT:-8002}" "${ONCALL_PORT:-8003}" "${NOTIFICATION_PORT:-8004}")
urls=(); for port in "${ports[@]}"; do urls+=("http://127.0.0.1:$port/health"); done
if ! .venv/bin/python scripts/wait_healthy.py "${urls[@]}"; then
  tail -n 40 "$run/honcho.log" >&2
  scripts/local-down.sh
  exit 1
fi
cat <<MSG
HealthGuard Ops is up (logs: make logs, stop: make down):
  alert ingestion      http://127.0.0.1:${ports[0]}   (/health, /metrics, /api/v1/openapi.json)
  incident management  http://127.0.0.1:${ports[1]}
  on-call              http://127.0.0.1:${ports[2]}
  notification         http://127.0.0.1:${ports[3]}   (WebSocket /ws)
MSG
