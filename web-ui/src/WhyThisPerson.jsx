// "Why this person": how the routing chose the current owner (the patient's nurse, the charge
// nurse, the ward's pool, the role's pool), and who was told without owning it (the patient's
// nurse of an alarm a nurse may not own). Both come from the server (GET /incidents/{id}: why,
// told); nothing is derived here.
import { roleName } from "./domain.js";

const STEP_NAMES = {
  CARE_TEAM: "Patient's own carer",
  CHARGE_NURSE: "Charge nurse",
  WARD_POOL: "Ward's team",
  ROLE_POOL: "Available by role",
  FALLBACK: "Anyone available",
};

export default function WhyThisPerson({ incident }) {
  const why = incident.why;
  const told = incident.told || [];
  if (!why?.why && told.length === 0) return null;
  return (
    <section className="panel" aria-labelledby="why-title" data-testid="why-this-person">
      <h2 id="why-title">Why this person</h2>
      {why?.why && incident.assignee && (
        <p>
          <strong>{incident.assignee.name}</strong> owns it: {why.why}
          {why.routed_as && <span className="badge subtle"> {STEP_NAMES[why.routed_as] || why.routed_as}</span>}
        </p>
      )}
      {told.length > 0 && (
        <>
          <h3>Told, not owner</h3>
          <ul className="told">
            {told.map((person) => (
              <li key={person.employee_id}>
                {person.name} ({roleName(person.role)}): {person.reason}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
