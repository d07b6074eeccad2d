"""Accounts and the sign-in throttle: no known password outside the demo profile, the first
supervisor (an account administrator), password change and the rules a new password meets, an
account administrator's reset (audited, told, expiring, single-use), argon2id hashes (older ones
upgraded at sign-in), and a throttle per (login, address) plus per address that lets the
clinician in from another address while one address hammers their login, and that nobody escapes
by naming another address in X-Real-IP."""
import datetime as dt
import ipaddress
import subprocess
import sys
import uuid

import pytest
import requests
from requests.adapters import HTTPAdapter

from healthguard.db import Database
from healthguard.migrate import migrate
from healthguard.passwords import verify_password
from tests.conftest import DATABASE_PREFIX
from tests.support import metric_value, wait_for

PASSWORD = "password123"  # the demo profile's password
# 0002_seed.sql's hash of the demo password for D01: the scrypt (N=2^14) that sign-in upgrades.
OLD_SCRYPT_HASH = ("scrypt$16384$8$1$WBKz7tngAhisSaVIGR4PIw==$"
                   "i+pcScEa3ThoEXCecbjHP1LH5pXXenOvHMaD7Z/osDE=")

pytestmark = pytest.mark.module_database


@pytest.fixture(scope="module")
def oncall(start_module_service):
    # Set, even to nothing, a setting is not read from a .env (one written before this default
    # changed may still trust every private network): the default, which trusts no proxy.
    return start_module_service("oncall", env={"TRUSTED_PROXIES": ""})


class _FromAddress(HTTPAdapter):
    def __init__(self, address):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client(address: str) -> requests.Session:
    """HTTP from this loopback address (127.0.0.0/8 is all this machine's): distinct clients."""
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    return session


def login(base_url, login_name, password=PASSWORD, *, via=None, headers=None):
    return (via or requests).post(base_url + "/api/v1/auth/login", timeout=10, headers=headers,
                                  json={"login": login_name, "password": password})


def change_password(base_url, login_name, current, new, *, via=None):
    return (via or requests).post(base_url + "/api/v1/auth/password", timeout=10, json={
        "login": login_name, "current_password": current, "new_password": new})


def stored_hash(db, employee_id):
    with db.transaction() as cur:
        cur.execute("SELECT password_hash, must_change_password FROM employees "
                    "WHERE employee_id = %s", (employee_id,))
        return cur.fetchone()


# --------------------------------------------------------------------------- demo profile
def test_without_the_demo_profile_no_account_has_a_known_password(databases):
    name = f"{DATABASE_PREFIX}nodemo_{uuid.uuid4().hex[:8]}"
    url = databases.create(name)
    try:
        migrate(url)  # as `docker compose up` without HG_DEMO does
        database = Database(url, maxconn=1)
        try:
            with database.transaction() as cur:
                cur.execute("SELECT employee_id, password_hash FROM employees")
                rows = cur.fetchall()
        finally:
            database.close()
        assert len(rows) == 25  # the 24 clinicians and the privacy officer (migration 0020)
        assert all(row["password_hash"] == "!" for row in rows), rows
        assert not any(verify_password(PASSWORD, row["password_hash"]) for row in rows)
        assert not verify_password("", "!")
        # The demo profile afterwards (HG_DEMO=1 on the same database) gives them the demo password.
        migrate(url, demo=True)
        database = Database(url, maxconn=1)
        try:
            with database.transaction() as cur:
                cur.execute("SELECT password_hash FROM employees WHERE employee_id = 'N01'")
                assert verify_password(PASSWORD, cur.fetchone()["password_hash"])
        finally:
            database.close()
    finally:
        databases.drop(name)


def test_demo_hashes_are_argon2id_with_a_salt_each(db):
    with db.transaction() as cur:
        cur.execute("SELECT password_hash FROM employees")
        hashes = [row["password_hash"] for row in cur.fetchall()]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert len({h.split("$")[4] for h in hashes}) == len(hashes)


# --------------------------------------------------------------------------- hashes
def test_an_old_scrypt_hash_still_signs_in_and_is_upgraded(oncall, db):
    with db.transaction() as cur:
        cur.execute("UPDATE employees SET password_hash = %s WHERE employee_id = 'D01'",
                    (OLD_SCRYPT_HASH,))
    assert login(oncall.url, "D01", "wrong-password").status_code == 401
    assert stored_hash(db, "D01")["password_hash"] == OLD_SCRYPT_HASH  # only a success upgrades
    assert login(oncall.url, "D01").status_code == 200
    upgraded = stored_hash(db, "D01")["password_hash"]
    assert upgraded.startswith("$argon2id$") and verify_password(PASSWORD, upgraded)
    assert login(oncall.url, "D01").status_code == 200


# --------------------------------------------------------------------------- change and reset
def test_a_clinician_changes_their_password(oncall, db):
    token = login(oncall.url, "N02").json()["token"]
    new = "a-longer-ward-password"
    assert change_password(oncall.url, "N02", "not-it", new).status_code == 401
    assert change_password(oncall.url, "N02", PASSWORD, "short").status_code == 400
    assert change_password(oncall.url, "N02", PASSWORD, new).status_code == 204
    assert login(oncall.url, "N02").status_code == 401  # the old password is gone
    assert login(oncall.url, "N02", new).status_code == 200
    # Changing a password ended the sessions opened with the old one.
    me = requests.get(oncall.url + "/api/v1/auth/me", timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    unchanged = change_password(oncall.url, "N02", new, new)
    assert unchanged.status_code == 422 and unchanged.json()["field"] == "new_password"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def reset(base_url, employee_id, token, *, via=None):
    return (via or requests).post(f"{base_url}/api/v1/employees/{employee_id}/password-reset",
                                  headers=bearer(token), timeout=10)


def audit(base_url, token, **params):
    return requests.get(base_url + "/api/v1/employees/account-audit", params=params,
                        headers=bearer(token), timeout=10)


def test_an_account_administrators_reset_forces_a_change_at_the_next_sign_in(oncall, db, login_as):
    nurse_token = login(oncall.url, "N03").json()["token"]
    admin = login_as("D01")  # the demo profile's account administrator
    # Only account administrators reset, and only people who exist.
    assert reset(oncall.url, "N03", login_as("N04")).status_code == 403
    assert reset(oncall.url, "X99", admin).status_code == 404
    answer = reset(oncall.url, "N03", admin)
    assert answer.status_code == 200, answer.text
    temporary = answer.json()["temporary_password"]
    assert len(temporary) >= 12 and answer.json()["employee_id"] == "N03"
    # The nurse's sessions ended, the old password is gone, the one-time one only leads to a change.
    assert requests.get(oncall.url + "/api/v1/auth/me", timeout=10,
                        headers=bearer(nurse_token)).status_code == 401
    assert login(oncall.url, "N03").status_code == 401
    for _ in range(2):  # until it is changed
        forced = login(oncall.url, "N03", temporary)
        assert forced.status_code == 403 and forced.json()["password_change_required"] is True
        assert "token" not in forced.json()
    new = "my-own-night-shift-password"
    assert change_password(oncall.url, "N03", temporary, new).status_code == 204
    # Single use: the one-time password neither signs in nor changes the password again.
    assert login(oncall.url, "N03", temporary).status_code == 401
    assert change_password(oncall.url, "N03", temporary, "yet-another-ward-phrase").status_code == 401
    assert login(oncall.url, "N03", new).status_code == 200
    assert stored_hash(db, "N03")["must_change_password"] is False


def test_a_charge_nurse_who_supervises_may_not_reset_a_doctors_password(oncall, db, login_as):
    # Issue 17: N01, a charge nurse and supervisor, reset supervisor D02's password, signed in as
    # D02 with it, and as D02 reset D01. Supervising alarms is not administering accounts.
    d02_token = login(oncall.url, "D02").json()["token"]
    refused = reset(oncall.url, "D02", login_as("N01"))
    assert refused.status_code == 403 and "account administrator" in refused.json()["message"]
    assert reset(oncall.url, "D01", d02_token).status_code == 403  # D02 supervises, nothing more
    assert requests.get(oncall.url + "/api/v1/auth/me", headers=bearer(d02_token),
                        timeout=10).status_code == 200  # D02's session was not touched
    assert login(oncall.url, "D02").status_code == 200
    assert audit(oncall.url, login_as("N01")).status_code == 403  # nor may N01 read the audit
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM account_audit")
        assert cur.fetchone()["n"] == 0


def test_every_reset_is_audited_with_who_whom_when_and_from_where(oncall, db, clock):
    admin = login(oncall.url, "D01", via=client("127.0.0.8")).json()["token"]
    at = clock.now()
    assert reset(oncall.url, "D02", admin, via=client("127.0.0.8")).status_code == 200
    assert reset(oncall.url, "N05", admin, via=client("127.0.0.8")).status_code == 200
    answer = audit(oncall.url, admin)
    assert answer.status_code == 200, answer.text
    entries = answer.json()["entries"]
    assert [(e["action"], e["employee_id"], e["actor_id"]) for e in entries] == [
        ("PASSWORD_RESET", "N05", "D01"), ("PASSWORD_RESET", "D02", "D01")]
    newest = entries[0]
    assert newest["employee_name"] == "Linh Nguyen" and newest["actor_name"] == "Dr. Michael Brooks"
    assert newest["source_address"] == "127.0.0.8"
    assert abs(dt.datetime.fromisoformat(newest["occurred_at"]) - at) < dt.timedelta(seconds=30)
    only_d02 = audit(oncall.url, admin, employee_id="D02").json()["entries"]
    assert [e["employee_id"] for e in only_d02] == ["D02"]
    assert audit(oncall.url, admin, before=newest["audit_id"]).json()["entries"] == only_d02


def test_a_one_time_password_stops_working_after_its_time(oncall, db, login_as, clock):
    admin = login_as("D01", expires_in="3 days")
    temporary = reset(oncall.url, "S01", admin).json()["temporary_password"]
    clock.advance(23 * 3600)  # within the 24 hours: it still leads to the change
    assert login(oncall.url, "S01", temporary).json().get("password_change_required") is True
    clock.advance(3600 + 60)
    expired = login(oncall.url, "S01", temporary)
    assert expired.status_code == 401 and expired.json()["one_time_password_expired"] is True
    refused = change_password(oncall.url, "S01", temporary, "cardiology-on-the-fourth-floor")
    assert refused.status_code == 401 and refused.json()["one_time_password_expired"] is True
    assert login(oncall.url, "S01", "cardiology-on-the-fourth-floor").status_code == 401
    # A new reset gives a new one that works.
    fresh = reset(oncall.url, "S01", admin).json()["temporary_password"]
    assert change_password(oncall.url, "S01", fresh, "cardiology-on-the-fourth-floor").status_code == 204


def test_account_administrators_grant_the_capability_and_it_is_audited(oncall, db, login_as):
    admin = login_as("D01")
    d03 = login_as("D03")
    assert reset(oncall.url, "N02", d03).status_code == 403
    grant = requests.put(oncall.url + "/api/v1/employees/D03/account-admin", headers=bearer(admin),
                         json={"account_admin": True}, timeout=10)
    assert grant.status_code == 200 and grant.json()["is_account_admin"] is True
    me = requests.get(oncall.url + "/api/v1/auth/me", headers=bearer(d03), timeout=10).json()
    assert me["employee"]["is_account_admin"] is True
    assert reset(oncall.url, "N02", d03).status_code == 200  # D03 may now, in the same session
    # Nobody withdraws their own; another administrator may.
    own = requests.put(oncall.url + "/api/v1/employees/D03/account-admin", headers=bearer(d03),
                       json={"account_admin": False}, timeout=10)
    assert own.status_code == 409
    assert requests.put(oncall.url + "/api/v1/employees/D03/account-admin", headers=bearer(d03),
                        json={"account_admin": "yes"}, timeout=10).status_code == 400
    withdrawn = requests.put(oncall.url + "/api/v1/employees/D03/account-admin",
                             headers=bearer(admin), json={"account_admin": False}, timeout=10)
    assert withdrawn.status_code == 200 and withdrawn.json()["is_account_admin"] is False
    assert reset(oncall.url, "N02", d03).status_code == 403
    actions = [(e["action"], e["employee_id"], e["actor_id"])
               for e in audit(oncall.url, admin).json()["entries"]]
    assert actions == [("ACCOUNT_ADMIN_REVOKED", "D03", "D01"), ("PASSWORD_RESET", "N02", "D03"),
                       ("ACCOUNT_ADMIN_GRANTED", "D03", "D01")]


def test_the_person_reset_is_told_in_their_notifications(oncall, start_module_service, login_as):
    # The reset travels the incidents' path: outbox (relayed by another service's worker, here
    # alert ingestion's), the `notifications` queue, the notification service's store.
    start_module_service("alert-ingestion")
    notification = start_module_service("notification")
    assert reset(oncall.url, "N06", login_as("D01")).status_code == 200
    nurse = login_as("N06")

    def told():
        answer = requests.get(notification.url + "/api/v1/notifications", headers=bearer(nurse),
                              timeout=10)
        assert answer.status_code == 200, answer.text
        return next((n for n in answer.json()["notifications"]
                     if n["event_type"] == "PASSWORD_RESET"), None)
    note = wait_for(told, 30, 0.2, "N06 to be told of the reset")
    assert note["title"] == "Your password was reset"
    assert "Dr. Michael Brooks (emergency doctor)" in note["message"]
    assert note["incident_id"] is None


@pytest.mark.parametrize(("password", "why"), [
    ("aaaaaaaaaaaa", "repeats"),
    ("abcabcabcabcabc", "repeats"),
    ("abcdefghijklmn", "run of the keyboard"),
    ("123456789012", "run of the keyboard"),
    ("password1234", "most common"),
    ("Qwerty123456!", "most common"),
    ("1q2w3e4r5t6y", "most common"),
    ("JamesOConnor1", "login or your name"),
])
def test_a_new_password_must_not_be_one_an_attacker_tries_first(oncall, db, password, why):
    refused = change_password(oncall.url, "N02", PASSWORD, password)
    assert refused.status_code == 422, refused.text
    assert why in refused.json()["message"] and refused.json()["field"] == "new_password"
    assert login(oncall.url, "N02").status_code == 200  # the old password still holds


def test_create_admin_bootstraps_the_first_supervisor(oncall, db, database_url):
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "oncall.accounts", "create-admin", "--login", "ADM01",
               "--name", "Dr. Ada Byrne"]
    generated = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
    assert generated.returncode == 0, generated.stderr
    password = generated.stdout.split("(shown only now): ")[1].strip()
    assert len(password) >= 12
    forced = login(oncall.url, "ADM01", password)
    assert forced.status_code == 403 and forced.json()["password_change_required"] is True
    assert change_password(oncall.url, "ADM01", password, "first-admin-password").status_code == 204
    signed_in = login(oncall.url, "ADM01", "first-admin-password")
    assert signed_in.status_code == 200 and signed_in.json()["employee"]["is_supervisor"] is True
    # The first supervisor administers accounts: resets, and may grant that to others.
    admin = signed_in.json()["token"]
    assert reset(oncall.url, "N04", admin).status_code == 200
    assert requests.put(oncall.url + "/api/v1/employees/D04/account-admin", headers=bearer(admin),
                        json={"account_admin": True}, timeout=10).status_code == 200
    # The operator's way back in: grant-admin and reset-password on the command line (audited).
    granted = subprocess.run([*command[:3], "grant-admin", "--login", "D02"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert granted.returncode == 0 and "D02 is an account administrator" in granted.stdout
    operator = subprocess.run([*command[:3], "reset-password", "--login", "N05"], env=env,
                              capture_output=True, text=True, timeout=60)
    assert operator.returncode == 0, operator.stderr
    one_time = operator.stdout.rsplit(": ", 1)[1].strip()
    assert login(oncall.url, "N05", one_time).json()["password_change_required"] is True
    entries = audit(oncall.url, admin).json()["entries"]
    assert [(e["action"], e["employee_id"], e["actor_id"]) for e in entries[:3]] == [
        ("PASSWORD_RESET", "N05", None), ("ACCOUNT_ADMIN_GRANTED", "D02", None),
        ("ACCOUNT_ADMIN_GRANTED", "D04", "ADM01")]
    # An existing login is never overwritten; a password from stdin is never printed.
    again = subprocess.run(command + ["--password-stdin"], env=env, capture_output=True, text=True,
                           timeout=60, input="another-password-1\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    weak = subprocess.run([*command[:5], "ADM03", "--name", "Dr. Cy Weak", "--password-stdin"],
                          env=env, capture_output=True, text=True, timeout=60, input="aaaaaaaaaaaa\n")
    assert weak.returncode == 2 and "repeats" in weak.stderr
    from_stdin = subprocess.run(
        [*command[:5], "ADM02", "--name", "Dr. Ben Ode", "--password-stdin"], env=env,
        capture_output=True, text=True, timeout=60, input="typed-by-the-admin-1\n")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert "typed-by-the-admin-1" not in from_stdin.stdout
    assert login(oncall.url, "ADM02", "typed-by-the-admin-1").status_code == 403


# --------------------------------------------------------------------------- throttle
def test_a_second_address_signs_in_while_the_first_is_throttled(oncall, db):
    attacker, clinician = client("127.0.0.2"), client("127.0.0.3")
    before = metric_value(oncall.url, "sign_in_throttled_total", reason="login_address") or 0
    for _ in range(5):
        assert login(oncall.url, "D03", "guess", via=attacker).status_code == 401
    for _ in range(3):
        throttled = login(oncall.url, "D03", "guess", via=attacker)
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert login(oncall.url, "D03", via=attacker).status_code == 429  # right password, same address
    assert login(oncall.url, "D03", via=clinician).status_code == 200  # the clinician gets in
    assert metric_value(oncall.url, "sign_in_throttled_total", reason="login_address") == before + 4
    with db.transaction() as cur:
        cur.execute("SELECT host(source_address) AS address, count(*) AS n FROM login_attempts "
                    "WHERE login = 'D03' GROUP BY 1 ORDER BY 1")
        counted = {row["address"]: row["n"] for row in cur.fetchall()}
    assert counted == {"127.0.0.2": 5, "127.0.0.3": 1}  # throttled tries are not even checked


def test_one_address_is_limited_across_logins(oncall, db):
    sweeper, clinician = client("127.0.0.4"), client("127.0.0.5")
    before = metric_value(oncall.url, "sign_in_throttled_total", reason="address") or 0
    logins = [f"{role}{n:02d}" for role in "NDSE" for n in range(1, 13)]  # 48, never 6 on one
    answers = [login(oncall.url, name, "guess", via=sweeper).status_code for name in logins[:31]]
    assert answers[:30] == [401] * 30 and answers[30] == 429
    refused = login(oncall.url, "S05", via=sweeper)
    assert refused.status_code == 429 and refused.json()["retry_after_seconds"] > 0
    assert metric_value(oncall.url, "sign_in_throttled_total", reason="address") == before + 2
    assert login(oncall.url, "S05", via=clinician).status_code == 200


def test_x_real_ip_counts_only_from_a_trusted_proxy(start_module_service, db):
    strict = start_module_service("oncall", env={"TRUSTED_PROXIES": "127.0.0.1/32"})
    proxy, stranger = client("127.0.0.1"), client("127.0.0.6")
    # From the trusted proxy, X-Real-IP names the client; from anyone else it is ignored.
    assert login(strict.url, "S06", "guess", via=proxy,
                 headers={"X-Real-IP": "198.51.100.7"}).status_code == 401
    assert login(strict.url, "S06", "guess", via=stranger,
                 headers={"X-Real-IP": "198.51.100.8"}).status_code == 401
    with db.transaction() as cur:
        cur.execute("SELECT host(source_address) AS address FROM login_attempts "
                    "WHERE login = 'S06' ORDER BY attempt_id")
        assert [row["address"] for row in cur.fetchall()] == ["198.51.100.7", "127.0.0.6"]
    # So a stranger cannot escape its throttle by inventing a new X-Real-IP for each guess.
    for n in range(4):
        login(strict.url, "S06", "guess", via=stranger, headers={"X-Real-IP": f"203.0.113.{n}"})
    assert login(strict.url, "S06", "guess", via=stranger,
                 headers={"X-Real-IP": "203.0.113.99"}).status_code == 429


def test_the_throttle_counts_an_ipv6_client_by_its_64():
    from oncall.sessions import throttle_source
    assert throttle_source("2001:db8:1:2:aaaa::1") == throttle_source("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert throttle_source("2001:db8:1:3::1") != throttle_source("2001:db8:1:2::1")
    assert throttle_source("::ffff:192.0.2.7") == throttle_source("192.0.2.7") == "192.0.2.7"
    assert throttle_source(None) is None


def test_fifty_guesses_each_naming_a_new_x_real_ip_straight_to_the_service_are_throttled(oncall, db):
    # Issue 17: from 127.0.0.7 straight to the on-call port, a new X-Real-IP per guess went
    # unthrottled while loopback was trusted by default. By default no proxy is trusted now.
    attacker = client("127.0.0.7")
    answers = [login(oncall.url, "D04", f"guess-{n}", via=attacker,
                     headers={"X-Real-IP": f"198.51.100.{n}"}).status_code for n in range(50)]
    assert answers[:5] == [401] * 5 and answers[5:] == [429] * 45
    with db.transaction() as cur:
        cur.execute("SELECT DISTINCT host(source_address) AS address FROM login_attempts "
                    "WHERE login = 'D04'")
        assert [row["address"] for row in cur.fetchall()] == ["127.0.0.7"]


@pytest.mark.parametrize(("peer", "header", "expected"), [
    ("127.0.0.1", "198.51.100.7", "198.51.100.7"),   # nginx on this host (make up)
    ("::1", "198.51.100.7", "198.51.100.7"),
    ("172.18.0.5", "198.51.100.7", "198.51.100.7"),  # compose's nginx, by its service name
    ("172.18.0.6", "198.51.100.7", "172.18.0.6"),    # another container of the compose network
    ("127.0.0.7", "198.51.100.7", "127.0.0.7"),      # another loopback address: not the proxy
    ("198.51.100.9", "198.51.100.7", "198.51.100.9"),  # a client sending the header itself
    ("127.0.0.1", "not-an-address", "127.0.0.1"),
    ("127.0.0.1", "198.51.100.7, 10.0.0.1", "127.0.0.1"),  # one address or none
    ("127.0.0.1", None, "127.0.0.1"),
])
def test_x_real_ip_is_believed_only_from_a_trusted_proxy(peer, header, expected):
    from types import SimpleNamespace

    from healthguard.addresses import client_address, trusted_proxies
    compose = {"web-ui": ["172.18.0.5"]}
    proxies = trusted_proxies("127.0.0.1/32,::1/128,web-ui", resolve=lambda name: frozenset(
        ipaddress.ip_address(a) for a in compose.get(name, [])))
    request = SimpleNamespace(remote_addr=peer, headers={"X-Real-IP": header} if header else {})
    assert client_address(request, proxies) == expected
    assert client_address(request, trusted_proxies(None)) == peer  # the default trusts nobody
    assert client_address(request, trusted_proxies("")) == peer


def test_a_proxy_named_by_host_is_looked_up_and_looked_up_again_later():
    from types import SimpleNamespace

    from healthguard.addresses import client_address, trusted_proxies
    answers = {"web-ui": []}  # compose's nginx not started yet: the name does not resolve
    lookups = []

    def resolve(name):
        lookups.append(name)
        return frozenset(ipaddress.ip_address(a) for a in answers[name])
    proxies = trusted_proxies("web-ui", resolve=resolve)
    proxies._ttl = 0.2
    request = SimpleNamespace(remote_addr="172.18.0.5", headers={"X-Real-IP": "198.51.100.7"})
    assert client_address(request, proxies) == "172.18.0.5"
    assert client_address(request, proxies) == "172.18.0.5" and len(lookups) == 1  # cached
    answers["web-ui"] = ["172.18.0.5"]  # started
    wait_for(lambda: client_address(request, proxies) == "198.51.100.7", 5, 0.05,
             "the proxy's new address to be trusted")
    # The real resolver: this machine's own name for loopback.
    local = trusted_proxies("localhost")
    assert client_address(SimpleNamespace(remote_addr="127.0.0.1", headers={"X-Real-IP": "192.0.2.1"}),
                          local) == "192.0.2.1"


@pytest.mark.parametrize("setting", ["10.0.0.0/8,300.1.2.3", "10.0.0.0/33", "web ui", "-nginx"])
def test_a_malformed_trusted_proxies_setting_stops_the_service(setting):
    from healthguard.addresses import trusted_proxies
    from healthguard.settings import ConfigError
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        trusted_proxies(setting)
