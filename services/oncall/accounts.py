"""Staff accounts: a supervisor's password reset, and the first supervisor of a new deployment.

    python -m oncall.accounts create-admin --login ADMIN01 --name "Dr. Ada Byrne" \
        --role EMERGENCY_DOCTOR [--tier 2] [--password-stdin]

A real deployment seeds no account with a known password (the demo staff get theirs only in the
demo profile, see healthguard.migrate), so its first supervisor comes from here. Without
--password-stdin a password is generated and printed once; either way it must be changed at the
first sign-in. An existing login is refused rather than overwritten.
"""
import argparse
import sys

import psycopg2

from healthguard.config import ConfigError, load_config
from healthguard.db import Database
from healthguard.passwords import generate_password

from .sessions import set_password


def reset_password(cur, *, employee_id: str) -> str | None:
    """A one-time password for this employee, which signs in only to change it; None if there is
    no such employee."""
    cur.execute("SELECT 1 FROM employees WHERE employee_id = %s FOR UPDATE", (employee_id,))
    if cur.fetchone() is None:
        return None
    temporary = generate_password()
    set_password(cur, employee_id=employee_id, password=temporary, must_change=True)
    return temporary


def create_admin(cur, *, login: str, name: str, role: str, tier: int, password: str) -> bool:
    """A supervisor who must change this password at the first sign-in. False if the login exists."""
    cur.execute("""
        INSERT INTO employees (employee_id, login, name, role, tier, is_supervisor, password_hash)
        VALUES (%(login)s, %(login)s, %(name)s, %(role)s, %(tier)s, true, '!')
        ON CONFLICT DO NOTHING
        RETURNING employee_id""", {"login": login, "name": name, "role": role, "tier": tier})
    if cur.fetchone() is None:
        return False
    set_password(cur, employee_id=login, password=password, must_change=True)
    return True


def main(argv=None, *, stdin=sys.stdin, stdout=sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m oncall.accounts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="create the first supervisor")
    admin.add_argument("--login", required=True, help="login, also the employee id")
    admin.add_argument("--name", required=True)
    admin.add_argument("--role", default="EMERGENCY_DOCTOR")
    admin.add_argument("--tier", type=int, default=2, choices=(1, 2, 3))
    admin.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input "
                            "(otherwise one is generated and printed once)")
    args = parser.parse_args(argv)
    if args.password_stdin:
        password = stdin.readline().rstrip("\r\n")
        if len(password) < 12:
            print("oncall.accounts: the password must have at least 12 characters", file=sys.stderr)
            return 2
    else:
        password = generate_password()
    try:
        url = load_config(required=("DATABASE_URL",))["DATABASE_URL"]
    except ConfigError as exc:
        print(f"oncall.accounts: {exc}", file=sys.stderr)
        return 2
    db = Database(url, maxconn=1)
    try:
        with db.transaction() as cur:
            created = create_admin(cur, login=args.login, name=args.name, role=args.role,
                                   tier=args.tier, password=password)
    except psycopg2.Error as exc:
        print(f"oncall.accounts: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    if not created:
        print(f"oncall.accounts: login {args.login!r} already exists", file=sys.stderr)
        return 1
    print(f"created supervisor {args.login}; it must change its password at the first sign-in",
          file=stdout)
    if not args.password_stdin:
        print(f"one-time password (shown only now): {password}", file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
