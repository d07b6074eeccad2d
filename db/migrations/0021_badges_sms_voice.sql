-- Badges, SMS and voice (issue 23): rule steps that call or text a phone, and the webhook
-- receipts that make a replayed provider callback change nothing.

-- A phone contact method is reached by SMS or by a voice call: the step says which. `phone`
-- (issue 21's placeholder) stays and means SMS. The ledger row's channel is the step's kind
-- (sms, voice), its contact method the phone.
ALTER TABLE notification_rules DROP CONSTRAINT notification_rules_kind_check;
ALTER TABLE notification_rules ADD CONSTRAINT notification_rules_kind_check
    CHECK (kind IN ('email', 'push', 'phone', 'badge', 'sms', 'voice'));

-- Each signed callback (Twilio) or AC post (WCTP) we acted on, by a digest of its URL and
-- parameters: the same request again is a replay (403, nothing changes). Written in the
-- transaction that applies the callback, so one we failed to apply can be retried by the
-- provider. Rows older than a week are of no use (notification/channel_answers.py deletes them).
CREATE TABLE webhook_receipts (
    source       text NOT NULL CHECK (source IN ('twilio', 'wctp')),
    digest       text NOT NULL,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (source, digest)
);
CREATE INDEX webhook_receipts_by_age ON webhook_receipts (received_at);
