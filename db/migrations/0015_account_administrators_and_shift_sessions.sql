-- Accounts (issue 17, item 4): a password reset was any supervisor's act, silent and unrecorded,
-- and its one-time password never expired, so a charge nurse could take over a doctor's account
-- unnoticed. Resetting is now an account administrator's act, every reset is recorded, and the
-- one-time password expires.
ALTER TABLE employees
    -- May reset passwords and grant this capability. `python -m oncall.accounts create-admin`
    -- makes the first one; nobody has it after this migration until an operator grants it
    -- (`python -m oncall.accounts grant-admin`): which old supervisor should is not ours to guess.
    ADD COLUMN is_account_admin    boolean NOT NULL DEFAULT false,
    -- When the one-time password of a reset stops working (NULL: not a one-time password).
    ADD COLUMN password_expires_at timestamptz;

-- Who did what to whose account, when and from where. Kept for good: never pruned.
CREATE TABLE account_audit (
    audit_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action          text NOT NULL CHECK (action IN ('PASSWORD_RESET', 'ACCOUNT_ADMIN_GRANTED',
                                                    'ACCOUNT_ADMIN_REVOKED')),
    employee_id     text NOT NULL REFERENCES employees,   -- whose account
    actor_id        text REFERENCES employees,            -- who; NULL: the server's command line
    occurred_at     timestamptz NOT NULL,
    source_address  inet                                   -- the actor's client address
);
CREATE INDEX account_audit_occurred_idx ON account_audit (occurred_at DESC, audit_id DESC);
CREATE INDEX account_audit_employee_idx ON account_audit (employee_id, occurred_at DESC);

-- Shift-long sessions (issue 20, item 5): a session lasts the shift (expires_at) but ends sooner
-- when no page of its browser has reached the server for idle_timeout (last_seen_at, kept by
-- healthguard.auth). NULL idle_timeout: no idle limit (sessions opened before this migration,
-- and API clients' sessions opened the same way).
ALTER TABLE sessions ADD COLUMN idle_timeout interval;

-- The one definition of a live session, read by every service (0004): now with the idle limit.
CREATE OR REPLACE FUNCTION live_sessions(at timestamptz) RETURNS SETOF sessions
LANGUAGE sql STABLE AS $$
    SELECT * FROM sessions s
    WHERE s.revoked_at IS NULL AND s.expires_at > at
      AND (s.idle_timeout IS NULL OR coalesce(s.last_seen_at, s.created_at) + s.idle_timeout > at)
$$;
