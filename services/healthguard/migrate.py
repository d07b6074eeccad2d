"""Apply the numbered SQL migrations in db/migrations: `python -m healthguard.migrate`.

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

from .config import ConfigError, load_config

log = logging.getLogger("healthguard.migrate")

MIGRATION_LOCK_ID = 0x4847_0001  # "HG" + 1: the advisory lock all migrators queue on


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


def migrate(database_url: str, directory: Path | None = None) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction. Returns the versions
    applied by this call."""
    files = migration_files(directory or default_migrations_dir())
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
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )""")
                conn.commit()
                cur.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                for path in files:
                    version = path.stem
                    if version in done:
                        continue
                    cur.execute(path.read_text())
                    cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                    conn.commit()
                    applied_now.append(version)
                    log.info("applied migration %s", version)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        url = load_config(required=("DATABASE_URL",))["DATABASE_URL"]
    except ConfigError as exc:
        print(f"healthguard.migrate: {exc}", file=sys.stderr)
        return 2
    if args.create_database and create_database(url):
        log.info("created database %s", parse_dsn(url).get("dbname"))
    applied = migrate(url)
    log.info("migrations up to date (%d applied now)", len(applied))
    return 0


if __name__ == "__main__":
    sys.exit(main())
