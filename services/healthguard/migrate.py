"""Apply the numbered SQL migrations in db/migrations: `python -m healthguard.migrate`.

With `--demo` (or HG_DEMO=1 in the environment) it then gives the seeded demo staff the demo
password (db/migrations/demo/): only the demo profile (`make up`, the tests) does; a real deployment
has no account with a known password and makes its first supervisor with
`python -m oncall.accounts create-admin`.

It connects as the schema's owner: MIGRATION_DATABASE_URL, or DATABASE_URL when that is unset.
The services connect as the role migration 0011 makes (APP_ROLE, DATABASE_URL); when
POSTGRES_APP_PASSWORD is set, the migrator gives that role this password (compose: the server
asks for one; locally, trust authentication does not).

Idempotent (applied versions are recorded in schema_migrations) and safe when several copies
start at once (they queue on one advisory lock, and each re-reads what is applied after it).
"""
import argparse
import logging
import os
import sys
from pathlib import Path

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

from . import clock
from .settings import ConfigError, Flag, MigrationSettings

log = logging.getLogger("healthguard.migrate")

MIGRATION_LOCK_ID = 0x4847_0001  # "HG" + 1: the advisory lock all migrators queue on
APP_ROLE = "healthguard_app"  # the services' role, made by this migration:
APP_ROLE_MIGRATION = "0011_capacity"


def default_migrations_dir() -> Path:
    configured = os.environ.get("MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "db" / "migrations"


def migration_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    if not files:
        raise ConfigError(f"no migrations found in {directory}")
    return files


def create_database(database_url: str) -> bool:
    """Create the database named in the URL if it is missing. Returns True if it created it."""
    params = parse_dsn(database_url)
    name = params.get("dbname")
    admin = psycopg2.connect(**{**params, "dbname": "postgres"}, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            try:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                return False  # another migrator created it a moment ago
            return True
    finally:
        admin.close()


class MigrateSettings(MigrationSettings):
    # Password the migrator gives healthguard_app, the services' role (migration 0011).
    POSTGRES_APP_PASSWORD: str | None = None
    # 1: the seeded demo staff get the demo password (like --demo).
    HG_DEMO: Flag = False


def migrate(database_url: str, directory: Path | None = None, *, demo: bool = False,
            app_password: str | None = None) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction. Returns the versions
    applied by this call. `demo`: afterwards seed the demo staff's passwords (every time: it only
    fills accounts that have no usable password). `app_password`: the services' role signs in
    with it from now on."""
    directory = directory or default_migrations_dir()
    files = migration_files(directory)
    applied_now = []
    conn = psycopg2.connect(database_url, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
            conn.autocommit = False
            try:
                cur.execute("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version    text PRIMARY KEY,
                        applied_at timestamptz NOT NULL
                    )""")
                conn.commit()
                cur.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                for path in files:
                    version = path.stem
                    if version in done:
                        continue
                    cur.execute(path.read_text())
                    cur.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                                (version, clock.now()))
                    conn.commit()
                    applied_now.append(version)
                    log.info("applied migration %s", version)
                if demo:
                    for path in sorted((directory / "demo").glob("*.sql")):
                        cur.execute(path.read_text())
                        conn.commit()
                        log.info("demo profile: applied %s", path.name)
                if app_password and APP_ROLE_MIGRATION in done | set(applied_now):
                    cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(APP_ROLE)),
                                (app_password,))
                    conn.commit()
            finally:
                conn.rollback()  # nothing is pending after a success; undoes a failed migration
                conn.autocommit = True
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    finally:
        conn.close()
    return applied_now


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--create-database", action="store_true",
                        help="create the database named in DATABASE_URL if it does not exist")
    parser.add_argument("--demo", action="store_true",
                        help="also give the seeded demo staff the demo password (never in a real "
                             "deployment; HG_DEMO=1 does the same)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = MigrateSettings.load()
    except ConfigError as exc:
        print(f"healthguard.migrate: {exc}", file=sys.stderr)
        return 2
    url = settings.owner_url
    if args.create_database and create_database(url):
        log.info("created database %s", parse_dsn(url).get("dbname"))
    applied = migrate(url, demo=args.demo or settings.HG_DEMO,
                      app_password=settings.POSTGRES_APP_PASSWORD)
    log.info("migrations up to date (%d applied now)", len(applied))
    return 0


if __name__ == "__main__":
    sys.exit(main())
