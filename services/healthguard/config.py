"""Configuration from the environment.

Required values have no default in code: a service that lacks one stops at start with a message
naming it. Development values live in `.env.example`; a local `.env` is read with python-dotenv,
into the settings only: the process's environment is left as it was, so nothing this process
starts (a test's subprocess, a CLI) inherits the file's secrets or its database URLs.
"""
import ipaddress
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values, find_dotenv


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; raised at start-up, never per request."""


# The value .env.example gives every secret; a service refuses to start with it.
PLACEHOLDER = "change-me"

# Settings every service needs. Each service adds its own to `required`.
COMMON_REQUIRED = ("DATABASE_URL", "RABBITMQ_URL", "SERVICE_TOKEN")

DEFAULTS = {
    "LOG_LEVEL": "INFO",
    "WEB_ORIGIN": "http://localhost:8080",
    "HOSPITAL_TZ": "UTC",
    # A shift of 12 hours plus the handovers either side (issue 20: 12 h ended mid-handover).
    "SESSION_TTL_HOURS": "14",
    "MAX_CONTENT_LENGTH": str(64 * 1024),
}


def load_config(overrides=None, *, required=(), optional=()) -> dict:
    """Return the settings: defaults < .env < environment < explicit overrides."""
    path = find_dotenv(usecwd=True)
    from_file = dotenv_values(path) if path else {}
    overrides = dict(overrides or {})
    names = set(DEFAULTS) | set(required) | set(optional) | set(overrides)
    config = dict(DEFAULTS)
    for name in names:
        # Set in the environment, even to nothing, the file does not fill it (python-dotenv's rule).
        value = os.environ[name] if name in os.environ else from_file.get(name)
        if value:
            config[name] = value
    config.update(overrides)
    placeholders = sorted(name for name, value in config.items() if value == PLACEHOLDER)
    if placeholders:
        raise ConfigError("setting(s) " + ", ".join(placeholders) + f" still hold the placeholder "
                          f"{PLACEHOLDER!r} from .env.example: put real values in .env "
                          "(python3 scripts/make_env.py writes random ones)")
    missing = [name for name in required if not config.get(name)]
    if missing:
        raise ConfigError(
            "missing required setting(s): " + ", ".join(sorted(missing))
            + " (set them in the environment or in .env; see .env.example)"
        )
    token = config.get("SERVICE_TOKEN")
    if token is not None and len(token) < 16:
        raise ConfigError("setting SERVICE_TOKEN must be at least 16 characters (use a random value)")
    return config


def env_int(config: dict, name: str) -> int:
    try:
        return int(config[name])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name} must be an integer, got {config.get(name)!r}") from exc


def hospital_tz(config: dict) -> ZoneInfo:
    """HOSPITAL_TZ as a zone: the hospital's local time (shifts, days of the metrics)."""
    try:
        return ZoneInfo(config["HOSPITAL_TZ"])
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"setting HOSPITAL_TZ must be an IANA time zone name, got "
                          f"{config['HOSPITAL_TZ']!r}") from exc


def env_int_between(config: dict, name: str, default: int, low: int, high: int) -> int:
    """An optional integer setting within [low, high]: its default when unset or empty,
    ConfigError at start when it is not an integer or out of range."""
    raw = config.get(name)
    try:
        value = int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"setting {name} must be an integer from {low} to {high}, got {raw!r}")
    return value


def env_networks(config: dict, name: str) -> tuple:
    """A setting naming IP networks, comma-separated ("10.20.0.0/16,fd00:20::/64"), as
    ipaddress networks; () when unset or empty, ConfigError at start when one is malformed."""
    text = config.get(name) or ""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"setting {name} must be comma-separated IP addresses or networks "
                          f"(CIDR), got {text!r}") from exc
