#!/usr/bin/env bash
# `make up` without Docker: the four services and their workers as local processes under honcho,
# against the PostgreSQL and RabbitMQ named in .env (default: this machine's). Returns once all
# are ready.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p "${HG_RUN_DIR:-.run}"
run=$(cd "${HG_RUN_DIR:-.run}" && pwd)
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
# nginx runs beside the services here: its X-Real-IP (and only the loopback peer's) names the client.
export TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1/32,::1/128}"
# The demo profile: the seeded staff sign in with the demo password (see README, Security).
.venv/bin/python -m healthguard.migrate --create-database --demo
# The SPA nginx serves, rebuilt when its sources changed; nginx and Prometheus configs rendered
# from the shipped files with loopback ports in place of the compose names.
if [ ! -f web-ui/dist/index.html ] || [ -n "$(find web-ui/src web-ui/index.html web-ui/package-lock.json -newer web-ui/dist/index.html -print -quit)" ]; then
  (cd web-ui && npm run build --silent >/dev/null)
fi
.venv/bin/python -m scripts.local_config "$run"
# Counts of a previous run must not leak into this one. Only here, with nothing running: each
# gunicorn master wipes just its own workers' files, never those of a worker process.
rm -rf "$run/metrics" "$run"/*-worker.heartbeat
setsid .venv/bin/honcho -f Procfile -e /dev/null start >"$run/honcho.log" 2>&1 </dev/null &
echo $! >"$run/honcho.pid"
ports=("${ALERT_INGESTION_PORT:-8001}" "${INCIDENT_MANAGEMENT_PORT:-8002}" "${ONCALL_PORT:-8003}" "${NOTIFICATION_PORT:-8004}")
urls=(); for port in "${ports[@]}"; do urls+=("http://127.0.0.1:$port/ready"); done
urls+=("http://127.0.0.1:${WEB_UI_PORT:-8080}/health" "http://127.0.0.1:${PROMETHEUS_PORT:-9090}/-/ready")
for service in alert-ingestion incident-management oncall notification; do
  urls+=("$run/$service-worker.heartbeat")
done
if ! .venv/bin/python scripts/wait_healthy.py "${urls[@]}"; then
  tail -n 40 "$run/honcho.log" >&2
  scripts/local-down.sh
  exit 1
fi
cat <<MSG
HealthGuard Ops is up (logs: make logs, stop: make down):
  alert ingestion      http://127.0.0.1:${ports[0]}   (/health, /ready, /metrics, /api/v1/openapi.json)
  incident management  http://127.0.0.1:${ports[1]}
  on-call              http://127.0.0.1:${ports[2]}
  notification         http://127.0.0.1:${ports[3]}   (WebSocket /ws)
  HL7 device gateways  ${HL7_MLLP_BIND:-127.0.0.1}:${HL7_MLLP_PORT:-2575}   (MLLP, IHE PCD-04: services/alert_ingestion/HL7.md)
  web UI (nginx)       http://127.0.0.1:${WEB_UI_PORT:-8080}
  Prometheus           http://127.0.0.1:${PROMETHEUS_PORT:-9090}
Grafana runs in the compose suite only (docker compose up -d, http://localhost:3001).
MSG
