"""Settings (issue 19, item 7): one typed model per service on healthguard.settings' base, read
once at start. A bad value stops the process at start with a message naming the setting and what
it must be; defaults < .env < environment < explicit overrides; .env never enters os.environ."""
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alert_ingestion.settings import AlertIngestionSettings, GatewayCliSettings
from healthguard.audit import AuditSettings
from healthguard.broker import RetryPolicy
from healthguard.migrate import MigrateSettings
from healthguard.settings import PLACEHOLDER, ConfigError, ServiceSettings, WorkerSettings
from incident_management.settings import IncidentManagementSettings
from notification.settings import NotificationSettings
from oncall.settings import AccountsSettings, OnCallSettings
from tests.reach_edges import vapid_key_pair

# What every service requires, and nothing else: each test says what it changes.
REQUIRED = {"DATABASE_URL": "postgresql://healthguard_app@127.0.0.1:9/healthguard",
            "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:9/%2F",
            "SERVICE_TOKEN": "a-service-token-of-32-characters",
            "ONCALL_URL": "http://127.0.0.1:9"}
SHARED = sorted(ServiceSettings.model_fields)
SERVICES = Path(__file__).resolve().parents[1] / "services"


@pytest.fixture(autouse=True)
def no_settings_from_outside(tmp_path, monkeypatch):
    """No .env (a developer's would be read) and no setting in the environment: what each test
    sets is all there is."""
    monkeypatch.chdir(tmp_path)
    for model in (AlertIngestionSettings, IncidentManagementSettings, NotificationSettings,
                  OnCallSettings, WorkerSettings, MigrateSettings, AuditSettings):
        for name in model.model_fields:
            monkeypatch.delenv(name, raising=False)


def refusal(model, **settings) -> str:
    with pytest.raises(ConfigError) as refused:
        model.load({**REQUIRED, **settings})
    return str(refused.value)


# --------------------------------------------------------------------------- bad values, per service
SHARED_BAD = [
    ("DB_POOL_MAX", "eight", "must be a whole number from 1 to 100, got 'eight'"),
    ("DB_POOL_MAX", "0", "must be a whole number from 1 to 100, got '0'"),
    ("DB_POOL_WAIT_SECONDS", "-1", "must be a number of seconds above 0, got '-1'"),
    ("MESSAGE_RETRY_SECONDS", "61", "must be a number of seconds above 0 and at most 60, got '61'"),
    ("MESSAGE_MAX_ATTEMPTS", "1.5", "must be a whole number from 1 to 100, got '1.5'"),
    ("HOSPITAL_TZ", "Europe/Londres", "must be an IANA time zone name (Europe/London), got 'Europe/Londres'"),
    ("TRUSTED_PROXIES", "10.0.0.0/33", "must be comma-separated IP addresses, networks or host names"),
    ("PHI_BREAK_GLASS_REQUIRED", "sometimes", "must be 0 or 1 (true or false), got 'sometimes'"),
    ("SESSION_TTL_HOURS", "0", "must be a number of hours above 0 and at most 720, got '0'"),
    ("LOG_LEVEL", "LOUD", "must be DEBUG, INFO, WARNING or ERROR, got 'LOUD'"),
    ("MAX_CONTENT_LENGTH", "64k", "must be a whole number of bytes from 1 to 1073741824, got '64k'"),
    ("PHI_LOG_RETENTION_YEARS", "0", "must be a whole number of years from 1 to 100, got '0'"),
]
OWN_BAD = {
    AlertIngestionSettings: [
        ("DEVICE_ALERTS_PER_SECOND", "lots", "must be a whole number from 1 to 1000000, got 'lots'"),
        ("HL7_MLLP_PORT", "70000", "must be a whole number from 0 to 65535, got '70000'"),
        ("HL7_IDLE_SECONDS", "0", "must be a whole number of seconds from 1 to 86400, got '0'"),
        ("HL7_DEVICE_NETWORKS", "10.20.0.0/16,ward-4", "must be comma-separated IP addresses or networks "
                                                       "(CIDR), got '10.20.0.0/16,ward-4'"),
        ("HL7_ALLOWLIST_WIDEST_IPV4_PREFIX", "0", "must be a whole number from 8 to 32, got '0'"),
    ],
    IncidentManagementSettings: [
        ("ASSIGNMENT_RETRY_SECONDS", "soon", "must be a number of seconds above 0 and at most 3600"),
        ("ESCALATION_CHECK_SECONDS", "0", "must be a number of seconds above 0 and at most 3600, got '0'"),
        ("CORRELATION_WINDOW_SECONDS", "7200", "must be a number of seconds above 0 and at most 3600"),
    ],
    NotificationSettings: [
        ("WS_PING_SECONDS", "0", "must be a number of seconds above 0, got '0'"),
        ("WS_SOCKETS_PER_SESSION", "0", "must be a whole number from 1 to 1000, got '0'"),
        ("SEND_MAX_TRIES", "21", "must be a whole number from 1 to 20, got '21'"),
        ("ACK_TOKEN_SECONDS", "10", "must be a whole number of seconds from 30 to 86400, got '10'"),
        ("NOTIFY_IDENTIFYING_DATA", "yes please", "must be true or false, got 'yes please'"),
        ("WCTP_ANSWERS", "email", "must be push or poll, got 'email'"),
        ("PUSH_ALLOW_LOCAL_HTTP", "perhaps", "must be 0 or 1 (true or false), got 'perhaps'"),
    ],
    OnCallSettings: [
        ("SESSION_IDLE_MINUTES", "soon", "must be a number of minutes above 0, got 'soon'"),
        ("ONE_TIME_PASSWORD_HOURS", "721", "must be a number of hours above 0 and at most 720, got '721'"),
    ],
}
CASES = [pytest.param(model, name, value, message, id=f"{model.__name__}-{name}-{value}")
         for model, own in OWN_BAD.items() for name, value, message in [*SHARED_BAD, *own]]


@pytest.mark.parametrize(("model", "name", "value", "message"), CASES)
def test_a_bad_value_stops_the_service_with_a_message_naming_the_setting(model, name, value, message):
    assert f"setting {name} {message}" in refusal(model, **{name: value})


@pytest.mark.parametrize(("model", "settings", "message"), [
    (AlertIngestionSettings, {"HL7_MAX_CONNECTIONS": "8", "HL7_RESERVED_CONNECTIONS": "8"},
     "setting HL7_RESERVED_CONNECTIONS (8) must be less than HL7_MAX_CONNECTIONS (8)"),
    (OnCallSettings, {"SESSION_TTL_HOURS": "1", "SESSION_IDLE_MINUTES": "90"},
     "setting SESSION_IDLE_MINUTES must be a number of minutes above 0 and at most the session's "
     "SESSION_TTL_HOURS"),
    (NotificationSettings, {"VAPID_PRIVATE_KEY": "not-a-key", "VAPID_PUBLIC_KEY": "x",
                            "VAPID_SUBJECT": "mailto:a@b"},
     "setting VAPID_PRIVATE_KEY is not a VAPID private key"),
    (NotificationSettings, {"SMTP_URL": "smtp://mail.hospital.example"},
     "setting SMTP_FROM is required with SMTP_URL"),
    (NotificationSettings, {"WCTP_URL": "https://ac.hospital.example/wctp"},
     "setting WCTP_SENDER_ID is required with WCTP_URL"),
    (NotificationSettings, {"WCTP_URL": "https://ac.hospital.example/wctp", "WCTP_SENDER_ID": "hg"},
     "setting WCTP_INBOUND_TOKEN is required with WCTP_ANSWERS=push"),
    (NotificationSettings, {"TWILIO_ACCOUNT_SID": "AC0123"},
     "setting(s) TWILIO_AUTH_TOKEN, TWILIO_FROM required with TWILIO_ACCOUNT_SID"),
], ids=["hl7-reserved", "idle-over-shift", "vapid", "smtp-from", "wctp-sender", "wctp-token", "twilio"])
def test_settings_that_go_together_are_checked_together(model, settings, message):
    assert message in refusal(model, **settings)


def test_every_bad_value_is_named_at_once_and_a_secret_is_never_echoed():
    message = refusal(IncidentManagementSettings, DB_POOL_MAX="x", HOSPITAL_TZ="Nowhere",
                      SERVICE_TOKEN="short-secret")
    assert "setting DB_POOL_MAX must be" in message and "setting HOSPITAL_TZ must be" in message
    short = refusal(OnCallSettings, SERVICE_TOKEN="short-secret")
    assert short == "setting SERVICE_TOKEN must be at least 16 characters (use a random value)"
    assert "not-a-key" not in refusal(NotificationSettings, VAPID_PRIVATE_KEY="not-a-key")


@pytest.mark.parametrize("model", [AlertIngestionSettings, IncidentManagementSettings,
                                   NotificationSettings, OnCallSettings])
def test_required_settings_have_no_default(model):
    with pytest.raises(ConfigError) as refused:
        model.load({"SERVICE_TOKEN": REQUIRED["SERVICE_TOKEN"], "DATABASE_URL": ""})
    missing = "DATABASE_URL, ONCALL_URL, RABBITMQ_URL" if model is IncidentManagementSettings \
        else "DATABASE_URL, RABBITMQ_URL"
    assert str(refused.value) == (f"missing required setting(s): {missing} (set them in the "
                                  "environment or in .env; see .env.example)")


def test_the_placeholder_from_env_example_is_refused_with_the_names_that_hold_it():
    message = refusal(NotificationSettings, SERVICE_TOKEN=PLACEHOLDER, WCTP_INBOUND_TOKEN=PLACEHOLDER)
    assert message == ("setting(s) SERVICE_TOKEN, WCTP_INBOUND_TOKEN still hold the placeholder 'change-me' "
                       "from .env.example: put real values in .env (python3 scripts/make_env.py writes "
                       "random ones)")


# --------------------------------------------------------------------------- defaults and precedence
def test_defaults_are_typed_values():
    settings = NotificationSettings.load(REQUIRED)
    assert settings.HOSPITAL_TZ == ZoneInfo("UTC") and settings.SESSION_TTL_HOURS == 14
    assert (settings.DB_POOL_MAX, settings.DB_POOL_IDLE_SECONDS, settings.DB_POOL_WAIT_SECONDS) == (8, 60, 5)
    policy = RetryPolicy()  # the consumer's own defaults, and its longest wait the setting's maximum
    assert (settings.MESSAGE_MAX_ATTEMPTS, settings.MESSAGE_RETRY_SECONDS) == (policy.max_attempts,
                                                                             policy.first_delay)
    assert "at most 60," in refusal(ServiceSettings, MESSAGE_RETRY_SECONDS="61") and policy.max_delay == 60
    assert settings.MAX_CONTENT_LENGTH == 64 * 1024 and settings.PHI_BREAK_GLASS_REQUIRED is False
    assert settings.WS_PING_SECONDS == 25 and settings.SEND_LEASE_SECONDS == 120
    assert settings.ACK_TOKEN_SECONDS == 900
    assert settings.identifying_data is False and settings.WCTP_ANSWERS == "push"
    oncall = OnCallSettings.load(REQUIRED)
    assert oncall.session_idle == dt.timedelta(minutes=30)
    assert oncall.one_time_password_lifetime == dt.timedelta(hours=24)
    ingestion = AlertIngestionSettings.load({**REQUIRED, "HL7_MAX_CONNECTIONS": "40"})
    assert ingestion.HL7_RESERVED_CONNECTIONS == 10  # a quarter of 40, under the default 16
    assert ingestion.gateway_rules.device_networks == ()
    assert IncidentManagementSettings.load(REQUIRED).CORRELATION_WINDOW_SECONDS == 300


def test_an_empty_value_takes_the_default_but_an_empty_trusted_proxies_trusts_nobody(monkeypatch):
    monkeypatch.setenv("DB_POOL_MAX", "")
    settings = ServiceSettings.load({**REQUIRED, "SESSION_TTL_HOURS": "", "TRUSTED_PROXIES": ""})
    assert settings.DB_POOL_MAX == 8 and settings.SESSION_TTL_HOURS == 14
    assert not settings.TRUSTED_PROXIES.names and not settings.TRUSTED_PROXIES.networks


def test_precedence_is_defaults_then_dotenv_then_environment_then_overrides(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("LOG_LEVEL=DEBUG\nSESSION_TTL_HOURS=3\nDB_POOL_MAX=3\n"
                                   "RABBITMQ_ERLANG_COOKIE=from-the-file\nGRAFANA_ADMIN_PASSWORD=change-me\n"
                                   f"DATABASE_URL={REQUIRED['DATABASE_URL']}\n")
    monkeypatch.setenv("SESSION_TTL_HOURS", "5")
    monkeypatch.setenv("DB_POOL_MAX", "4")
    settings = OnCallSettings.load({"RABBITMQ_URL": REQUIRED["RABBITMQ_URL"],
                                    "SERVICE_TOKEN": REQUIRED["SERVICE_TOKEN"], "DB_POOL_MAX": "6"})
    assert settings.WEB_ORIGIN == "http://localhost:8080"        # default
    assert settings.LOG_LEVEL == "DEBUG"                          # .env over the default
    assert settings.SESSION_TTL_HOURS == 5                        # the environment over .env
    assert settings.DB_POOL_MAX == 6                              # an override over everything
    assert settings.DATABASE_URL == REQUIRED["DATABASE_URL"]      # a required value from .env
    # The file's other lines (another container's password, even the placeholder) are not this
    # service's settings: not refused, not kept. Nothing of the file entered the process's
    # environment, which every subprocess inherits.
    assert not hasattr(settings, "GRAFANA_ADMIN_PASSWORD")
    assert not {"LOG_LEVEL", "RABBITMQ_ERLANG_COOKIE", "DATABASE_URL"} & set(os.environ)


# --------------------------------------------------------------------------- read once, at start
def test_the_app_keeps_its_settings_and_gives_flask_only_its_own_keys():
    from notification.app import create_app
    app = create_app({**REQUIRED, "MAX_CONTENT_LENGTH": "4096", "WS_PING_SECONDS": "7", "TESTING": True})
    try:
        settings = app.extensions["healthguard"].settings
        assert isinstance(settings, NotificationSettings) and settings.WS_PING_SECONDS == 7
        assert app.config["MAX_CONTENT_LENGTH"] == 4096 and app.config["TESTING"] is True
        assert app.config["SOCK_SERVER_OPTIONS"]["ping_interval"] == 7
        assert "WS_PING_SECONDS" not in app.config and "SERVICE_TOKEN" not in app.config
    finally:
        app.extensions["healthguard"].db.close()


def test_a_bad_value_stops_the_worker_at_start_with_the_message_in_its_log(tmp_path):
    env = {**os.environ, **REQUIRED, "HOSPITAL_TZ": "Europe/Londres",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "WORKER_HEARTBEAT_FILE": str(tmp_path / "beat")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SERVICES), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", "healthguard.worker", "oncall"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert ("healthguard worker (oncall): setting HOSPITAL_TZ must be an IANA time zone name "
            "(Europe/London), got 'Europe/Londres'") in result.stderr
    assert "Traceback" not in result.stderr


def test_the_clis_read_their_own_models(monkeypatch, capsys):
    from alert_ingestion import hl7_gateways
    from healthguard import audit, migrate
    from oncall import accounts
    monkeypatch.setenv("HL7_DEVICE_NETWORKS", "10.20.0.0/16,ward-4")
    monkeypatch.setenv("DATABASE_URL", REQUIRED["DATABASE_URL"])
    assert hl7_gateways.main(["list"]) == 2
    assert "setting HL7_DEVICE_NETWORKS must be comma-separated" in capsys.readouterr().err
    monkeypatch.setenv("ONE_TIME_PASSWORD_HOURS", "0")
    assert accounts.main(["reset-password", "--login", "N01"]) == 2
    assert "setting ONE_TIME_PASSWORD_HOURS must be a number of hours" in capsys.readouterr().err
    monkeypatch.setenv("PHI_LOG_RETENTION_YEARS", "ever")
    assert audit.main(["verify"]) == 2
    assert "setting PHI_LOG_RETENTION_YEARS must be a whole number of years" in capsys.readouterr().err
    monkeypatch.delenv("DATABASE_URL")
    assert migrate.main([]) == 2
    assert "missing required setting MIGRATION_DATABASE_URL (or DATABASE_URL)" in capsys.readouterr().err
    assert GatewayCliSettings.model_fields.keys() >= {"DATABASE_URL", "HL7_DEVICE_NETWORKS"}
    accounts_settings = AccountsSettings.load({"DATABASE_URL": REQUIRED["DATABASE_URL"],
                                               "ONE_TIME_PASSWORD_HOURS": "8"})
    assert accounts_settings.one_time_password_lifetime == dt.timedelta(hours=8)


def test_a_real_vapid_key_pair_is_accepted():
    private, public = vapid_key_pair()
    settings = NotificationSettings.load({**REQUIRED, "VAPID_PRIVATE_KEY": private,
                                          "VAPID_PUBLIC_KEY": public,
                                          "VAPID_SUBJECT": "mailto:ops@hospital.example"})
    assert settings.VAPID_PUBLIC_KEY == public


def test_every_service_model_shares_the_base():
    for model in (AlertIngestionSettings, IncidentManagementSettings, NotificationSettings, OnCallSettings):
        assert issubclass(model, ServiceSettings) and set(SHARED) <= set(model.model_fields)
