"""Renders the shipped nginx and Prometheus configs for processes on this machine instead of the
compose network: the same files, with the container names replaced by loopback ports. Used by the
local runner (`make up`) and by the tests, so both exercise the files the containers use.

    python -m scripts.local_config RUN_DIR   (ports from the environment, as in the Procfile)
"""
import os
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NGINX_CONF = REPO / "web-ui" / "nginx.conf"
NGINX_MAIN_CONF = REPO / "web-ui" / "nginx-main.conf"
NGINX_SNIPPETS = (REPO / "web-ui" / "security-headers.conf", REPO / "web-ui" / "json-errors.conf")
# Rendered by the image's entrypoint (envsubst of /etc/nginx/templates into conf.d), here by us.
NGINX_ORIGIN_TEMPLATE = REPO / "web-ui" / "web-origin.conf.template"
PROMETHEUS_CONF = REPO / "prometheus" / "prometheus.yml"

# The services as compose names them, with their container ports.
COMPOSE_SERVICES = {"alert-ingestion": 8001, "incident-management": 8002, "oncall": 8003,
                    "notification": 8004}


def _replaced(text: str, replacements: dict[str, str], name: str) -> str:
    for old, new in replacements.items():
        if text.count(old) != 1:
            raise ValueError(f"{name} should contain {old!r} exactly once")
        text = text.replace(old, new)
    return text


def render_nginx(directory: Path, *, listen: int | None = None, ports: dict[str, int] | None = None,
                 html_root: Path | None = None, web_origin: str | None = None) -> Path:
    """Write nginx.conf in `directory`: the image's main config (web-ui/nginx-main.conf) including
    web-ui/nginx.conf and its snippets, with paths (pid, logs, temp files) in `directory`; given
    them, listening on 127.0.0.1:`listen`, serving `html_root` and proxying to the services on
    `ports` (otherwise as shipped, for the compose network). `web_origin` is the WEB_ORIGIN the
    image's entrypoint would substitute (by default $WEB_ORIGIN, else http://localhost:<listen>)."""
    directory.mkdir(parents=True, exist_ok=True)
    replacements = {}
    if listen is not None:
        replacements["listen 8080;"] = f"listen 127.0.0.1:{listen};"
    if html_root is not None:
        replacements["root /usr/share/nginx/html;"] = f"root {html_root};"
    for service, port in COMPOSE_SERVICES.items() if ports else ():
        replacements[f"http://{service}:{port}"] = f"http://127.0.0.1:{ports[service]}"
    server_conf = directory / "default.conf"
    server_conf.write_text(_replaced(NGINX_CONF.read_text(), replacements, "web-ui/nginx.conf"))
    # Relative includes are read next to the main config, in the image as here.
    for snippet in NGINX_SNIPPETS:
        (directory / snippet.name).write_text(snippet.read_text())
    web_origin = web_origin or os.environ.get("WEB_ORIGIN") or f"http://localhost:{listen or 8080}"
    origin_conf = directory / "web-origin.conf"
    origin_conf.write_text(_replaced(NGINX_ORIGIN_TEMPLATE.read_text(), {"${WEB_ORIGIN}": web_origin},
                                     NGINX_ORIGIN_TEMPLATE.name))
    # The main log for the process, and the same file for requests' errors (at `crit`).
    main_text = NGINX_MAIN_CONF.read_text().replace("/var/log/nginx/error.log", f"{directory}/error.log")
    main = _replaced(main_text, {
        "pid /tmp/nginx.pid;": f"daemon off;\nmaster_process off;\npid {directory}/nginx.pid;",
        "/var/log/nginx/access.log": f"{directory}/access.log",
        # The image's temp paths (in its /tmp, the unprivileged user's), here in `directory`.
        **{f"/tmp/{kind}_temp": f"{directory}/{kind}"  # noqa: S108
           for kind in ("proxy", "client", "fastcgi", "uwsgi", "scgi")},
        "include /etc/nginx/conf.d/*.conf;": f"include {origin_conf};\n    include {server_conf};",
    }, "web-ui/nginx-main.conf")
    wrapper = directory / "nginx.conf"
    wrapper.write_text(main)
    return wrapper


def render_prometheus(directory: Path, *, listen: int, ports: dict[str, int],
                      interval: str | None = None) -> Path:
    """Write prometheus.yml (and its rules) in `directory`, scraping the services on `ports`
    and Prometheus itself on `listen`."""
    directory.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(PROMETHEUS_CONF.read_text())
    if interval:
        config["global"].update(scrape_interval=interval, evaluation_interval=interval,
                                scrape_timeout=interval)
    targets = {**{name: f"127.0.0.1:{port}" for name, port in ports.items()},
               "prometheus": f"127.0.0.1:{listen}"}
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    for rule_file in config.get("rule_files", []):
        (directory / rule_file).write_text((PROMETHEUS_CONF.parent / rule_file).read_text())
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def local_ports() -> dict[str, int]:
    """The services' ports as the Procfile sets them."""
    return {name: int(os.environ.get(name.upper().replace("-", "_") + "_PORT", default))
            for name, default in COMPOSE_SERVICES.items()}


def main(run_dir: str) -> int:
    run = Path(run_dir).resolve()
    ports = local_ports()
    render_nginx(run / "nginx", listen=int(os.environ.get("WEB_UI_PORT", 8080)), ports=ports,
                 html_root=REPO / "web-ui" / "dist")
    render_prometheus(run / "prometheus", listen=int(os.environ.get("PROMETHEUS_PORT", 9090)),
                      ports=ports)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
