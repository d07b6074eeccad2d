"""Accounts and the sign-in throttle: no known password outside the demo profile, the first
supervisor, password change and a supervisor's reset, argon2id hashes (older ones upgraded at
sign-in), and a throttle per (login, address) plus per address that lets the clinician in from
another address while one address hammers their login."""
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
from tests.support import metric_value

PASSWORD = "password123"  # the demo profile's password
# 0002_seed.sql's hash of the demo password for D01: the scrypt (N=2^14) that sign-in upgrades.
OLD_SCRYPT_HASH = ("scrypt$16384$8$1$WBKz7tngAhisSaVIGR4PIw==$"
                   "i+pcScEa3ThoEXCecbjHP1LH5pXXenOvHMaD7Z/osDE=")

pytestmark = pytest.mark.module_database


@pytest.fixture(scope="module")
def oncall(start_module_service):
    return start_module_service("oncall")


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
        assert len(rows) == 24
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


def test_a_supervisors_reset_forces_a_change_at_the_next_sign_in(oncall, db, login_as):
    nurse_token = login(oncall.url, "N03").json()["token"]
    supervisor = {"Authorization": f"Bearer {login_as('D02')}"}
    reset_url = oncall.url + "/api/v1/employees/N03/password-reset"
    # Only supervisors reset, and only people who exist.
    refused = requests.post(reset_url, timeout=10, headers={"Authorization": f"Bearer {login_as('N04')}"})
    assert refused.status_code == 403
    assert requests.post(oncall.url + "/api/v1/employees/X99/password-reset", timeout=10,
                         headers=supervisor).status_code == 404
    reset = requests.post(reset_url, headers=supervisor, timeout=10)
    assert reset.status_code == 200
    temporary = reset.json()["temporary_password"]
    assert len(temporary) >= 12 and reset.json()["employee_id"] == "N03"
    # The nurse's sessions ended, the old password is gone, the one-time one only leads to a change.
    assert requests.get(oncall.url + "/api/v1/auth/me", timeout=10,
                        headers={"Authorization": f"Bearer {nurse_token}"}).status_code == 401
    assert login(oncall.url, "N03").status_code == 401
    for _ in range(2):  # until it is changed
        forced = login(oncall.url, "N03", temporary)
        assert forced.status_code == 403 and forced.json()["password_change_required"] is True
        assert "token" not in forced.json()
    new = "my-own-night-shift-password"
    assert change_password(oncall.url, "N03", temporary, new).status_code == 204
    assert login(oncall.url, "N03", temporary).status_code == 401
    assert login(oncall.url, "N03", new).status_code == 200
    assert stored_hash(db, "N03")["must_change_password"] is False


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
    # An existing login is never overwritten; a password from stdin is never printed.
    again = subprocess.run(command + ["--password-stdin"], env=env, capture_output=True, text=True,
                           timeout=60, input="another-password-1\n")
    assert again.returncode == 1 and "already exists" in again.stderr
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


@pytest.mark.parametrize(("peer", "header", "expected"), [
    ("127.0.0.1", "198.51.100.7", "198.51.100.7"),   # nginx on this host
    ("172.18.0.5", "198.51.100.7", "198.51.100.7"),  # nginx on the compose network
    ("198.51.100.9", "198.51.100.7", "198.51.100.9"),  # a client sending the header itself
    ("127.0.0.1", "not-an-address", "127.0.0.1"),
    ("127.0.0.1", "198.51.100.7, 10.0.0.1", "127.0.0.1"),  # one address or none
    ("127.0.0.1", None, "127.0.0.1"),
])
def test_x_real_ip_is_believed_only_from_a_trusted_proxy(peer, header, expected):
    from types import SimpleNamespace

    from healthguard.addresses import client_address, trusted_proxies
    request = SimpleNamespace(remote_addr=peer, headers={"X-Real-IP": header} if header else {})
    assert client_address(request, trusted_proxies(None)) == expected
    assert client_address(request, trusted_proxies("")) == peer  # no proxy trusted


def test_a_malformed_trusted_proxies_setting_stops_the_service():
    from healthguard.addresses import trusted_proxies
    from healthguard.config import ConfigError
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        trusted_proxies("10.0.0.0/8,nginx")
