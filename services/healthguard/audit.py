"""Tamper evidence for the incident audit trail (incident_history) and the PHI access log.

Each is a hash chain (migration 0020): a sealed row stores its position (chain_seq), the previous
row's hash (prev_hash) and SHA-256(prev_hash || its content) (row_hash). Rows are written
unsealed, with no lock on any request's path, and sealed in order by the database function
seal_audit_chains(), which one process at a time runs (an advisory lock): the chain cannot fork
however many services write. Oncall's worker seals every few seconds (seal_audit_chains.py) and
periodically writes each head out: to the log, to audit_chain_checkpoints, and as the gauges
audit_chain_head_hash / audit_chain_rows, so a rewrite of history shows outside the database.

    python -m healthguard.audit verify       walk both chains; exit 1 naming the first broken link
    python -m healthguard.audit seal         seal what is unsealed now
    python -m healthguard.audit retention --export-dir DIR [--years N] [--dry-run]
        export each month of the PHI access log older than N years (PHI_LOG_RETENTION_YEARS,
        default 6) as CSV into DIR, then drop its partition; the chain is re-anchored at the
        first row kept. Run as the schema's owner (MIGRATION_DATABASE_URL).
"""
import argparse
import datetime as dt
import gzip
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extras
from prometheus_client.core import GaugeMetricFamily
from psycopg2 import sql

from . import clock
from .settings import ConfigError, MigrationSettings, PhiLogSettings

log = logging.getLogger("healthguard.audit")

# chain -> (table, key columns naming a row)
CHAINS = {
    "incident_history": ("incident_history", ("history_id",)),
    "phi_access_log": ("phi_access_log", ("access_id", "accessed_at")),
}


@dataclass
class Broken:
    chain: str
    row: dict           # the key of the first row whose link is broken
    chain_seq: int | None
    problem: str

    def __str__(self) -> str:
        key = ", ".join(f"{name}={value}" for name, value in self.row.items())
        return f"{self.chain}: broken at chain_seq {self.chain_seq} ({key}): {self.problem}"


def seal(cur, *, batch: int = 5000) -> dict:
    """Seal the unsealed rows of both chains (as the database's seal_audit_chains does).
    Returns chain -> rows sealed."""
    cur.execute("SELECT chain, sealed FROM seal_audit_chains(%s, %s)", (clock.now(), batch))
    return {row["chain"]: row["sealed"] for row in cur.fetchall()}


def checkpoint(cur) -> list[dict]:
    """Write each chain's head out: a checkpoint row and a log line."""
    cur.execute("SELECT chain, seq, encode(head_hash, 'hex') AS head FROM checkpoint_audit_chains(%s)",
                (clock.now(),))
    heads = cur.fetchall()
    for head in heads:
        log.info("audit chain head",
                 extra={"chain": head["chain"], "seq": head["seq"], "head_hash": head["head"]})
    return heads


def verify_chain(cur, chain: str) -> tuple[int, Broken | None]:
    """Walk one chain in order: every row's hash recomputed from its content and its
    predecessor, positions without gaps, the head where the chain ends. Returns (rows walked,
    the first broken link or None)."""
    table, key = CHAINS[chain]
    cur.execute("SELECT seq, head_hash, anchor_seq, anchor_hash FROM audit_chain_heads WHERE chain = %s",
                (chain,))
    head = cur.fetchone()
    cur.execute(sql.SQL("""
        SELECT {key}, t.chain_seq, t.prev_hash, t.row_hash,
               audit_link(t.prev_hash, audit_content(t)) AS recomputed
        FROM {table} t WHERE t.chain_seq IS NOT NULL ORDER BY t.chain_seq
    """).format(key=sql.SQL(", ").join(sql.SQL("t.") + sql.Identifier(k) for k in key),
                table=sql.Identifier(table)))
    expected_seq, expected_prev = head["anchor_seq"] + 1, _bytes(head["anchor_hash"])
    walked = 0
    while True:
        rows = cur.fetchmany(2000)
        if not rows:
            break
        for row in rows:
            walked += 1
            where = {k: _plain(row[k]) for k in key}

            def broken(problem: str, row=row, where=where) -> Broken:
                return Broken(chain, where, row["chain_seq"], problem)
            if row["chain_seq"] != expected_seq:
                return walked, broken(f"expected position {expected_seq}: rows before it are missing")
            if _bytes(row["prev_hash"]) != expected_prev:
                return walked, broken("its previous hash is not the hash of the row before it "
                                      "(a row before it was changed or replaced)")
            if _bytes(row["recomputed"]) != _bytes(row["row_hash"]):
                return walked, broken("its content does not match its hash (the row was changed)")
            expected_seq, expected_prev = expected_seq + 1, _bytes(row["row_hash"])
    if expected_seq - 1 != head["seq"] or expected_prev != _bytes(head["head_hash"]):
        return walked, Broken(chain, {}, head["seq"],
                              f"the chain ends at position {expected_seq - 1}, its recorded head at "
                              f"{head['seq']}: rows at the end are missing or the head was changed")
    return walked, None


def verify(cur) -> tuple[dict, list[Broken]]:
    walked, broken = {}, []
    for chain in CHAINS:
        walked[chain], first = verify_chain(cur, chain)
        if first is not None:
            broken.append(first)
    return walked, broken


def _bytes(value) -> bytes | None:
    return bytes(value) if value is not None else None


def _plain(value):
    return value.isoformat() if isinstance(value, dt.datetime) else value


# --------------------------------------------------------------------------- the gauges
def head_gauges(cur) -> list:
    """audit_chain_head_hash{chain}: the head hash's first 52 bits as a number (exactly
    representable in a float), and audit_chain_rows{chain}: its length."""
    cur.execute("SELECT chain, seq, head_hash FROM audit_chain_heads ORDER BY chain")
    hashes = GaugeMetricFamily("audit_chain_head_hash",
                               "First 52 bits of the audit chain's head hash, as a number", labels=["chain"])
    rows = GaugeMetricFamily("audit_chain_rows", "Rows sealed into the audit chain", labels=["chain"])
    for row in cur.fetchall():
        hashes.add_metric([row["chain"]], float(head_number(_bytes(row["head_hash"]))))
        rows.add_metric([row["chain"]], float(row["seq"]))
    return [hashes, rows]


def head_number(head: bytes | None) -> int:
    return int.from_bytes(head[:7], "big") >> 4 if head else 0


class AuditChainCollector:
    """Scrape-time gauges of the chains' heads (healthguard.metrics.add_scrape_collector)."""

    def __init__(self, db):
        self.db = db

    def describe(self):
        return []

    def collect(self):
        try:
            with self.db.transaction() as cur:
                yield from head_gauges(cur)
        except psycopg2.Error:
            log.warning("audit chain gauges not read: database unavailable")


# --------------------------------------------------------------------------- retention
def expired_partitions(cur, *, years: int, now: dt.datetime) -> list[dict]:
    """Monthly partitions of the PHI access log wholly older than `years` before `now`."""
    cur.execute("""
        SELECT c.relname AS partition, pg_get_expr(c.relpartbound, c.oid) AS bounds
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'phi_access_log'::regclass AND c.relname <> 'phi_access_log_default'
        ORDER BY c.relname""")
    cutoff = now - dt.timedelta(days=round(365.25 * years))
    expired = []
    for row in cur.fetchall():
        upper = row["bounds"].split("TO ('", 1)[1].split("'", 1)[0]
        if dt.datetime.fromisoformat(upper).astimezone(dt.UTC) <= cutoff:
            expired.append({"partition": row["partition"], "upper": upper})
    return expired


def export_and_drop(conn, *, export_dir: Path, years: int, dry_run: bool = False) -> list[str]:
    """Each expired month: its rows to <export_dir>/<partition>.csv.gz (with their hashes, so
    the export itself can be checked), then the partition dropped and the chain re-anchored."""
    done = []
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        for part in expired_partitions(cur, years=years, now=clock.now()):
            name = part["partition"]
            target = export_dir / f"{name}.csv.gz"
            if dry_run:
                done.append(name)
                continue
            cur.execute("SELECT pg_advisory_xact_lock(4847, 24)")  # no sealing meanwhile
            with gzip.open(target, "wt", newline="") as out:
                export = sql.SQL("COPY (SELECT * FROM {} ORDER BY chain_seq NULLS LAST, access_id) "
                                 "TO STDOUT WITH CSV HEADER").format(sql.Identifier(name))
                cur.copy_expert(export.as_string(conn), out)
            cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            # The first row kept follows the last row dropped: it becomes the chain's anchor.
            cur.execute("""
                UPDATE audit_chain_heads h SET anchor_seq = coalesce(first.chain_seq - 1, h.seq),
                                               anchor_hash = CASE WHEN first.chain_seq IS NULL
                                                                  THEN h.head_hash ELSE first.prev_hash END
                FROM (SELECT (SELECT chain_seq FROM phi_access_log WHERE chain_seq IS NOT NULL
                              ORDER BY chain_seq LIMIT 1) AS chain_seq,
                             (SELECT prev_hash FROM phi_access_log WHERE chain_seq IS NOT NULL
                              ORDER BY chain_seq LIMIT 1) AS prev_hash) first
                WHERE h.chain = 'phi_access_log'""")
            cur.execute("""
                INSERT INTO audit_chain_checkpoints (chain, seq, head_hash, written_at, note)
                SELECT chain, anchor_seq, anchor_hash, %s, %s FROM audit_chain_heads
                WHERE chain = 'phi_access_log'
            """, (clock.now(), f"retention: {name} exported to {target.name} and dropped"))
            conn.commit()
            log.info("PHI access log partition exported and dropped",
                     extra={"partition": name, "file": str(target)})
            done.append(name)
    return done


# --------------------------------------------------------------------------- the command
class AuditSettings(MigrationSettings, PhiLogSettings):
    """The schema owner's connection and the PHI log's retention."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m healthguard.audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("verify", help="walk both chains; exit 1 at the first broken link")
    commands.add_parser("seal", help="seal the rows not sealed yet")
    retention = commands.add_parser("retention", help="export and drop expired months of the PHI log")
    retention.add_argument("--export-dir", type=Path, required=True)
    retention.add_argument("--years", type=int)
    retention.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = AuditSettings.load()
        conn = psycopg2.connect(settings.owner_url, connect_timeout=5, application_name="healthguard-audit")
        years = args.years if args.command == "retention" and args.years else settings.PHI_LOG_RETENTION_YEARS
    except (ConfigError, psycopg2.Error) as exc:
        print(f"healthguard.audit: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "retention":
            os.makedirs(args.export_dir, exist_ok=True)
            dropped = export_and_drop(conn, export_dir=args.export_dir, years=years, dry_run=args.dry_run)
            print(("would export and drop: " if args.dry_run else "exported and dropped: ")
                  + (", ".join(dropped) or f"nothing older than {years} years"))
            return 0
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            if args.command == "seal":
                print(seal(cur))
                conn.commit()
                return 0
            walked, broken = verify(cur)
        for chain, count in walked.items():
            print(f"{chain}: {count} sealed rows walked")
        for link in broken:
            print(f"BROKEN {link}")
        if not broken:
            print("both chains verify")
        return 1 if broken else 0
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
