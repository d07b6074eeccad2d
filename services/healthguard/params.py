"""Reading request parameters the same way in every service: timestamps, lists and keyset
pagination, each answering a 400 that names the parameter when it is malformed."""
import datetime

from flask import request

from .db import BIGINT_MAX
from .errors import ApiError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


def parse_timestamp(value, field: str) -> datetime.datetime:
    """An ISO-8601 date-time with a UTC offset ('2026-02-01T10:15:00Z')."""
    if not isinstance(value, str):
        raise ApiError(400, f"{field} must be an ISO-8601 date-time string", field=field)
    try:
        parsed = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(400, f"{field} is not an ISO-8601 date-time: {value[:40]!r}", field=field) from None
    if parsed.tzinfo is None:
        raise ApiError(400, f"{field} must include a UTC offset, e.g. 2026-02-01T10:15:00Z", field=field)
    return parsed


def query_timestamp(name: str) -> datetime.datetime | None:
    value = request.args.get(name)
    return None if value in (None, "") else parse_timestamp(value, name)


def query_list(name: str, *, allowed=None) -> list[str]:
    """A parameter given several times or comma-separated: ?status=OPEN&status=ASSIGNED,ACKNOWLEDGED."""
    values = [part.strip() for raw in request.args.getlist(name) for part in raw.split(",") if part.strip()]
    if allowed is not None:
        unknown = [value for value in values if value not in allowed]
        if unknown:
            raise ApiError(400, f"unknown {name} {', '.join(unknown)}; expected one of "
                           + ", ".join(allowed), field=name)
    return values


def page_params(*, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> tuple[int, int | None]:
    """(limit, cursor) for keyset pagination over a bigint id, newest first: the cursor is the
    `next` value of the previous page, i.e. the last id it held."""
    raw_limit = request.args.get("limit", "")
    try:
        limit = int(raw_limit) if raw_limit else default
    except ValueError:
        raise ApiError(400, "limit must be an integer", field="limit") from None
    if not 1 <= limit <= maximum:
        raise ApiError(400, f"limit must be between 1 and {maximum}", field="limit")
    raw_cursor = request.args.get("cursor", "")
    if not raw_cursor:
        return limit, None
    if not raw_cursor.isdigit() or not 1 <= int(raw_cursor) <= BIGINT_MAX:
        raise ApiError(400, "cursor must be the `next` value of a previous page", field="cursor")
    return limit, int(raw_cursor)


def next_cursor(rows: list[dict], limit: int, key: str) -> str | None:
    """The cursor of the page after `rows`, or None when this was the last page. Callers fetch
    limit + 1 rows to know whether another page exists."""
    return str(rows[limit - 1][key]) if len(rows) > limit else None
