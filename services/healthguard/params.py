"""Keyset pagination, the same in every list: a page of `limit` rows, newest first, and the
cursor of the next page (the last id this page held). The request side is declared in each
service's models (healthguard.api); this is what the answer needs."""

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


def next_cursor(rows: list[dict], limit: int, key: str) -> str | None:
    """The cursor of the page after `rows`, or None when this was the last page. Callers fetch
    limit + 1 rows to know whether another page exists."""
    return str(rows[limit - 1][key]) if len(rows) > limit else None
