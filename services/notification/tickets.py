"""One-time WebSocket tickets. A browser cannot set a header on a WebSocket, and a session token in
a URL is written to proxy logs and browser history; so the SPA trades its session (in a header)
for a ticket that lives TICKET_SECONDS, opens one socket, and is worth nothing afterwards.

Only the ticket's SHA-256 is stored. Redeeming is one UPDATE ... WHERE used_at IS NULL, so two
instances (or two threads) racing with the same ticket cannot both win: the second finds the row
already used once the first commits.
"""
import datetime
import secrets

from healthguard import clock
from healthguard.auth import Clinician, token_hash

TICKET_SECONDS = 30


def issue_ticket(cur, *, session_id: int) -> tuple[str, datetime.datetime]:
    """A new ticket for this session, and when it expires. Expired tickets are swept here: they
    are a few rows per sign-in and worth nothing once expired."""
    now = clock.now()
    expires_at = now + datetime.timedelta(seconds=TICKET_SECONDS)
    cur.execute("DELETE FROM socket_tickets WHERE expires_at <= %s", (now,))
    ticket = secrets.token_urlsafe(32)
    cur.execute("INSERT INTO socket_tickets (ticket_hash, session_id, expires_at) VALUES (%s, %s, %s)",
                (token_hash(ticket), session_id, expires_at))
    return ticket, expires_at


def redeem_ticket(cur, ticket: str) -> Clinician | None:
    """The clinician whose live session asked for this unused, unexpired ticket; None otherwise.
    The ticket is spent even when the session has ended since: it never opens anything again."""
    now = clock.now()
    cur.execute("""
        WITH redeemed AS (
            UPDATE socket_tickets SET used_at = %(now)s
            WHERE ticket_hash = %(hash)s AND used_at IS NULL AND expires_at > %(now)s
            RETURNING session_id
        )
        SELECT e.employee_id, e.login, e.name, e.role, e.tier, e.is_supervisor, s.session_id
        FROM redeemed r
        JOIN live_sessions(%(now)s) s USING (session_id)
        JOIN employees e USING (employee_id)
    """, {"now": now, "hash": token_hash(ticket)})
    row = cur.fetchone()
    return Clinician(**row) if row else None
