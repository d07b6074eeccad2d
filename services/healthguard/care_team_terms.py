"""When a care-team assignment counts: one definition, read by routing (incident management's
care_teams.py: whose alarm goes to whom) and by the PHI access rule (healthguard.phi_access: who
is caring for a patient). SQL conditions over care_team_assignments `c` and ward_charge_nurses
`w` at the instant %(at)s."""

# A current assignment: not ended, within its shift (CURRENT_PERIOD), its patient still admitted
# on its ward (ON_WARD, over patients `p`). Routing's batch reader (care_teams_of) checks the
# patient part against the patients of its batch, which it reads anyway.
CURRENT_PERIOD = "c.ended_at IS NULL AND c.starts_at <= %(at)s AND c.ends_at > %(at)s"
ON_WARD = "p.patient_id = c.patient_id AND p.ward = c.ward AND p.status = 'ADMITTED'"
CURRENT = f"{CURRENT_PERIOD} AND EXISTS (SELECT 1 FROM patients p WHERE {ON_WARD})"  # noqa: S608
CURRENT_CHARGE = "w.ended_at IS NULL AND w.starts_at <= %(at)s AND w.ends_at > %(at)s"
