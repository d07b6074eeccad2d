"""docker-compose.yml, .env.example and the Dockerfiles, proven without a Docker engine.

The file is interpolated the way Compose does it (values from .env.example) and validated against
the Compose Specification's JSON Schema; then the operational promises are checked one by one:
what is published, healthchecks, start order, volumes, no credentials in the file, and that every
command and healthcheck names something the image really has.
"""
import ast
import json
import re
import secrets
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SERVICES_DIR = REPO / "services"
# The Compose Specification's schema, vendored (source and licence in tests/schemas/README.md).
COMPOSE_SCHEMA = REPO / "tests" / "schemas" / "compose-spec.json"

APP_SERVICES = {
    "alert-ingestion": ("alert_ingestion", 8001),
    "incident-management": ("incident_management", 8002),
    "oncall": ("oncall", 8003),
    "notification": ("notification", 8004),
}
# Each service's worker process (consumers, relays, periodic tasks): same image, own command.
WORKERS = {f"{name}-worker": name for name in APP_SERVICES}
SERVICES_IMAGE = "healthguard-ops/services:latest"
METRICS_DIR = "/tmp/prometheus"  # noqa: S108 (the image's PROMETHEUS_MULTIPROC_DIR, inside the container)
PUBLISHED = {8080: ("web-ui", 8080), 3001: ("grafana", 3000), 9090: ("prometheus", 9090)}
# Jobs that run once and exit: the placeholder check, then the migration.
ONE_SHOT = {"migrate", "check-secrets"}
SECRETS = ("POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD", "RABBITMQ_PASSWORD", "RABBITMQ_ERLANG_COOKIE",
           "GRAFANA_ADMIN_PASSWORD", "SERVICE_TOKEN", "DEVICE_API_KEYS")
# The `ha` profile: the broker `rabbitmq` and these two form a 3-node RabbitMQ cluster.
HA_NODES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")
RABBITMQ_CONF = REPO / "rabbitmq" / "rabbitmq.conf"
SERVICE_SETTINGS = ("SERVICE_TOKEN", "WEB_ORIGIN", "HOSPITAL_TZ", "SESSION_TTL_HOURS", "LOG_LEVEL",
                    "GUNICORN_WORKERS")


# --------------------------------------------------------------------------- interpolation
class InterpolationError(ValueError):
    """A `${VAR:?message}` / `${VAR?message}` whose variable is missing, or a malformed `${`."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, env: dict) -> str:
    """Compose's variable substitution: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
    `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`; defaults may nest."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            body, i = _braced(text, i + 2)
            out.append(_substitute(body, env))
        else:
            match = _NAME.match(text, i + 1)
            if not match:
                raise InterpolationError(f"invalid interpolation format at {text[i:]!r}")
            out.append(env.get(match.group(), ""))
            i = match.end()
    return "".join(out)


def _braced(text: str, start: int) -> tuple[str, int]:
    """The text between `${` (ending at start) and its matching `}`, and the index after it."""
    depth, i = 1, start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i], i + 1
        i += 1
    raise InterpolationError(f"unterminated ${{ in {text!r}")


def _substitute(body: str, env: dict) -> str:
    match = _NAME.match(body)
    if not match:
        raise InterpolationError(f"invalid variable name in ${{{body}}}")
    name, rest = match.group(), body[match.end():]
    value = env.get(name)
    if rest == "":
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            unset = value is None
            empty = unset or value == ""
            missing = empty if op.startswith(":") else unset
            if op.endswith("-"):
                return interpolate(arg, env) if missing else value
            if op.endswith("?"):
                if missing:
                    raise InterpolationError(f"required variable {name} is missing a value: {arg}")
                return value
            return "" if missing else interpolate(arg, env)
    raise InterpolationError(f"invalid interpolation format for ${{{body}}}")


def interpolate_tree(node, env):
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env) for value in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def test_interpolation_follows_compose_rules():
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("a$$b $${SET}", env) == "a$b ${SET}"
    assert interpolate("${SET}/$SET/${UNSET}", env) == "v/v/"
    assert interpolate("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == "d d  d"
    assert interpolate("${UNSET:-${SET}x}", env) == "vx"
    assert interpolate("${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt}", env) == "alt  alt"
    assert interpolate("${EMPTY?fine}", env) == ""
    with pytest.raises(InterpolationError, match="set it"):
        interpolate("${UNSET:?set it}", env)
    with pytest.raises(InterpolationError):
        interpolate("${EMPTY:?set it}", env)
    with pytest.raises(InterpolationError):
        interpolate("${SET", env)


# --------------------------------------------------------------------------- loading
def load_env_example() -> dict:
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=VALUE: {line!r}"
        env[key.strip()] = value.strip()
    return env


@pytest.fixture(scope="module")
def env():
    return load_env_example()


@pytest.fixture(scope="module")
def raw_compose():
    """The YAML as written (merge keys resolved, variables not yet substituted)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw_compose, env):
    return interpolate_tree(raw_compose, env)


@pytest.fixture(scope="module")
def compose_services(compose):
    return compose["services"]


def variables_used(text: str) -> set[str]:
    text = text.replace("$$", "")
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


# --------------------------------------------------------------------------- the file itself
def test_compose_file_is_valid_against_the_compose_spec(compose):
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    assert compose["name"] == "healthguard-ops"


def test_every_variable_is_documented_in_env_example(env):
    used = variables_used(COMPOSE_FILE.read_text())
    assert used, "the compose file should take its settings from the environment"
    assert used <= set(env), f"undocumented in .env.example: {sorted(used - set(env))}"


def test_env_example_documents_what_the_services_read(env):
    expected = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "RABBITMQ_USER",
                "RABBITMQ_PASSWORD", "GRAFANA_ADMIN_USER", "GRAFANA_ADMIN_PASSWORD",
                "SERVICE_TOKEN", "DEVICE_API_KEYS", "WEB_ORIGIN", "HOSPITAL_TZ",
                "SESSION_TTL_HOURS", "LOG_LEVEL", "GUNICORN_WORKERS", "DATABASE_URL",
                "RABBITMQ_URL"}
    assert expected <= set(env), f"missing from .env.example: {sorted(expected - set(env))}"
    assert env["DATABASE_URL"] == "postgresql://healthguard_app@127.0.0.1:5432/healthguard"
    assert env["MIGRATION_DATABASE_URL"] == "postgresql://postgres@127.0.0.1:5432/healthguard"
    assert env["RABBITMQ_URL"] == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert env["WEB_ORIGIN"] == "http://localhost:8080"
    assert env["HOSPITAL_TZ"] == "Europe/London"
    assert env["SESSION_TTL_HOURS"] == "14"
    assert env["LOG_LEVEL"] == "INFO"
    assert env["GUNICORN_WORKERS"] == "2"


def test_every_env_example_setting_has_a_comment():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            assert number > 0 and lines[number - 1].lstrip().startswith("#"), (
                f".env.example line {number + 1} ({line.split('=')[0]}) has no comment above it")


def test_secrets_ship_only_as_placeholders(env):
    for name in SECRETS:
        assert env[name] == "change-me", f"{name} must be the placeholder `change-me` in .env.example"


@pytest.mark.parametrize("name", tuple(s for s in SECRETS if s != "DEVICE_API_KEYS")
                         + ("POSTGRES_USER", "POSTGRES_DB", "RABBITMQ_USER", "GRAFANA_ADMIN_USER"))
def test_a_missing_credential_stops_compose(raw_compose, env, name):
    without = {key: value for key, value in env.items() if key != name}
    with pytest.raises(InterpolationError, match=name):
        interpolate_tree(raw_compose, without)


def test_bootstrap_device_keys_are_optional_in_compose(raw_compose, env):
    """A real deployment has no unscoped key: without DEVICE_API_KEYS the suite still starts,
    its devices using their own registry keys."""
    without = {key: value for key, value in env.items() if key != "DEVICE_API_KEYS"}
    services = interpolate_tree(raw_compose, without)["services"]
    assert services["alert-ingestion"]["environment"]["DEVICE_API_KEYS"] == ""


def without_the_secrets_check(text: str) -> str:
    """The compose file without its comments and the check-secrets job, which names the
    placeholder it refuses and lists every secret once more."""
    text = re.sub(r"(?ms)^  check-secrets:\n.*?(?=^  \S)", "", text)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def test_no_credential_is_written_in_the_compose_file(raw_compose):
    text = without_the_secrets_check(COMPOSE_FILE.read_text())
    for literal in ("change-me", "password123", "guest:guest", "admin:admin"):
        assert literal not in text, f"literal credential {literal!r} in docker-compose.yml"
    secret_key = re.compile(r"PASSWORD$|PASS$|SECRET|TOKEN|API_KEY|_KEYS?$|COOKIE", re.IGNORECASE)
    for name, service in raw_compose["services"].items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), f"{name}: use the mapping form of environment"
        for key, value in environment.items():
            value = str(value)
            if secret_key.search(key):
                assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?[?-][^}]*)?\}", value), (
                    f"{name}.{key} must come from a variable, got {value!r}")
            userinfo = urlsplit(value).netloc.rpartition("@")[0] if "://" in value else ""
            if ":" in userinfo:
                password = userinfo.split(":", 1)[1]
                assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:\?[^}]*)?\}", password), (
                    f"{name}.{key}: password in URL must be a variable, got {password!r}")


REQUIRED_SECRETS = tuple(name for name in SECRETS if name != "DEVICE_API_KEYS")


def test_every_container_requires_each_secret_it_is_given(raw_compose, env):
    """Every value that carries a secret stops compose without it, in every container that gets
    it (Grafana, postgres and rabbitmq included), not only where it is first written."""
    for name, service in raw_compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            for secret in REQUIRED_SECRETS:
                if f"${{{secret}" in str(value):
                    without = {k: v for k, v in env.items() if k != secret}
                    with pytest.raises(InterpolationError, match=secret):
                        interpolate(str(value), without)
                    assert f"${{{secret}:?" in str(value), f"{name}.{key}: {secret} must be `:?`"


def depends_on_all(services: dict, name: str) -> dict:
    """Every service `name` waits for, directly or through others, with the condition."""
    found, todo = {}, [name]
    while todo:
        for dependency, rule in (services[todo.pop()].get("depends_on") or {}).items():
            if dependency not in found:
                found[dependency] = rule["condition"]
                todo.append(dependency)
    return found


def test_nothing_holding_a_secret_starts_before_the_placeholder_check(compose_services, raw_compose):
    check = compose_services["check-secrets"]
    assert check["restart"] == "no" and check["network_mode"] == "none"
    # It sees every secret, and only the secrets.
    assert set(check["environment"]) == set(SECRETS)
    secret_key = re.compile("|".join(SECRETS))
    holders = [name for name, service in raw_compose["services"].items() if name != "check-secrets"
               and any(secret_key.search(str(value))
                       for value in (service.get("environment") or {}).values())]
    assert {"postgres", "rabbitmq", "rabbitmq-2", "rabbitmq-3", "grafana", "migrate"} <= set(holders)
    for name in holders:
        needs = depends_on_all(compose_services, name)
        assert needs.get("check-secrets") == "service_completed_successfully", name


def run_secrets_check(services: dict, **environment) -> subprocess.CompletedProcess:
    """check-secrets' own command, under /bin/sh here as in its container."""
    check = services["check-secrets"]
    assert check["entrypoint"] == ["/bin/sh", "-c"]
    return subprocess.run(["/bin/sh", "-c", check["command"][0]], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **environment}, timeout=30)


def test_the_placeholder_check_refuses_change_me_in_any_secret(raw_compose, env):
    fresh = {name: secrets.token_urlsafe(24) for name in SECRETS}
    services = interpolate_tree(raw_compose, {**env, **fresh})["services"]
    passed = run_secrets_check(services, **fresh)
    assert passed.returncode == 0, passed.stderr
    for name in SECRETS:
        refused = run_secrets_check(services, **{**fresh, name: "change-me"})
        assert refused.returncode == 1, name
        assert name in refused.stderr and "python3 scripts/make_env.py" in refused.stderr
    # .env.example as it is: every one of them named at once.
    refused = run_secrets_check(services, **{name: env[name] for name in SECRETS})
    assert refused.returncode == 1 and all(name in refused.stderr for name in SECRETS)


def test_the_header_says_how_to_write_env():
    header = COMPOSE_FILE.read_text().split("\nname:")[0]
    assert "python3 scripts/make_env.py" in header
    assert "cp .env.example" not in header


# --------------------------------------------------------------------------- exposure
def host_ports(service: dict) -> list[tuple[int, int]]:
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((int(entry["published"]), int(entry["target"])))
        else:
            parts = str(entry).split("/")[0].split(":")
            assert len(parts) >= 2, f"port {entry!r} publishes a random host port"
            ports.append((int(parts[-2]), int(parts[-1])))
    return ports


def test_only_the_web_ui_grafana_and_prometheus_are_published(compose_services):
    published = {}
    for name, service in compose_services.items():
        for host, container in host_ports(service):
            assert host not in published, f"host port {host} published twice"
            published[host] = (name, container)
    assert published == PUBLISHED


def test_prometheus_is_published_on_loopback_unless_the_env_says_otherwise(raw_compose, env):
    """Prometheus has no authentication: reachable from this host only, by default."""
    def prometheus_ports(**settings):
        return interpolate_tree(raw_compose, {**env, **settings})["services"]["prometheus"]["ports"]

    assert env["PROMETHEUS_BIND"] == "127.0.0.1"
    unset = {key: value for key, value in env.items() if key != "PROMETHEUS_BIND"}
    assert interpolate_tree(raw_compose, unset)["services"]["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    everywhere = "0.0.0.0"  # noqa: S104 (what an operator sets to expose it)
    assert prometheus_ports(PROMETHEUS_BIND=everywhere) == [f"{everywhere}:9090:9090"]


def test_grafana_is_published_on_loopback_unless_the_env_says_otherwise(raw_compose, env):
    """Grafana's sign-in is for the operator on this host by default, as Prometheus is."""
    assert env["GRAFANA_BIND"] == "127.0.0.1"
    unset = {key: value for key, value in env.items() if key != "GRAFANA_BIND"}
    assert interpolate_tree(raw_compose, unset)["services"]["grafana"]["ports"] == ["127.0.0.1:3001:3000"]
    everywhere = "0.0.0.0"  # noqa: S104 (what an operator sets to expose it)
    exposed = interpolate_tree(raw_compose, {**env, "GRAFANA_BIND": everywhere})["services"]["grafana"]
    assert exposed["ports"] == [f"{everywhere}:3001:3000"]


def test_no_service_port_is_published_and_monitoring_only_on_loopback(raw_compose, env):
    """Only nginx is the way in (issue 17, slow clients): no service, database or broker port is
    published, and the monitoring ports only on 127.0.0.1 unless .env says otherwise."""
    services = interpolate_tree(raw_compose, env)["services"]
    for name, service in services.items():
        if name not in ("web-ui", "grafana", "prometheus"):
            assert "ports" not in service, f"{name} publishes {service['ports']}"
    for name in ("grafana", "prometheus"):
        assert all(str(port).startswith("127.0.0.1:") for port in services[name]["ports"]), name


def test_grafana_starts_only_with_its_admin_password_from_the_env(raw_compose, env):
    grafana = raw_compose["services"]["grafana"]
    assert "GF_AUTH_ANONYMOUS_ENABLED" in grafana["environment"]
    assert interpolate_tree(grafana, env)["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert interpolate_tree(grafana, env)["environment"]["GF_AUTH_BASIC_PASSWORD_POLICY"] == "true"
    without = {key: value for key, value in env.items() if key != "GRAFANA_ADMIN_PASSWORD"}
    with pytest.raises(InterpolationError, match="GRAFANA_ADMIN_PASSWORD"):
        interpolate_tree(raw_compose, without)


# --------------------------------------------------------------------------- health and order
def test_every_long_running_container_has_the_standard_healthcheck(compose_services):
    for name, service in compose_services.items():
        if name in ONE_SHOT:
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check.get("test"), f"{name}: healthcheck without a test"
        assert check.get("interval") == "10s", name
        assert check.get("timeout") == "10s", name
        assert check.get("retries") == 3, name
        assert re.fullmatch(r"\d+[smh]", str(check.get("start_period", ""))), (
            f"{name}: healthcheck needs a start_period")


def test_migrate_is_a_one_shot_job(compose_services):
    migrate = compose_services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["command"] == ["python", "-m", "healthguard.migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    # It exits when done: the image's HTTP healthcheck would have nothing to probe.
    assert migrate["healthcheck"] == {"disable": True}
    assert "ports" not in migrate


def test_restart_policies(compose_services):
    for name, service in compose_services.items():
        expected = "no" if name in ONE_SHOT else "unless-stopped"
        assert service.get("restart") == expected, name


def test_services_start_after_their_dependencies(compose_services):
    for name in APP_SERVICES:
        depends = compose_services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert compose_services["incident-management"]["depends_on"]["oncall"]["condition"] == "service_healthy"
    web_depends = compose_services["web-ui"]["depends_on"]
    for name in APP_SERVICES:
        assert web_depends[name]["condition"] == "service_healthy"
    assert compose_services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_every_dependency_that_must_be_healthy_has_a_healthcheck(compose_services):
    for name, service in compose_services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in compose_services, f"{name} depends on unknown {dependency}"
            if rule.get("condition") == "service_healthy":
                check = compose_services[dependency].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {dependency} to be healthy, which it can never report")
            if rule.get("condition") == "service_completed_successfully":
                assert compose_services[dependency].get("restart") == "no", (
                    f"{dependency} must not restart if {name} waits for it to complete")


# --------------------------------------------------------------------------- settings
def test_app_services_get_their_settings(compose_services, env):
    for name, (_, port) in APP_SERVICES.items():
        environment = compose_services[name]["environment"]
        assert environment["PORT"] == str(port), name
        assert environment["DATABASE_URL"] == (  # the services' own role, not the administrator
            f"postgresql://healthguard_app:{env['POSTGRES_APP_PASSWORD']}"
            f"@postgres:5432/{env['POSTGRES_DB']}"), name
        assert environment["RABBITMQ_URL"] == ",".join(
            f"amqp://{env['RABBITMQ_USER']}:{env['RABBITMQ_PASSWORD']}@{node}:5672/%2F"
            for node in HA_NODES), name
        for setting in SERVICE_SETTINGS:
            assert environment[setting] == env[setting], f"{name}.{setting}"
    assert compose_services["alert-ingestion"]["environment"]["DEVICE_API_KEYS"] == env["DEVICE_API_KEYS"]
    assert compose_services["incident-management"]["environment"]["ONCALL_URL"] == "http://oncall:8003"
    assert compose_services["migrate"]["environment"] == {
        "MIGRATION_DATABASE_URL": f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}"
                                  f"@postgres:5432/{env['POSTGRES_DB']}",
        "POSTGRES_APP_PASSWORD": env["POSTGRES_APP_PASSWORD"],
        # The services' role, for `docker compose run --rm migrate python -m oncall.accounts`.
        "DATABASE_URL": compose_services["oncall"]["environment"]["DATABASE_URL"],
        "LOG_LEVEL": env["LOG_LEVEL"], "HG_DEMO": env["HG_DEMO"]}
    assert compose_services["postgres"]["environment"] == {
        "POSTGRES_USER": env["POSTGRES_USER"], "POSTGRES_PASSWORD": env["POSTGRES_PASSWORD"],
        "POSTGRES_DB": env["POSTGRES_DB"]}
    assert compose_services["rabbitmq"]["environment"] == {
        "RABBITMQ_DEFAULT_USER": env["RABBITMQ_USER"],
        "RABBITMQ_DEFAULT_PASS": env["RABBITMQ_PASSWORD"],
        "RABBITMQ_ERLANG_COOKIE": env["RABBITMQ_ERLANG_COOKIE"]}
    grafana = compose_services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_USER"] == env["GRAFANA_ADMIN_USER"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == env["GRAFANA_ADMIN_PASSWORD"]


def test_shared_settings_are_written_once():
    """The four services share one anchor for their settings instead of copies."""
    text = without_the_secrets_check(COMPOSE_FILE.read_text())
    for key in ("RABBITMQ_URL", "SERVICE_TOKEN", "WEB_ORIGIN", "GUNICORN_WORKERS", "ONCALL_URL",
                "DEVICE_API_KEYS", "MESSAGE_MAX_ATTEMPTS"):
        assert len(re.findall(rf"^\s+{key}:", text, re.MULTILINE)) == 1, key
    assert text.count('"healthguard.healthcheck"]') == 1  # the web services' anchor
    assert text.count('"healthguard.healthcheck", "--worker"]') == 1  # the workers' anchor


# --------------------------------------------------------------------------- ha profile
def rabbitmq_conf() -> dict:
    """rabbitmq.conf (sysctl format: `key = value` lines, # comments) as a mapping."""
    settings = {}
    for line in RABBITMQ_CONF.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            key, sep, value = line.partition("=")
            assert sep, f"rabbitmq.conf: not `key = value`: {line!r}"
            settings[key.strip()] = value.strip()
    return settings


def test_the_ha_profile_is_off_by_default(compose_services):
    """A plain `docker compose up` runs what it always ran; only `--profile ha` adds nodes."""
    profiled = {name: service["profiles"] for name, service in compose_services.items()
                if "profiles" in service}
    assert profiled == {"rabbitmq-2": ["ha"], "rabbitmq-3": ["ha"]}


def test_the_ha_profile_forms_a_three_node_cluster(compose_services, env):
    conf = rabbitmq_conf()
    assert conf["cluster_formation.peer_discovery_backend"] == "classic_config"
    listed = [value for key, value in sorted(conf.items())
              if key.startswith("cluster_formation.classic_config.nodes.")]
    assert listed == [f"rabbit@{compose_services[node]['hostname']}" for node in HA_NODES]
    image = compose_services["rabbitmq"]["image"]
    assert image.startswith("rabbitmq:3.13")
    for node in HA_NODES:
        service = compose_services[node]
        assert service["hostname"] == node  # the node name rabbit@<hostname> the conf lists
        assert service["image"] == image, node
        assert service["environment"]["RABBITMQ_ERLANG_COOKIE"] == env["RABBITMQ_ERLANG_COOKIE"], node
        assert service["healthcheck"] == compose_services["rabbitmq"]["healthcheck"], node
    assert compose_services["rabbitmq"]["volumes"] == ["rabbitmq-data:/var/lib/rabbitmq"]
    for node in HA_NODES[1:]:
        service = compose_services[node]
        assert f"{node}-data:/var/lib/rabbitmq" in service["volumes"], node
        # They join the seed on first boot, so they start after it; the seed mounts no node list
        # (alone, without the profile, it must not wait for peers that never come).
        assert service["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}, node
        assert "./rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-healthguard-cluster.conf:ro" in (
            service["volumes"]), node
        # Users and vhosts come from the cluster: the joining nodes define none.
        assert set(service["environment"]) == {"RABBITMQ_ERLANG_COOKIE"}, node


def test_the_services_know_every_node_and_wait_for_the_cluster(compose_services, env):
    from healthguard.broker import node_urls
    for name in [*APP_SERVICES, *WORKERS]:
        service = compose_services[name]
        urls = node_urls(service["environment"]["RABBITMQ_URL"])
        assert [urlsplit(url).hostname for url in urls] == list(HA_NODES), name
        # Quorum queues get a replica on each node that is in the cluster when they are
        # declared: with the profile on, the services start once all three nodes are up.
        for node in HA_NODES[1:]:
            assert service["depends_on"][node] == {"condition": "service_healthy", "required": False}


# --------------------------------------------------------------------------- images
def test_the_services_image_is_built_once_and_never_pulled(compose_services):
    builders = [name for name, service in compose_services.items() if service.get("image") == SERVICES_IMAGE
                and "build" in service]
    assert len(builders) == 1, f"exactly one service builds {SERVICES_IMAGE}, got {builders}"
    build = compose_services[builders[0]]["build"]
    assert build["context"] == "." and build["dockerfile"] == "services/Dockerfile"
    assert compose_services[builders[0]].get("pull_policy") == "build"
    for name in [*APP_SERVICES, *WORKERS]:
        service = compose_services[name]
        assert service["image"] == SERVICES_IMAGE, name
        assert "build" not in service, name
        assert service.get("pull_policy") == "never", name
        # Every service waits for the builder, so `docker compose up <service>` builds the image.
        assert builders[0] in service["depends_on"], name
    assert compose_services["web-ui"]["build"]["context"] == "./web-ui"


def test_named_volumes_are_declared_and_used(compose, compose_services):
    declared = set(compose.get("volumes") or {})
    assert declared == {"postgres-data", "rabbitmq-data", "rabbitmq-2-data", "rabbitmq-3-data",
                        "grafana-data", "prometheus-data",
                        *(f"{name}-metrics" for name in APP_SERVICES)}
    used = set()
    for name, service in compose_services.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert used == declared


def module_file(module: str) -> Path:
    path = SERVICES_DIR.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def runs_as_main(path: Path) -> bool:
    return '__name__ == "__main__"' in path.read_text() or path.name == "__main__.py"


def test_service_commands_name_code_that_exists(compose_services):
    for name, (package, _) in APP_SERVICES.items():
        command = compose_services[name]["command"]
        assert command[:3] == ["gunicorn", "-c", "python:healthguard.gunicorn_conf"], name
        assert module_file("healthguard.gunicorn_conf").is_file()
        target = command[-1]  # options may stand between the config and the app
        module, _, factory = target.partition(":")
        assert module == f"{package}.app" and factory == "create_app()", f"{name}: {target}"
        app_file = module_file(module)
        assert app_file.is_file(), f"{name}: {app_file} is missing"
        assert "create_app" in defined_functions(app_file), f"{app_file} defines no create_app"
    migrate = module_file("healthguard.migrate")
    assert migrate.is_file() and runs_as_main(migrate)


def app_registers_background_work(package: str) -> bool:
    return ".background" in (SERVICES_DIR / package / "app.py").read_text()


def test_every_service_with_background_work_has_a_worker_container(compose_services):
    """Consumers, relays and periodic tasks run in `<service>-worker`, built like its service:
    same image, same settings, same start order, the same metrics directory (so the service's
    /metrics shows the worker's counters), a heartbeat healthcheck and time to stop cleanly."""
    worker = module_file("healthguard.worker")
    assert worker.is_file() and runs_as_main(worker)
    with_work = {name for name, (package, _) in APP_SERVICES.items()
                 if app_registers_background_work(package)}
    assert {service for service in WORKERS.values() if f"{service}-worker" in compose_services} == with_work
    assert with_work == set(APP_SERVICES)  # all four have some today
    for name, service_name in WORKERS.items():
        worker_service, web = compose_services[name], compose_services[service_name]
        package = APP_SERVICES[service_name][0]
        assert worker_service["command"] == ["python", "-m", "healthguard.worker", package], name
        assert "create_app" in defined_functions(module_file(f"{package}.app"))
        assert worker_service["image"] == SERVICES_IMAGE and "build" not in worker_service, name
        assert worker_service["pull_policy"] == "never", name
        assert worker_service["environment"] == web["environment"], name
        assert worker_service["depends_on"] == web["depends_on"], name
        assert "ports" not in worker_service, name
        assert re.fullmatch(r"\d+s", worker_service.get("stop_grace_period", "")), name
        metrics = f"{service_name}-metrics:{METRICS_DIR}"
        assert worker_service["volumes"] == [metrics] and web["volumes"] == [metrics], name


def test_metrics_volumes_are_tmpfs_owned_by_the_image_user(compose):
    user = next(args for instruction, args in final_stage(SERVICES_DIR / "Dockerfile")
                if instruction == "USER")
    uid, gid = user.split(":")
    for name in APP_SERVICES:
        options = compose["volumes"][f"{name}-metrics"]["driver_opts"]
        assert options["type"] == "tmpfs" and options["device"] == "tmpfs", name
        assert f"uid={uid}" in options["o"] and f"gid={gid}" in options["o"], name


def test_the_image_default_command_is_alert_ingestion():
    cmd = [line for line in (SERVICES_DIR / "Dockerfile").read_text().splitlines()
           if line.startswith("CMD ")]
    assert len(cmd) == 1
    assert json.loads(cmd[0][4:]) == ["gunicorn", "-c", "python:healthguard.gunicorn_conf",
                                      "alert_ingestion.app:create_app()"]


# The tools each image is known to ship, for its healthcheck. prom/prometheus and
# grafana/grafana are busybox/Alpine based: wget, no curl. nginx-unprivileged:alpine: busybox.
IMAGE_TOOLS = {
    "postgres:15-alpine": {"pg_isready"},
    "rabbitmq:3.13-management-alpine": {"rabbitmq-diagnostics"},
    "prom/prometheus:": {"wget"},
    "grafana/grafana:": {"wget"},
}


def healthcheck_program(check: dict) -> str:
    test = check["test"]
    if isinstance(test, str):
        return test.split()[0]
    kind, *argv = test
    if kind == "CMD-SHELL":
        return argv[0].split()[0]
    assert kind == "CMD", f"healthcheck test must start with CMD or CMD-SHELL: {test}"
    return argv[0]


def test_healthchecks_use_tools_the_images_have(compose_services):
    python_check = ["CMD", "python", "-m", "healthguard.healthcheck"]
    assert module_file("healthguard.healthcheck").is_file()
    assert runs_as_main(module_file("healthguard.healthcheck"))
    for name, service in compose_services.items():
        if name in ONE_SHOT:
            continue
        check = service["healthcheck"]
        if name in APP_SERVICES:
            assert check["test"] == python_check, name
        elif name in WORKERS:
            assert check["test"] == [*python_check, "--worker"], name
        elif name == "web-ui":
            final_from = dockerfile_stages(REPO / "web-ui" / "Dockerfile")[-1]
            assert "alpine" in final_from, "web-ui healthcheck relies on busybox wget"
            assert healthcheck_program(check) == "wget"
            assert "8080/health" in " ".join(check["test"])
        else:
            image = service["image"]
            tools = next((t for prefix, t in IMAGE_TOOLS.items() if image.startswith(prefix)), None)
            assert tools is not None, f"{name}: no known tools for image {image}"
            assert healthcheck_program(check) in tools, f"{name}: {check['test']}"


def test_published_images_are_pinned(compose_services):
    for name, service in compose_services.items():
        if "build" in service or service.get("image") == SERVICES_IMAGE:
            continue
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


# --------------------------------------------------------------------------- cross-file
def test_scrape_targets_and_proxy_routes_match_the_services(compose_services):
    prometheus = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
               for job in prometheus["scrape_configs"]}
    nginx = (REPO / "web-ui" / "nginx.conf").read_text()
    for name, (_, port) in APP_SERVICES.items():
        assert compose_services[name]["environment"]["PORT"] == str(port)
        assert targets[name] == [f"{name}:{port}"]
        assert f"http://{name}:{port}" in nginx, f"nginx does not route to {name}:{port}"
    assert re.search(r"^\s*listen\s+8080;", nginx, re.MULTILINE)


# --------------------------------------------------------------------------- Dockerfiles
def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        logical.append(current)
        current = ""
    result = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def dockerfile_stages(path: Path) -> list[str]:
    return [args for instruction, args in dockerfile_instructions(path) if instruction == "FROM"]


def final_stage(path: Path) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    return instructions[last_from:]


def assert_non_root_healthchecked(path: Path):
    stage = final_stage(path)
    users = [args for instruction, args in stage if instruction == "USER"]
    assert users, f"{path}: the final stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{path}: runs as root"
    assert any(instruction == "HEALTHCHECK" for instruction, _ in stage), f"{path}: no HEALTHCHECK"


def copy_sources(args: str) -> list[str]:
    parts = [part for part in args.split() if not part.startswith("--")]
    return parts[:-1]


def test_services_dockerfile():
    path = SERVICES_DIR / "Dockerfile"
    instructions = dockerfile_instructions(path)
    stages = dockerfile_stages(path)
    assert len(stages) >= 2 and all(stage.startswith("python:3.11-slim") for stage in stages)

    copies = [(i, args) for i, (instruction, args) in enumerate(instructions)
              if instruction == "COPY" and "--from=" not in args]
    requirements_at = next(i for i, args in copies if "services/requirements.txt" in args)
    install_at = next(i for i, (instruction, args) in enumerate(instructions)
                      if instruction == "RUN" and "pip install" in args and "requirements" in args)
    code_at = min(i for i, args in copies if "requirements.txt" not in args)
    assert requirements_at < install_at < code_at, "install requirements before copying the code"

    # Everything copied from the build context exists (a missing path fails the build), and
    # .dockerignore does not hide it.
    ignored = (REPO / ".dockerignore").read_text().split()
    for _, args in copies:
        for source in copy_sources(args):
            assert (REPO / source).exists(), f"services/Dockerfile copies missing {source}"
            assert source.split("/")[0] not in ignored, f".dockerignore hides {source}"
    copied = " ".join(args for _, args in copies)
    for package in ("healthguard", "alert_ingestion", "incident_management", "oncall",
                    "notification"):
        assert f"services/{package} /app/{package}" in copied, package
    assert "services/pyproject.toml /app/" in copied
    assert "db/migrations /app/db/migrations" in copied

    env_text = " ".join(args for instruction, args in instructions if instruction == "ENV")
    for setting in ("PYTHONPATH=/app", "MIGRATIONS_DIR=/app/db/migrations",
                    "PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus"):
        assert setting in env_text, setting
    exposed = " ".join(args for instruction, args in instructions if instruction == "EXPOSE").split()
    assert set(exposed) >= {"8001", "8002", "8003", "8004"}
    healthcheck = next(args for instruction, args in instructions if instruction == "HEALTHCHECK")
    assert healthcheck.endswith('CMD ["python", "-m", "healthguard.healthcheck"]')
    assert_non_root_healthchecked(path)


def test_requirements_are_pinned_runtime_only():
    lines = [line.split("#")[0].strip() for line in
             (SERVICES_DIR / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line)
    assert all(re.fullmatch(r"\d+(\.\d+)*", version) for version in pins.values()), pins
    names = {name.lower().replace("_", "-") for name in pins}
    assert {"flask", "gunicorn", "psycopg2-binary", "pika", "prometheus-client"} <= names
    assert not names & {"pytest", "testcontainers", "jsonschema", "ruff"}, "test tools in runtime"


def test_web_ui_dockerfile():
    path = REPO / "web-ui" / "Dockerfile"
    instructions = dockerfile_instructions(path)
    stages = dockerfile_stages(path)
    assert stages[0].startswith("node:20-alpine")
    assert "nginx" in stages[-1] and "alpine" in stages[-1]
    runs = [args for instruction, args in instructions if instruction == "RUN"]
    assert any(run.startswith("npm ci") for run in runs) and "npm run build" in runs
    for instruction, args in instructions:
        if instruction == "COPY" and "--from=" not in args:
            for source in copy_sources(args):
                assert (REPO / "web-ui" / source).exists(), f"web-ui/Dockerfile copies missing {source}"
    copies = [args for instruction, args in instructions if instruction == "COPY"]
    assert "nginx.conf /etc/nginx/conf.d/default.conf" in copies
    # Our main config (workers, connections, a log format without query strings) replaces the
    # base image's, and the header snippet sits next to it, where relative includes are read.
    assert "nginx-main.conf /etc/nginx/nginx.conf" in copies
    assert "security-headers.conf /etc/nginx/security-headers.conf" in copies
    assert_non_root_healthchecked(path)
    healthcheck = next(args for instruction, args in instructions if instruction == "HEALTHCHECK")
    assert "wget" in healthcheck and "8080/health" in healthcheck
    ignored = (REPO / "web-ui" / ".dockerignore").read_text().split()
    assert {"node_modules", "dist"} <= set(ignored)


def test_build_context_leaves_out_local_state():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "web-ui"} <= ignored
