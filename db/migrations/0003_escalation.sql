-- Escalation of unacknowledged incidents: when an incident was last escalated, so the next
-- escalation waits a full acknowledgement timeout again.
ALTER TABLE incidents ADD COLUMN escalated_at timestamptz;
CREATE INDEX incidents_unacknowledged_idx ON incidents (assigned_at)
    WHERE status IN ('ASSIGNED', 'REASSIGNED');
