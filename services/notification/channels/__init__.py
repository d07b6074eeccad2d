"""Off-tab channels (Web Push, email; issue 23 adds badge/WCTP, SMS and voice).

A channel sends one ledger attempt (notification/ledger.py) and says how it went; the sending task
(notification/send_due_attempts.py) owns retries, fall-through and the ledger. Only the interface
lives here (base.py); each channel is one module beside it.
"""
from .base import Alarm, Attempt, Channel, SendResult, for_kind, kinds, register, registered

__all__ = ["Alarm", "Attempt", "Channel", "SendResult", "for_kind", "kinds", "register", "registered"]
