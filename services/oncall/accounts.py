"""Staff accounts: the account administrators' password resets and grants, their audit, and the
first account administrator of a new deployment.

    python -m oncall.accounts create-admin --login ADMIN01 --name "Dr. Ada Byrne" \
        --role EMERGENCY_DOCTOR [--tier 2] [--password-stdin]
    python -m oncall.accounts grant-admin --login D02
    python -m oncall.accounts reset-password --login D02

A real deployment seeds no account with a known password (the demo staff get theirs only in the
demo profile, see healthguard.migrate), so its first supervisor comes from here: an account
administrator, who may reset passwords and grant that capability through the API. Without
--password-stdin a password is generated and printed once; either way it must be changed at the
first sign-in, within ONE_TIME_PASSWORD_HOURS. An existing login is refused rather than
overwritten. grant-admin and reset-password are the operator's way back in when no account
administrator can sign in; they are audited like the API's, with no actor (the command line).
"""
import argparse
import datetime as dt
import sys

import psycopg2

from healthguard import clock
from healthguard.db import Database
from healthguard.incident_events import IncidentEvent, person
from healthguard.outbox import enqueue
from healthguard.passwords import generate_password, weakness
from healthguard.settings import ConfigError

from .sessions import set_password
from .settings import AccountsSettings


def _record(cur, *, action: str, employee_id: str, actor_id: str | None, address: str | None,
            at: dt.datetime) -> int:
    cur.execute("""
        INSERT INTO account_audit (action, employee_id, actor_id, occurred_at, source_address)
        VALUES (%s, %s, %s, %s, %s) RETURNING audit_id""",
                (action, employee_id, actor_id, at, address))
    return cur.fetchone()["audit_id"]


def _employee(cur, employee_id: str) -> dict | None:
    cur.execute("""
        SELECT employee_id, name, role, is_account_admin FROM employees
        WHERE employee_id = %s FOR UPDATE""", (employee_id,))
    return cur.fetchone()


def _tell_of_reset(cur, *, employee: dict, actor: dict | None, audit_id: int, at: dt.datetime) -> None:
    """The person whose password was reset reads it in their notifications (the bell) at their
    next sign-in: the same path as an incident's news (outbox -> `notifications` queue ->
    notification service), so a reset they did not ask for does not go unnoticed."""
    by = person(actor) if actor else "an operator on the server"
    enqueue(cur, [IncidentEvent(
        event_id=f"password-reset-{audit_id}", type="PASSWORD_RESET",
        recipients=[employee["employee_id"]], incident_id=None,
        title="Your password was reset",
        message=(f"Your password was reset by {by}, and every session of yours was signed out. "
                 "If you did not ask for this, tell an account administrator at once."),
        severity=None, data={}, occurred_at=at.isoformat()).outbox_row()])


def reset_password(cur, *, employee_id: str, actor: dict | None, address: str | None,
                   lifetime: dt.timedelta) -> dict | None:
    """Give this employee a one-time password, which signs in only to change it and stops
    working after `lifetime`: {temporary_password, expires_at}; None if there is no such
    employee. Every session of theirs ends; the reset is audited (actor: the account
    administrator's employees row, None on the command line) and the employee is told."""
    employee = _employee(cur, employee_id)
    if employee is None:
        return None
    now = clock.now()
    temporary = generate_password()
    expires_at = now + lifetime
    set_password(cur, employee_id=employee_id, password=temporary, must_change=True,
                 expires_at=expires_at)
    audit_id = _record(cur, action="PASSWORD_RESET", employee_id=employee_id,
                       actor_id=actor["employee_id"] if actor else None, address=address, at=now)
    _tell_of_reset(cur, employee=employee, actor=actor, audit_id=audit_id, at=now)
    return {"temporary_password": temporary, "expires_at": expires_at}


class LastOwnAdministration(ValueError):
    """An account administrator may not take the capability from themself (nobody else may be
    left to grant it back)."""


def set_account_admin(cur, *, employee_id: str, admin: bool, actor_id: str | None,
                      address: str | None) -> bool | None:
    """Grant or withdraw the account-administrator capability, audited when it changes. None if
    there is no such employee; LastOwnAdministration for an administrator's own withdrawal.
    True if it changed."""
    employee = _employee(cur, employee_id)
    if employee is None:
        return None
    if not admin and employee_id == actor_id:
        raise LastOwnAdministration()
    if employee["is_account_admin"] == admin:
        return False
    cur.execute("UPDATE employees SET is_account_admin = %s WHERE employee_id = %s", (admin, employee_id))
    _record(cur, action="ACCOUNT_ADMIN_GRANTED" if admin else "ACCOUNT_ADMIN_REVOKED",
            employee_id=employee_id, actor_id=actor_id, address=address, at=clock.now())
    return True


def account_audit(cur, *, employee_id: str | None, before_id: int | None, limit: int) -> list[dict]:
    """What was done to accounts, newest first: who (actor), whom (employee), when, from where."""
    cur.execute("""
        SELECT a.audit_id, a.action, a.employee_id, e.name AS employee_name,
               a.actor_id, actor.name AS actor_name, a.occurred_at,
               host(a.source_address) AS source_address
        FROM account_audit a
        JOIN employees e ON e.employee_id = a.employee_id
        LEFT JOIN employees actor ON actor.employee_id = a.actor_id
        WHERE (%(employee)s::text IS NULL OR a.employee_id = %(employee)s)
          AND (%(before)s::bigint IS NULL OR a.audit_id < %(before)s)
        ORDER BY a.audit_id DESC
        LIMIT %(limit)s""", {"employee": employee_id, "before": before_id, "limit": limit})
    return [{**row, "occurred_at": row["occurred_at"].isoformat()} for row in cur.fetchall()]


def create_admin(cur, *, login: str, name: str, role: str, tier: int, password: str,
                 lifetime: dt.timedelta) -> bool:
    """A supervisor and account administrator who must change this password at the first sign-in,
    within `lifetime`. False if the login exists."""
    cur.execute("""
        INSERT INTO employees (employee_id, login, name, role, tier, is_supervisor, is_account_admin,
                               password_hash, created_at)
        VALUES (%(login)s, %(login)s, %(name)s, %(role)s, %(tier)s, true, true, '!', %(now)s)
        ON CONFLICT DO NOTHING
        RETURNING employee_id""", {"login": login, "name": name, "role": role, "tier": tier,
                                   "now": clock.now()})
    if cur.fetchone() is None:
        return False
    now = clock.now()
    set_password(cur, employee_id=login, password=password, must_change=True, expires_at=now + lifetime)
    _record(cur, action="ACCOUNT_ADMIN_GRANTED", employee_id=login, actor_id=None, address=None, at=now)
    return True


def _command_line(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m oncall.accounts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin",
                                help="create the first supervisor, an account administrator")
    admin.add_argument("--login", required=True, help="login, also the employee id")
    admin.add_argument("--name", required=True)
    admin.add_argument("--role", default="EMERGENCY_DOCTOR")
    admin.add_argument("--tier", type=int, default=2, choices=(1, 2, 3))
    admin.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input "
                            "(otherwise one is generated and printed once)")
    grant = commands.add_parser("grant-admin", help="make an employee an account administrator")
    grant.add_argument("--login", required=True, help="the employee id")
    reset = commands.add_parser("reset-password", help="give an employee a one-time password")
    reset.add_argument("--login", required=True, help="the employee id")
    return parser.parse_args(argv)


def _run(db: Database, args, password: str | None, lifetime: dt.timedelta) -> tuple[int, str]:
    """(exit status, what to print) for one command, in one transaction."""
    with db.transaction() as cur:
        if args.command == "create-admin":
            if not create_admin(cur, login=args.login, name=args.name, role=args.role,
                                tier=args.tier, password=password, lifetime=lifetime):
                return 1, f"login {args.login!r} already exists"
            text = (f"created supervisor and account administrator {args.login}; it must change "
                    f"its password at the first sign-in, within {lifetime}")
            if not args.password_stdin:
                text += f"\none-time password (shown only now): {password}"
            return 0, text
        if args.command == "grant-admin":
            changed = set_account_admin(cur, employee_id=args.login, admin=True, actor_id=None,
                                        address=None)
            if changed is None:
                return 1, f"no employee {args.login!r}"
            return 0, f"{args.login} is an account administrator" + ("" if changed else " already")
        reset = reset_password(cur, employee_id=args.login, actor=None, address=None,
                               lifetime=lifetime)
        if reset is None:
            return 1, f"no employee {args.login!r}"
        return 0, (f"one-time password for {args.login} (shown only now, valid until "
                   f"{reset['expires_at'].isoformat(timespec='minutes')}): "
                   f"{reset['temporary_password']}")


def main(argv=None, *, stdin=sys.stdin, stdout=sys.stdout) -> int:
    args = _command_line(argv)
    password = None
    if args.command == "create-admin":
        if args.password_stdin:
            password = stdin.readline().rstrip("\r\n")
            reason = weakness(password, login=args.login, name=args.name)
            if reason:
                print(f"oncall.accounts: {reason}", file=sys.stderr)
                return 2
        else:
            password = generate_password()
    try:
        settings = AccountsSettings.load()
    except ConfigError as exc:
        print(f"oncall.accounts: {exc}", file=sys.stderr)
        return 2
    db = Database(settings.DATABASE_URL, maxconn=1)
    try:
        status, text = _run(db, args, password, settings.one_time_password_lifetime)
    except psycopg2.Error as exc:
        print(f"oncall.accounts: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(text if status == 0 else f"oncall.accounts: {text}", file=stdout if status == 0 else sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
