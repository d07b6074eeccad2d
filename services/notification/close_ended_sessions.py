"""Background task: close the sockets of sessions that ended (logout, expiry) within seconds.

The on-call service revokes a session by setting sessions.revoked_at; it knows nothing of
sockets. Every few seconds this task asks, in ONE query for all sockets of this process, which
of their sessions are still live, and closes the others with WS_CLOSE_SESSION_ENDED (healthguard.domain).
"""
import logging

from healthguard import clock
from healthguard.domain import WS_CLOSE_SESSION_ENDED
from healthguard.tasks import PeriodicTask

from .hub import Hub

log = logging.getLogger(__name__)


class CloseEndedSessions(PeriodicTask):
    """Closes the sockets whose session was revoked (logout) or ran out, within seconds."""

    name = "close-ended-sessions"

    def __init__(self, *, db, hub: Hub, interval: float):
        super().__init__(interval=interval)
        self.db, self.hub = db, hub

    def run_once(self) -> int:
        session_ids = sorted({sock.session_id for sock in self.hub.sockets()})
        if not session_ids:
            return 0
        with self.db.transaction() as cur:
            cur.execute("""
                SELECT session_id FROM live_sessions(%s) WHERE session_id = ANY(%s)""",
                        (clock.now(), session_ids))
            live = {row["session_id"] for row in cur.fetchall()}
        # Only sessions checked here: a socket opened meanwhile has not been looked at yet.
        ended = self.hub.end_sessions(set(session_ids) - live, WS_CLOSE_SESSION_ENDED,
                                      "the session ended; sign in again")
        if ended:
            log.info("closed sockets of ended sessions", extra={"sockets": ended})
        return ended
