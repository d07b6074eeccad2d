-- What a clinician chose about the ward console itself, kept by the server so that it holds in
-- every tab and on every workstation they sign in at (notification/preferences.py).
--
-- background_alerts_not_now_until: "Not now" to the prompt asking for system notifications;
-- the prompt stays away until then (a week after the answer). NULL: never answered.
CREATE TABLE clinician_preferences (
    employee_id                      text PRIMARY KEY REFERENCES employees ON DELETE CASCADE,
    background_alerts_not_now_until  timestamptz,
    updated_at                       timestamptz NOT NULL
);
