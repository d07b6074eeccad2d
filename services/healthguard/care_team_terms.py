"""When a care-team assignment counts: one definition, read by routing (incident management's
care_teams.py: whose alarm goes to whom) and by the PHI access rule (healthguard.phi_access: who
is caring for a patient). SQL conditions over care_team_assignments `c` and ward_charge_nurses
`w` at the instant %(at)s."""

# A current assignment: not ended, within its shift, its patient still admitted on its ward.
CURRENT = """
    c.ended_at IS NULL AND c.starts_at <= %(at)s AND c.ends_at > %(at)s
    AND EXISTS (SELECT 1 FROM patients p WHERE p.patient_id = c.patient_id
                AND p.ward = c.ward AND p.status = 'ADMITTED')
"""
CURRENT_CHARGE = "w.ended_at IS NULL AND w.starts_at <= %(at)s AND w.ends_at > %(at)s"
