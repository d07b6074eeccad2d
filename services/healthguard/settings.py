"""Settings: one typed model per service on a shared base, read once at start.

Required values have no default in code: a service that lacks one stops at start with a message
naming it. Development values live in `.env.example`. Precedence: defaults < .env < environment <
explicit overrides (the app factory's `config` dict, as tests pass it). A local `.env` is read into
the settings only: the process's environment is left as it was, so nothing this process starts
(a test's subprocess, a CLI) inherits the file's secrets or its database URLs.

A bad value (not a number, out of range, an unknown time zone, a malformed network...) stops the
process at start with a ConfigError naming the setting and what it must be: a person reads it in
`docker compose logs`, so pydantic's ValidationError is turned into one plain sentence.
"""
import ipaddress
import math
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import find_dotenv
from pydantic import PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; raised at start-up, never per request."""


# The value .env.example gives every secret; a service refuses to start with it.
PLACEHOLDER = "change-me"


# --------------------------------------------------------------------------- kinds of value
def _rule(what: str, convert):
    """A setting's type: `convert` takes the text (or a value already typed) and answers the
    value, or None when it is not one; `what` completes "setting X must be ...". None passes:
    a setting whose default is None is optional."""
    def check(value):
        if value is None:
            return None
        try:
            result = convert(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, ArithmeticError):
            result = None
        if result is None:
            raise PydanticCustomError("setting", what)
        return result
    return PlainValidator(check)


def _number_within(above: float, at_most: float):
    def convert(value) -> float | None:
        number = float(value)
        return number if math.isfinite(number) and above < number <= at_most else None
    return convert


def Seconds(at_most: float | None = None):  # noqa: N802 - reads as a type
    """A number of seconds above 0 (fractions allowed), at most `at_most` when given: the one
    definition every interval, timeout and window uses."""
    what = "a number of seconds above 0" + (f" and at most {at_most:g}" if at_most else "")
    return Annotated[float, _rule(what, _number_within(0, at_most or math.inf))]


def Hours(at_most: float):  # noqa: N802
    return Annotated[float, _rule(f"a number of hours above 0 and at most {at_most:g}",
                                  _number_within(0, at_most))]


def Minutes():  # noqa: N802
    return Annotated[float, _rule("a number of minutes above 0", _number_within(0, math.inf))]


def _whole(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def Whole(low: int, high: int, unit: str = ""):  # noqa: N802
    """A whole number within [low, high] (`unit`: "of seconds", "of years"...)."""
    what = f"a whole number{' ' + unit if unit else ''} from {low} to {high}"

    def convert(value) -> int | None:
        number = _whole(value)
        return number if number is not None and low <= number <= high else None
    return Annotated[int, _rule(what, convert)]


def _flag(value) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(
        str(value).lower())


Flag = Annotated[bool, _rule("0 or 1 (true or false)", _flag)]


def Choice(*choices: str):  # noqa: N802
    return Annotated[str, _rule(" or ".join(choices),
                                lambda v: v.lower() if str(v).lower() in choices else None)]


def _zone(value) -> ZoneInfo | None:
    if isinstance(value, ZoneInfo):
        return value
    try:
        return ZoneInfo(value)
    except ZoneInfoNotFoundError:
        return None


TimeZone = Annotated[Any, _rule("an IANA time zone name (Europe/London)", _zone)]


def _networks(value) -> tuple:
    if isinstance(value, tuple):
        return value
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in str(value).split(",") if part.strip())


Networks = Annotated[Any, _rule("comma-separated IP addresses or networks (CIDR)", _networks)]


def _proxies(value):
    from .addresses import TrustedProxies, trusted_proxies  # addresses imports ConfigError from here
    if isinstance(value, TrustedProxies):
        return value
    try:
        return trusted_proxies(value)
    except ConfigError:
        return None


Proxies = Annotated[Any, _rule("comma-separated IP addresses, networks or host names", _proxies)]


def _level(value) -> str | None:
    level = str(value).upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else None


LogLevel = Annotated[str, _rule("DEBUG, INFO, WARNING or ERROR", _level)]
Port = Whole(1, 65535)


# --------------------------------------------------------------------------- the base
class Settings(BaseSettings):
    """Reading and checking settings; no fields. Build one with `load()`."""
    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore",
                                      validate_default=True, arbitrary_types_allowed=True, frozen=True)

    # Settings where "" is a value of its own, not "unset" (TRUSTED_PROXIES= trusts nobody).
    BLANK_IS_A_VALUE: ClassVar[frozenset] = frozenset({"TRUSTED_PROXIES"})

    @classmethod
    def load(cls, overrides=None):
        """The settings: defaults < .env < environment < `overrides`; ConfigError when one is
        missing or malformed."""
        path = find_dotenv(usecwd=True)
        try:
            return cls(_env_file=path or None, **dict(overrides or {}))
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _refuse_placeholders_and_blanks(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # Only this model's settings: .env also holds other containers' (Grafana's password...).
        placeholders = sorted(name for name, value in data.items()
                              if value == PLACEHOLDER and name in cls.model_fields)
        if placeholders:
            raise ConfigError("setting(s) " + ", ".join(placeholders) + f" still hold the placeholder "
                              f"{PLACEHOLDER!r} from .env.example: put real values in .env "
                              "(python3 scripts/make_env.py writes random ones)")
        # An empty value is no value: a required setting is missing, another takes its default.
        return {name: value for name, value in data.items()
                if value != "" or name in cls.BLANK_IS_A_VALUE or name not in cls.model_fields}


def _is_secret(name: str) -> bool:
    """Secrets (and URLs, which may hold a password) are named, never echoed into a log."""
    return name.endswith(("_TOKEN", "_KEY", "_KEYS", "_PASSWORD", "_SECRET", "_CODE", "_URL"))


def describe(exc: ValidationError) -> str:
    """One sentence per bad setting: its name, what it must be, and (unless a secret) its value."""
    missing = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing")
    parts = []
    if missing:
        parts.append("missing required setting(s): " + ", ".join(missing)
                     + " (set them in the environment or in .env; see .env.example)")
    for error in exc.errors():
        if error["type"] == "missing":
            continue
        name = str(error["loc"][0]) if error["loc"] else "?"
        what = error["msg"] if error["type"] == "setting" else f"valid ({error['msg']})"
        got = "" if _is_secret(name) else f", got {error['input']!r}"
        parts.append(f"setting {name} must be {what}{got}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- what is shared
class DatabaseSettings(Settings):
    """What a command that only talks to the database needs (the CLIs)."""
    DATABASE_URL: str


class PhiLogSettings(Settings):
    """Years the PHI access log is kept before `python -m healthguard.audit retention` drops a month."""
    PHI_LOG_RETENTION_YEARS: Whole(1, 100, "of years") = 6


class MigrationSettings(Settings):
    """The schema owner's connection (the migrator, the audit CLI): MIGRATION_DATABASE_URL, else
    DATABASE_URL."""
    DATABASE_URL: str | None = None
    MIGRATION_DATABASE_URL: str | None = None

    @model_validator(mode="after")
    def _owner_url_given(self):
        if not self.owner_url:
            raise ConfigError("missing required setting MIGRATION_DATABASE_URL (or DATABASE_URL): "
                              "the schema owner's URL (set it in the environment or in .env)")
        return self

    @property
    def owner_url(self) -> str | None:
        return self.MIGRATION_DATABASE_URL or self.DATABASE_URL


class WorkerSettings(Settings):
    """The worker process's own (`python -m healthguard.worker`): its metrics listener."""
    WORKER_METRICS_PORT: Port = None
    WORKER_METRICS_ADDRESS: str = "0.0.0.0"  # noqa: S104 - a pod's own port


class ServiceSettings(DatabaseSettings, PhiLogSettings):
    """The settings every service shares; each service's model adds its own."""
    RABBITMQ_URL: str
    # Credential the services present to each other.
    SERVICE_TOKEN: str
    LOG_LEVEL: LogLevel = "INFO"
    # The only origin allowed by CORS; also where links in emails and pushes point.
    WEB_ORIGIN: str = "http://localhost:8080"
    HOSPITAL_TZ: TimeZone = "UTC"
    # A shift of 12 hours plus the handovers either side (issue 20: 12 h ended mid-handover).
    SESSION_TTL_HOURS: Hours(720) = 14
    MAX_CONTENT_LENGTH: Whole(1, 1 << 30, "of bytes") = 64 * 1024
    # Bootstrap device keys (the demo profile, the simulator), comma-separated.
    DEVICE_API_KEYS: str = ""
    # The process's share of the database's connections (README, "Connection budget").
    DB_POOL_MAX: Whole(1, 100) = 8
    DB_POOL_IDLE_SECONDS: Seconds() = 60
    DB_POOL_WAIT_SECONDS: Seconds() = 5
    # A queue consumer's retries: broker.RetryPolicy's defaults, and the first wait at most its
    # max_delay (60 s). Not imported from there: this module loads in gunicorn's master, before
    # the metrics directory exists, and the broker's metrics must not be created there.
    MESSAGE_MAX_ATTEMPTS: Whole(1, 100) = 10
    MESSAGE_RETRY_SECONDS: Seconds(at_most=60) = 1
    # The reverse proxies whose X-Real-IP header names the client; "" trusts none.
    TRUSTED_PROXIES: Proxies = ""
    PHI_BREAK_GLASS_REQUIRED: Flag = False

    @model_validator(mode="after")
    def _service_token_is_long(self):
        if len(self.SERVICE_TOKEN) < 16:
            raise ConfigError("setting SERVICE_TOKEN must be at least 16 characters (use a random value)")
        return self

    @property
    def device_api_keys(self) -> tuple[str, ...]:
        return tuple(key.strip() for key in self.DEVICE_API_KEYS.split(",") if key.strip())
