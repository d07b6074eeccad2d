"""The ward console's preferences kept by the notification service: a clinician's "Not now" to
the prompt for system notifications holds for a week on the server's clock, for that clinician
only; the hospital's time zone is public (the status page needs it before sign-in)."""
import datetime as dt

import pytest

from tests.conftest import HOSPITAL_TZ

APP_SERVICE = "notification"  # the in-process `app` (conftest)


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def asked(client, token) -> bool:
    answer = client.get("/api/v1/preferences/me", headers=bearer(token))
    assert answer.status_code == 200, answer.json
    return answer.json["background_alerts_prompt"]["show"]


def test_not_now_hides_the_prompt_for_a_week_for_that_clinician_only(client, login_as, clock):
    d01, d02 = login_as("D01", expires_in="30 days"), login_as("D02")
    first = client.get("/api/v1/preferences/me", headers=bearer(d01))
    assert first.status_code == 200, first.json
    assert first.json == {"background_alerts_prompt": {"show": True, "not_now_until": None}}

    answered = client.post("/api/v1/preferences/me/background-alerts-not-now", headers=bearer(d01))
    assert answered.status_code == 200, answered.json
    until = dt.datetime.fromisoformat(answered.json["background_alerts_prompt"]["not_now_until"])
    # A week on the server's clock (the test clock runs on: allow the seconds this test takes).
    assert abs(until - (clock.now() + dt.timedelta(days=7))) < dt.timedelta(seconds=30)
    assert asked(client, d01) is False
    # Another clinician is still asked.
    assert asked(client, d02) is True

    clock.advance(6 * 86400)
    assert asked(client, d01) is False
    clock.advance(86400 + 1)
    assert asked(client, d01) is True


def test_a_clinicians_preferences_need_a_clinicians_session(client, service_env):
    assert client.get("/api/v1/preferences/me").status_code == 401
    service = {"Authorization": f"Bearer {service_env['SERVICE_TOKEN']}"}
    refused = client.post("/api/v1/preferences/me/background-alerts-not-now", headers=service)
    assert refused.status_code == 403 and refused.json["error"] == "Forbidden"


def test_the_hospitals_time_zone_is_public(client):
    answer = client.get("/api/v1/preferences/hospital")
    assert answer.status_code == 200
    assert answer.json == {"timezone": HOSPITAL_TZ.key}
