"""Periodic task of the notification worker when the Alert Communicator answers by polling
(WCTP_ANSWERS=poll): ask it for what it holds for us (wctp-PollForMessages), apply each status
and reply as if it had been posted to /api/v1/wctp, and confirm their sequence numbers in the
next poll. A worker that dies before confirming gets the same messages again: applying them is
idempotent (the ledger never moves backwards, a second acknowledgement changes nothing)."""
import logging

import requests

from healthguard import clock
from healthguard.tasks import PeriodicTask

from . import channel_answers
from .channels import wctp

log = logging.getLogger(__name__)


class PollAlertCommunicator(PeriodicTask):
    name = "poll-alert-communicator"

    def __init__(self, *, db, ac: wctp.AlertCommunicator, interval: float, on_action):
        super().__init__(interval=interval)
        self.db = db
        self.ac = ac
        self.on_action = on_action
        self.received: list[int] = []
        self.session = requests.Session()

    def run_once(self) -> int:
        body = wctp.poll_for_messages(ac=self.ac, received=self.received)
        response = self.session.post(self.ac.url, data=body, timeout=wctp.TIMEOUT,
                                     headers={"Content-Type": "text/xml; charset=utf-8"})
        response.raise_for_status()
        answers = wctp.answers_in(response.content)
        self.received = []  # confirmed by the poll just answered
        now = clock.now()
        actions = []
        with self.db.transaction() as cur:
            for answer in answers:
                if answer.kind in ("status", "reply"):
                    actions.append(channel_answers.badge_answer(cur, answer=answer, at=now))
        # Confirmed only once applied: a crash before the commit gets them again.
        self.received = [a.sequence_no for a in answers if a.sequence_no is not None]
        for action in actions:
            self.on_action(action)
        return len(answers)
