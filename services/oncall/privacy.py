"""The PHI access log as the privacy office reads it: by patient, by user, by time, newest first,
a page at a time, or all of a search as CSV. Nobody else reads it (auth.privacy_officer_only)."""
import csv
import io

LOG_COLUMNS = ("access_id", "accessed_at", "patient_id", "employee_id", "employee_name", "device_id",
               "accessor_kind", "route", "address", "purpose", "reason")


def search_access_log(cur, *, patient_id=None, employee_id=None, since=None, until=None,
                      before_id=None, limit: int) -> list[dict]:
    cur.execute("""
        SELECT l.access_id, l.accessed_at, l.patient_id, l.employee_id, e.name AS employee_name,
               l.device_id, l.accessor_kind, l.route, host(l.address) AS address, l.purpose, l.reason
        FROM phi_access_log l LEFT JOIN employees e ON e.employee_id = l.employee_id
        WHERE (%(patient)s::text IS NULL OR l.patient_id = %(patient)s)
          AND (%(employee)s::text IS NULL OR l.employee_id = %(employee)s)
          AND (%(since)s::timestamptz IS NULL OR l.accessed_at >= %(since)s)
          AND (%(until)s::timestamptz IS NULL OR l.accessed_at < %(until)s)
          AND (%(before)s::bigint IS NULL OR l.access_id < %(before)s)
        ORDER BY l.access_id DESC
        LIMIT %(limit)s
    """, {"patient": patient_id, "employee": employee_id, "since": since, "until": until,
          "before": before_id, "limit": limit})
    return [{**row, "accessed_at": row["accessed_at"].isoformat()} for row in cur.fetchall()]


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LOG_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        # A cell a spreadsheet would run as a formula is quoted as text.
        writer.writerow({key: _cell(row.get(key)) for key in LOG_COLUMNS})
    return out.getvalue()


def _cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
