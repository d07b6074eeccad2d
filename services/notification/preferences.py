"""Preferences of the ward console, kept by the server: a clinician's own (the prompt for system
notifications, answered "Not now", stays away for a week in every tab and on every workstation),
and the hospital's that the public pages need before anyone signs in (its time zone, for the
status page's times).

The week is counted on the server's clock, not the browser's: a workstation with a wrong clock
neither hides the prompt for ever nor shows it again the next minute."""
import datetime

from flask import Blueprint

from healthguard import clock
from healthguard.api import PUBLIC, responses
from healthguard.auth import clinician_only, current_clinician, public
from healthguard.web import platform

from .schemas import HospitalPreferences, MyPreferences, api

NOT_NOW = datetime.timedelta(days=7)

preferences = Blueprint("preferences", __name__, url_prefix="/api/v1/preferences")


def my_preferences(*, cur, employee_id: str, now: datetime.datetime) -> dict:
    cur.execute("SELECT background_alerts_not_now_until FROM clinician_preferences WHERE employee_id = %s",
                (employee_id,))
    row = cur.fetchone()
    until = row["background_alerts_not_now_until"] if row else None
    return {"background_alerts_prompt": {"show": until is None or until <= now,
                                         "not_now_until": until.isoformat() if until else None}}


def not_now_to_background_alerts(*, cur, employee_id: str, now: datetime.datetime) -> None:
    cur.execute("""
        INSERT INTO clinician_preferences (employee_id, background_alerts_not_now_until, updated_at)
        VALUES (%(employee_id)s, %(until)s, %(now)s)
        ON CONFLICT (employee_id) DO UPDATE
        SET background_alerts_not_now_until = EXCLUDED.background_alerts_not_now_until,
            updated_at = EXCLUDED.updated_at""",
                {"employee_id": employee_id, "until": now + NOT_NOW, "now": now})


@preferences.get("/me")
@clinician_only
@api.validate(resp=responses({200: MyPreferences}, (403,)))
def get_my_preferences():
    """The caller's own console preferences

    `background_alerts_prompt.show`: whether to ask for system notifications now (never answered,
    or "Not now" a week ago or more). 403: the service token is not a clinician."""
    with platform().db.transaction() as cur:
        return my_preferences(cur=cur, employee_id=current_clinician().employee_id, now=clock.now())


@preferences.post("/me/background-alerts-not-now")
@clinician_only
@api.validate(resp=responses({200: MyPreferences}, (403,)))
def answer_not_now_to_background_alerts():
    """"Not now" to the prompt for system notifications: not asked again for a week

    Answers the caller's preferences as they are now."""
    now = clock.now()
    me = current_clinician().employee_id
    with platform().db.transaction() as cur:
        not_now_to_background_alerts(cur=cur, employee_id=me, now=now)
        return my_preferences(cur=cur, employee_id=me, now=now)


@preferences.get("/hospital")
@public  # the status page shows its times in the hospital's zone before anyone signs in
@api.validate(security=PUBLIC, resp=responses({200: HospitalPreferences}, (), public_route=True))
def get_hospital_preferences():
    """The hospital's display settings: its time zone (HOSPITAL_TZ)

    Every time in the web UI is shown in this zone, on a 24-hour clock."""
    return {"timezone": platform().settings.HOSPITAL_TZ.key}
