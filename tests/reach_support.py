"""What the reach tests (test_reach, test_reach_sigkill, test_badges_sms_voice_pipeline) share:
the notification service's reach API as a clinician uses it, the settings of senders a test may
kill, and issue 21's SIGKILL scenario, for any channel whose fake provider can hold a request."""

import requests

from tests.reach_edges import pid_owning_connection
from tests.support import wait_for

LEASE_SECONDS = 15

# One send at a time per worker: a killed worker holds exactly the one it sent. Its row stays
# 'sending' until the lease is over.
KILLABLE_SENDERS = {
    "SEND_CONCURRENCY": "1",
    "SEND_INTERVAL_SECONDS": "0.5",
    "SEND_LEASE_SECONDS": str(LEASE_SECONDS),
}


def push_and_mail_settings(edges, vapid_private: str, vapid_public: str) -> dict:
    """The notification service's settings for reach_edges.running_edges's push service and
    mailbox."""
    return {
        "VAPID_PRIVATE_KEY": vapid_private,
        "VAPID_PUBLIC_KEY": vapid_public,
        "VAPID_SUBJECT": "mailto:ops@hospital.example",
        "PUSH_ALLOW_LOCAL_HTTP": "true",
        "SMTP_URL": edges["mail"].url,
        "SMTP_FROM": "healthguard@hospital.example",
    }


class ReachApi:
    """The notification service's reach API, as the app and a supervisor use it."""

    def __init__(self, url):
        self.url = url

    def call(self, method, path, token=None, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=10, **kwargs)

    def add_verified(self, token, kind, address, code_of):
        """Adds a contact method and verifies it with the code sent to it: code_of(address, as
        stored) finds the code at the edge, or None until it has arrived."""
        added = self.call("POST", "/contact-methods", token, json={"kind": kind, "address": address})
        assert added.status_code == 201 and added.json()["verification_sent"], added.text
        method = added.json()["contact_method"]
        code = wait_for(lambda: code_of(method["address"]), 15, 0.1, f"the {kind} verification code")
        verified = self.call(
            "POST", f"/contact-methods/{method['contact_method_id']}/verify", token, json={"code": code}
        )
        assert verified.status_code == 200 and verified.json()["verified"], verified.text
        return verified.json()

    def rules(self, token, steps):
        answer = self.call("PUT", "/notification-rules", token, json={"HIGH": steps})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def ledger(self, token, incident_id):
        answer = self.call("GET", f"/deliveries?incident_id={incident_id}", token)
        assert answer.status_code == 200, answer.text
        return answer.json()["deliveries"]

    def ledger_until(self, token, incident_id, predicate, what, timeout=20):
        """The incident's ledger once it has rows and predicate(rows) holds."""

        def reached():
            rows = self.ledger(token, incident_id)
            return rows if rows and predicate(rows) else None

        return wait_for(reached, timeout, 0.1, what)


def kill_the_worker_holding_a_send(
    *, channel, provider, workers, api, db, clock, patients, settled
) -> tuple[list[dict], dict]:
    """Issue 21's SIGKILL scenario. A CRITICAL alarm for each of `patients` while `provider` (the
    fake push service or Alert Communicator: `hold`, `held` with the sender's `client_port`,
    `release`) holds the first request it gets; the notification worker (of `workers`,
    ServiceProcesses with KILLABLE_SENDERS) that sent it is SIGKILLed; the survivor sends every
    other `channel` attempt; the clock moves past the lease and every attempt reaches a status
    in `settled`. Returns (the attempts, the held request); the test asserts what each channel
    then promises."""
    provider.hold = True
    incident_ids = [
        api.incident_of(alert)["incident_id"]
        for alert in [api.post_alert(patient_id=patient, alert_type="CARDIAC_ARREST") for patient in patients]
    ]
    held = wait_for(lambda: list(provider.held) or None, 20, 0.05, f"a {channel} request held mid-send")[0]
    by_pid = {copy.worker_proc.pid: copy for copy in workers}
    sender = wait_for(
        lambda: pid_owning_connection(held["client_port"], by_pid),
        5,
        0.02,
        "the worker holding the connection",
    )
    by_pid[sender].kill()  # SIGKILL: no cleanup, its row stays 'sending'
    provider.release.set()

    def attempts():
        with db.transaction() as cur:
            cur.execute(
                """SELECT attempt_id, incident_id, status, reason FROM delivery_attempts
                   WHERE channel = %s AND incident_id = ANY(%s) ORDER BY attempt_id""",
                (channel, incident_ids),
            )
            return cur.fetchall()

    wait_for(
        lambda: len([r for r in attempts() if r["status"] == "sent"]) == len(incident_ids) - 1,
        30,
        0.1,
        f"every other {channel} attempt sent by the surviving worker",
    )
    clock.advance(LEASE_SECONDS + 1)
    rows = wait_for(
        lambda: (rows := attempts()) and all(r["status"] in settled for r in rows) and rows,
        30,
        0.1,
        f"the abandoned {channel} send taken over ({' or '.join(settled)})",
    )
    return rows, held
