"""On-call: rotations in the hospital's time zone (across clock changes), overrides, who is on
duty now, who can take an incident (signed in, not away, least busy first), schedules, employees."""
import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import requests

from oncall.schedule import Duty, Override, Rotation, Shift, compute_duties, load_duties, on_duty_at

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC


pytestmark = pytest.mark.module_database  # one on-call service for the module


@pytest.fixture(scope="module")
def oncall(start_module_service):
    """The on-call service under gunicorn, shared by this module's tests."""
    return start_module_service("oncall")


@pytest.fixture
def api(oncall, login_as, clock):
    """Calls to the on-call service as a given clinician (or the service token), at a known hour
    of the rota (who is on duty never changes under a test)."""
    clock.pin_rota()

    class Api:
        def __init__(self):
            self.tokens = {}

        def token(self, who):
            if who not in self.tokens:
                self.tokens[who] = login_as(who)
            return self.tokens[who]

        def call(self, method, path, *, who="N02", token=None, headers=None, **kwargs):
            headers = {"Authorization": f"Bearer {token or self.token(who)}", **(headers or {})}
            return requests.request(method, oncall.url + path, headers=headers, timeout=10, **kwargs)

    return Api()


# --- The contract with the incident service -----------------------------------------------------

def test_available_orders_least_busy_then_longest_idle(api, db, login_as, make_incident):
    # Specialists are on call around the clock, so these four are on duty whenever the test runs.
    for who in ("S01", "S02", "S05", "S06"):
        api.token(who)
    make_incident(assigned_to="S01")
    make_incident(assigned_to="S01", status="IN_PROGRESS")
    make_incident(assigned_to="S01", status="RESOLVED")
    make_incident(assigned_to="S02", status="ACKNOWLEDGED")
    make_incident(assigned_to="S05", status="RESOLVED", assigned_ago="10 minutes")
    make_incident(assigned_to="S06", status="RESOLVED", assigned_ago="2 hours")

    response = api.call("GET", "/api/v1/oncall/available?roles=CARDIOLOGIST,NEUROLOGIST", who="D01")
    assert response.status_code == 200, response.text
    clinicians = response.json()["clinicians"]
    # Workload counts only unresolved incidents; among the idle, the longest idle comes first.
    assert [(c["employee_id"], c["active_incidents"]) for c in clinicians] == [
        ("S06", 0), ("S05", 0), ("S02", 1), ("S01", 2)]
    assert set(clinicians[0]) == {"employee_id", "name", "role", "tier", "active_incidents",
                                  "last_assigned_at"}
    assert clinicians[0]["role"] == "NEUROLOGIST" and clinicians[0]["tier"] == 3
    assert dt.datetime.fromisoformat(clinicians[0]["last_assigned_at"]).tzinfo is not None


def test_available_never_assigned_first_and_with_service_token(api, service_env, db, make_incident):
    api.token("S01")
    api.token("S02")
    make_incident(assigned_to="S01", status="RESOLVED")
    response = api.call("GET", "/api/v1/oncall/available?roles=CARDIOLOGIST",
                        token=service_env["SERVICE_TOKEN"])
    assert response.status_code == 200
    assert [(c["employee_id"], c["last_assigned_at"] is None)
            for c in response.json()["clinicians"]] == [("S02", True), ("S01", False)]


def test_available_excludes_signed_out_and_away_clinicians(api, login_as):
    for who in ("S01", "S02", "S05"):
        api.token(who)
    away = api.call("PATCH", "/api/v1/employees/me/availability", who="S02", json={"availability": "AWAY"})
    assert away.status_code == 200 and away.json()["availability"] == "AWAY"
    assert api.call("POST", "/api/v1/auth/logout", who="S05").status_code == 204

    response = api.call("GET", "/api/v1/oncall/available?roles=CARDIOLOGIST,NEUROLOGIST", who="D01")
    ids = [c["employee_id"] for c in response.json()["clinicians"]]
    assert ids == ["S01"]  # S02 away, S05 signed out, S06 not signed in

    # A session that ran out without a logout signs the clinician out just the same.
    login_as("S06", expires_in="-1 minute")
    ids = [c["employee_id"] for c in api.call(
        "GET", "/api/v1/oncall/available?roles=NEUROLOGIST", who="D01").json()["clinicians"]]
    assert ids == []

    back = api.call("PATCH", "/api/v1/employees/me/availability", who="S02",
                    json={"availability": "AVAILABLE"})
    assert back.status_code == 200
    ids = [c["employee_id"] for c in api.call(
        "GET", "/api/v1/oncall/available?roles=CARDIOLOGIST", who="D01").json()["clinicians"]]
    assert ids == ["S01", "S02"]


def test_available_without_roles_means_any_role_on_duty(api, db, clock):
    for who in ("S01", "S09", "S12"):
        api.token(who)
    ids = {c["employee_id"] for c in api.call("GET", "/api/v1/oncall/available").json()["clinicians"]}
    assert {"S01", "S09", "S12"} <= ids
    with db.transaction() as cur:
        on_duty = on_duty_at(cur, tz=LONDON, at=clock.now())
    assert ids <= set(on_duty)  # nobody off duty, whoever else the test signed in


def test_available_rejects_unknown_role(api):
    response = api.call("GET", "/api/v1/oncall/available?roles=CARDIOLOGIST,WIZARD")
    assert response.status_code == 422  # roles are the hospital's data: an unknown one is a 422
    assert "WIZARD" in response.json()["message"] and response.json()["field"] == "roles"


# --- Rotations in hospital time, across clock changes -------------------------------------------

def london(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON)


def duties_between(db, start, end, role=None):
    with db.transaction() as cur:
        duties = load_duties(cur, tz=LONDON, start=start, end=end)
    return [d for d in duties if role is None or d.role == role]


def shift_of(duties, employee_id, local_day):
    """The shift an employee starts on a local day, as local ISO strings with offsets."""
    (duty,) = [d for d in duties if d.employee_id == employee_id
               and d.starts_at.astimezone(LONDON).date() == dt.date.fromisoformat(local_day)]
    return duty.shift_code, duty.starts_at.astimezone(LONDON).isoformat(), \
        duty.ends_at.astimezone(LONDON).isoformat()


def assert_covered_without_gaps(duties, start, end):
    edge = start
    for duty in sorted(duties, key=lambda d: d.starts_at):
        assert duty.starts_at <= edge, f"nobody on duty from {edge} to {duty.starts_at}"
        edge = max(edge, duty.ends_at)
    assert edge >= end


def test_shifts_keep_local_times_across_the_spring_clock_change(db):
    # Europe/London goes from GMT to BST at 01:00 on Sunday 29 March 2026.
    start, end = london("2026-03-27T00:00"), london("2026-04-01T00:00")
    nurses = duties_between(db, start, end, "NURSE")
    # Week of 23 March: N03 works days, N01 nights, N05 evenings; the 08:00 shift stays 08:00.
    assert shift_of(nurses, "N03", "2026-03-28") == (
        "DAY", "2026-03-28T08:00:00+00:00", "2026-03-28T16:00:00+00:00")
    assert shift_of(nurses, "N03", "2026-03-29") == (
        "DAY", "2026-03-29T08:00:00+01:00", "2026-03-29T16:00:00+01:00")
    # The night that loses an hour is 7 hours long; '24:00' ends at the next local midnight.
    code, starts, ends = shift_of(nurses, "N01", "2026-03-29")
    assert (code, starts, ends) == ("NIGHT", "2026-03-29T00:00:00+00:00", "2026-03-29T08:00:00+01:00")
    assert dt.datetime.fromisoformat(ends) - dt.datetime.fromisoformat(starts) == dt.timedelta(hours=7)
    assert shift_of(nurses, "N05", "2026-03-29") == (
        "EVENING", "2026-03-29T16:00:00+01:00", "2026-03-30T00:00:00+01:00")
    # Monday 30 March starts a new week: the rotation moves everyone on.
    assert shift_of(nurses, "N01", "2026-03-30")[0] == "DAY"
    assert shift_of(nurses, "N03", "2026-03-30")[0] == "EVENING"
    assert shift_of(nurses, "N05", "2026-03-30")[0] == "NIGHT"
    # A shift that ends before it starts ends the next day: 20:00 to 08:00, 11 hours this night.
    doctors = duties_between(db, start, end, "EMERGENCY_DOCTOR")
    night = [d for d in doctors if d.shift_code == "NIGHT12"
             and d.starts_at.astimezone(LONDON).date() == dt.date(2026, 3, 28)]
    assert {d.ends_at.astimezone(LONDON).isoformat() for d in night} == {"2026-03-29T08:00:00+01:00"}
    assert night[0].ends_at - night[0].starts_at == dt.timedelta(hours=11)
    for role in ("NURSE", "EMERGENCY_DOCTOR", "CARDIOLOGIST"):
        assert_covered_without_gaps(duties_between(db, start, end, role), start, end)


def test_shifts_keep_local_times_across_the_autumn_clock_change(db):
    # BST ends at 02:00 on Sunday 25 October 2026: that night is 9 hours long.
    start, end = london("2026-10-23T00:00"), london("2026-10-28T00:00")
    nurses = duties_between(db, start, end, "NURSE")
    day_before = [d for d in nurses if d.shift_code == "DAY"
                  and d.starts_at.astimezone(LONDON).date() == dt.date(2026, 10, 24)]
    day_after = [d for d in nurses if d.shift_code == "DAY"
                 and d.starts_at.astimezone(LONDON).date() == dt.date(2026, 10, 25)]
    assert {d.starts_at.astimezone(LONDON).isoformat() for d in day_before} == {"2026-10-24T08:00:00+01:00"}
    assert {d.starts_at.astimezone(LONDON).isoformat() for d in day_after} == {"2026-10-25T08:00:00+00:00"}
    assert {d.starts_at.astimezone(UTC).hour for d in day_before + day_after} == {7, 8}
    (night,) = {(d.starts_at, d.ends_at) for d in nurses if d.shift_code == "NIGHT"
                and d.starts_at.astimezone(LONDON).date() == dt.date(2026, 10, 25)}
    assert night[1] - night[0] == dt.timedelta(hours=9)
    for role in ("NURSE", "EMERGENCY_DOCTOR", "BIOMEDICAL_ENGINEER"):
        assert_covered_without_gaps(duties_between(db, start, end, role), start, end)


def test_a_cover_takes_only_the_part_of_the_shift_inside_the_override():
    shifts = {"DAY12": Shift("DAY12", dt.time(8), dt.time(20))}
    rotation = Rotation(rotation_id=1, role="EMERGENCY_DOCTOR", start_date=dt.date(2026, 3, 2),
                        period_days=7, shift_codes=("DAY12",), members=(("D01", 0),))
    roles = {"D01": "EMERGENCY_DOCTOR", "D03": "EMERGENCY_DOCTOR"}
    cover = Override(override_id=7, employee_id="D03", replaces_id="D01",
                     starts_at=london("2026-03-10T10:00"), ends_at=london("2026-03-10T12:00"))
    duties = compute_duties(rotations=[rotation], shifts=shifts, overrides=[cover], roles=roles, tz=LONDON,
                            start=london("2026-03-10T00:00"), end=london("2026-03-11T00:00"))
    assert [(d.employee_id, d.starts_at.hour, d.ends_at.hour, d.source) for d in duties] == [
        ("D01", 8, 10, "rotation"), ("D03", 10, 12, "override"), ("D01", 12, 20, "rotation")]
    assert duties[1] == Duty(employee_id="D03", role="EMERGENCY_DOCTOR", shift_code="DAY12",
                             starts_at=cover.starts_at, ends_at=cover.ends_at, source="override",
                             rotation_id=1, override_id=7, replaces_id="D01")


# --- Schedules over HTTP ---------------------------------------------------------------------

def test_schedules_list_concrete_shifts_with_offsets(api):
    response = api.call("GET", "/api/v1/schedules?from=2026-03-29&to=2026-03-29&role=NURSE")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "Europe/London"
    assert (body["from"], body["to"]) == ("2026-03-29T00:00:00+00:00", "2026-03-30T00:00:00+01:00")
    days = {(s["employee_id"], s["shift_code"], s["starts_at"], s["ends_at"], s["source"])
            for s in body["shifts"] if s["starts_at"].startswith("2026-03-29T08")}
    assert days == {("N03", "DAY", "2026-03-29T08:00:00+01:00", "2026-03-29T16:00:00+01:00", "rotation"),
                    ("N04", "DAY", "2026-03-29T08:00:00+01:00", "2026-03-29T16:00:00+01:00", "rotation")}
    assert {s["role"] for s in body["shifts"]} == {"NURSE"}
    assert body["shifts"][0]["name"] and body["shifts"][0]["rotation_id"]


@pytest.mark.parametrize("query, status, field, message", [
    ("from=2026-03-01&to=2026-04-15", 422, "to", "31 days"),
    ("from=2026-03-10&to=2026-03-01", 422, "to", "after"),
    ("from=1900-03-01&to=1900-03-02", 422, "from", "years 2000 to 2099"),
    ("from=2026-03-01&to=2026-03-02&role=WIZARD", 422, "role", "WIZARD"),
    ("from=yesterday&to=2026-03-01", 400, "from", ""),
    ("from=2026-02-30", 400, "from", ""),
])
def test_schedules_reject_bad_periods(api, query, status, field, message):
    response = api.call("GET", "/api/v1/schedules?" + query)
    assert response.status_code == status, response.text
    assert message in response.json()["message"] and response.json()["field"] == field


def on_duty_doctors(api):
    response = api.call("GET", "/api/v1/oncall/current?role=EMERGENCY_DOCTOR")
    assert response.status_code == 200, response.text
    return {c["employee_id"]: c for c in response.json()["clinicians"]}


def test_an_override_changes_who_is_on_duty_now(api, clock):
    before = on_duty_doctors(api)
    assert len(before) == 2  # one pair works days, the other nights
    replaced = sorted(before)[0]
    cover = sorted({"D01", "D02", "D03", "D04"} - set(before))[0]
    now = clock.now()
    created = api.call("POST", "/api/v1/schedules/overrides", who="D01", json={
        "employee_id": cover, "replaces_id": replaced, "reason": "sick leave",
        "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
        "ends_at": (now + dt.timedelta(hours=1)).isoformat()})
    assert created.status_code == 201, created.text
    override = created.json()
    assert created.headers["Location"] == f"/api/v1/schedules/overrides/{override['override_id']}"
    assert override["created_by"] == "D01" and override["replaces_id"] == replaced

    during = on_duty_doctors(api)
    assert set(during) == set(before) - {replaced} | {cover}
    assert during[cover]["shift"]["source"] == "override"
    assert during[cover]["shift"]["replaces_id"] == replaced

    assert api.call("DELETE", f"/api/v1/schedules/overrides/{override['override_id']}",
                    who="D01").status_code == 204
    assert set(on_duty_doctors(api)) == set(before)
    gone = api.call("DELETE", f"/api/v1/schedules/overrides/{override['override_id']}", who="D01")
    assert gone.status_code == 404 and gone.json()["status"] == 404


def test_an_added_clinician_is_on_duty_and_available(api, clock):
    now = clock.now()
    current = api.call("GET", "/api/v1/oncall/current?role=NURSE").json()["clinicians"]
    on_duty = {c["employee_id"] for c in current}
    extra = sorted({"N01", "N02", "N03", "N04", "N05", "N06"} - on_duty)[0]
    created = api.call("POST", "/api/v1/schedules/overrides", who="N01", json={
        "employee_id": extra, "starts_at": (now - dt.timedelta(minutes=5)).isoformat(),
        "ends_at": (now + dt.timedelta(hours=2)).isoformat()})
    assert created.status_code == 201, created.text
    api.token(extra)
    available = api.call("GET", "/api/v1/oncall/available?roles=NURSE").json()["clinicians"]
    assert extra in {c["employee_id"] for c in available}


@pytest.mark.parametrize("body, status, field, message", [
    ({"employee_id": "D03", "starts_at": "2026-05-02T08:00", "ends_at": "2026-05-01T08:00"}, 422,
     "ends_at", "after"),
    ({"employee_id": "D99", "starts_at": "2026-05-01T08:00", "ends_at": "2026-05-02T08:00"}, 422,
     "employee_id", "D99"),
    ({"employee_id": "D03", "replaces_id": "X1", "starts_at": "2026-05-01T08:00",
      "ends_at": "2026-05-02T08:00"}, 422, "replaces_id", "X1"),
    ({"employee_id": "N03", "replaces_id": "D01", "starts_at": "2026-05-01T08:00",
      "ends_at": "2026-05-02T08:00"}, 422, "replaces_id", "different roles"),
    ({"employee_id": "D03", "starts_at": "soon", "ends_at": "2026-05-02T08:00"}, 400, "starts_at", ""),
    ({"starts_at": "2026-05-01T08:00", "ends_at": "2026-05-02T08:00"}, 400, "employee_id", "required"),
    ({"employee_id": "D03", "starts_at": "2026-05-01", "ends_at": "2026-05-02", "reason": "x" * 501},
     400, "reason", "500"),
])
def test_overrides_reject_bad_input(api, body, status, field, message):
    response = api.call("POST", "/api/v1/schedules/overrides", who="D02", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["message"] and response.json()["field"] == field


def test_only_supervisors_edit_schedules(api, service_env):
    body = {"employee_id": "N03", "replaces_id": "N04", "starts_at": "2026-05-01T08:00",
            "ends_at": "2026-05-01T16:00"}
    for token in (api.token("N02"), service_env["SERVICE_TOKEN"]):
        refused = api.call("POST", "/api/v1/schedules/overrides", token=token, json=body)
        assert refused.status_code == 403 and "supervising" in refused.json()["message"]
    created = api.call("POST", "/api/v1/schedules/overrides", who="N01", json=body)  # charge nurse
    assert created.status_code == 201
    assert api.call("DELETE", f"/api/v1/schedules/overrides/{created.json()['override_id']}",
                    who="N02").status_code == 403


# --- Who is on duty now, workload, employees, metric ---------------------------------------------

def test_current_shows_sign_in_availability_and_active_workload(api, db, make_incident):
    api.token("S01")
    assert api.call("PATCH", "/api/v1/employees/me/availability", who="S01",
                    json={"availability": "away"}).status_code == 200
    make_incident(assigned_to="S01", status="IN_PROGRESS")
    make_incident(assigned_to="S01", status="RESOLVED")
    response = api.call("GET", "/api/v1/oncall/current?role=CARDIOLOGIST", who="D01")
    clinicians = {c["employee_id"]: c for c in response.json()["clinicians"]}
    assert set(clinicians) == {"S01", "S02"}
    assert (clinicians["S01"]["signed_in"], clinicians["S01"]["availability"],
            clinicians["S01"]["active_incidents"]) == (True, "AWAY", 1)
    assert (clinicians["S02"]["signed_in"], clinicians["S02"]["active_incidents"]) == (False, 0)
    assert clinicians["S01"]["shift"]["shift_code"] == "ONCALL24"
    everyone = api.call("GET", "/api/v1/oncall/current").json()["clinicians"]
    assert {"NURSE", "EMERGENCY_DOCTOR", "CARDIOLOGIST", "SURGEON"} <= {c["role"] for c in everyone}
    assert api.call("GET", "/api/v1/oncall/current?role=WIZARD").status_code == 422


def test_availability_accepts_only_available_or_away(api, service_env):
    for body in ({"availability": "ON_BREAK"}, {}, {"availability": None}):
        refused = api.call("PATCH", "/api/v1/employees/me/availability", json=body)
        assert refused.status_code == 400 and refused.json()["field"] == "availability", refused.text
    assert api.call("PATCH", "/api/v1/employees/me/availability", data="away",
                    headers={"Content-Type": "text/plain"}).status_code == 400
    as_service = api.call("PATCH", "/api/v1/employees/me/availability",
                          token=service_env["SERVICE_TOKEN"], json={"availability": "AWAY"})
    assert as_service.status_code == 403


def test_employees_never_show_password_hashes(api):
    everyone = api.call("GET", "/api/v1/employees")
    assert everyone.status_code == 200
    assert len(everyone.json()["employees"]) == 24
    assert "scrypt" not in everyone.text and "argon2" not in everyone.text
    assert "password" not in everyone.text
    nurses = api.call("GET", "/api/v1/employees?role=NURSE").json()["employees"]
    assert [e["employee_id"] for e in nurses] == ["N01", "N02", "N03", "N04", "N05", "N06"]
    one = api.call("GET", "/api/v1/employees/D01")
    assert one.status_code == 200 and one.json()["is_supervisor"] is True
    assert "password_hash" not in one.json()
    unknown = api.call("GET", "/api/v1/employees/Z99")
    assert unknown.status_code == 404 and unknown.json()["message"] == "no employee Z99"


def test_oncall_current_metric_counts_signed_in_clinicians_on_duty(api, oncall):
    api.token("S01")
    api.token("S02")
    api.token("S05")
    api.call("POST", "/api/v1/auth/logout", who="S05")
    text = requests.get(oncall.url + "/metrics", timeout=10).text
    values = dict(re.findall(r'^oncall_current\{role="([A-Z_]+)"\} (\S+)$', text, re.MULTILINE))
    assert float(values["CARDIOLOGIST"]) == 2
    assert float(values["NEUROLOGIST"]) == 0
    assert set(values) >= {"NURSE", "EMERGENCY_DOCTOR", "SURGEON"}
    assert "http_requests_total" in text  # the worker metrics are still there


def test_schedules_for_a_number_of_days_start_today_in_the_hospital_time_zone(api, clock):
    answer = api.call("GET", "/api/v1/schedules", params={"days": "3"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    today = clock.now().astimezone(LONDON).date()
    assert body["from"] == dt.datetime.combine(today, dt.time(), LONDON).isoformat()
    # to: the end of the third day (the next local midnight)
    assert dt.datetime.fromisoformat(body["to"]) == dt.datetime.combine(today + dt.timedelta(days=3),
                                                                        dt.time(), LONDON)
    assert {dt.datetime.fromisoformat(s["starts_at"]).date() for s in body["shifts"]} >= {
        today + dt.timedelta(days=n) for n in range(3)}
    for bad in ("0", "32", "two"):
        refused = api.call("GET", "/api/v1/schedules", params={"days": bad})
        assert refused.status_code == 400 and refused.json()["field"] == "days"
