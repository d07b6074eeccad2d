"""The on-call service's settings (healthguard.settings), and the accounts CLI's."""
import datetime as dt

from pydantic import model_validator

from healthguard.settings import ConfigError, DatabaseSettings, Hours, Minutes, ServiceSettings, Settings


class OneTimePasswordSettings(Settings):
    # How long a one-time password works (the service and `python -m oncall.accounts`).
    ONE_TIME_PASSWORD_HOURS: Hours(720) = 24

    @property
    def one_time_password_lifetime(self) -> dt.timedelta:
        return dt.timedelta(hours=self.ONE_TIME_PASSWORD_HOURS)


class AccountsSettings(DatabaseSettings, OneTimePasswordSettings):
    """`python -m oncall.accounts`: the database and the one-time password's lifetime."""


class OnCallSettings(ServiceSettings, OneTimePasswordSettings):
    # A browser session (the web UI's) ends after this long without a request from any of its
    # tabs: a workstation left with the browser closed, not a console left open (its pages keep
    # it alive).
    SESSION_IDLE_MINUTES: Minutes() = 30

    @model_validator(mode="after")
    def _idle_within_the_session(self):
        if self.SESSION_IDLE_MINUTES > self.SESSION_TTL_HOURS * 60:
            raise ConfigError("setting SESSION_IDLE_MINUTES must be a number of minutes above 0 and at "
                              f"most the session's SESSION_TTL_HOURS, got {self.SESSION_IDLE_MINUTES:g}")
        return self

    @property
    def session_idle(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.SESSION_IDLE_MINUTES)
