"""The privacy office's routes: the PHI access log, searched and exported (privacy officers only)."""
from flask import Blueprint, Response

from healthguard.api import responses
from healthguard.auth import privacy_officer_only
from healthguard.web import platform

from . import privacy
from .schemas import AccessLog, AccessLogExportFilter, AccessLogFilter, api

blueprint = Blueprint("privacy", __name__, url_prefix="/api/v1/privacy")
EXPORT_MAX_ROWS = 100_000


@blueprint.get("/access-log")
@privacy_officer_only
@api.validate(query=AccessLogFilter, resp=responses({200: AccessLog}, [403, 422]))
def search_access_log(query: AccessLogFilter):
    """Who read which patient's data: by patient, by user, by time, newest first (privacy officers)

    Every answer of the services that carried a patient's identifying data wrote one entry per
    patient. `next`: pass as `before` for the next page."""
    with platform().db.transaction() as cur:
        rows = privacy.search_access_log(cur, patient_id=query.patient_id, employee_id=query.employee_id,
                                         since=query.since, until=query.until, before_id=query.before,
                                         limit=query.limit + 1)
    return {"entries": rows[:query.limit],
            "next": rows[query.limit - 1]["access_id"] if len(rows) > query.limit else None}


@blueprint.get("/access-log/export")
@privacy_officer_only
@api.validate(query=AccessLogExportFilter, resp=responses({200: None}, [403, 422]))
def export_access_log(query: AccessLogExportFilter):
    """The same search as CSV (text/csv), newest first, at most 100,000 entries (privacy officers)"""
    with platform().db.transaction() as cur:
        rows = privacy.search_access_log(cur, patient_id=query.patient_id, employee_id=query.employee_id,
                                         since=query.since, until=query.until, limit=EXPORT_MAX_ROWS)
    return Response(privacy.as_csv(rows), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="phi-access-log.csv"'})
