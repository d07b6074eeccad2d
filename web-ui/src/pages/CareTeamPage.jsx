// The care-team board of a ward, for its charge nurse or a supervisor, on a tablet or a phone:
// tap a nurse (or drag them) onto a patient to make them the patient's nurse until the end of
// their shift; hand over every patient of one nurse to another in one action; a supervisor
// names the ward's charge nurse. What may be done is the server's answer (403 otherwise).
import { useState } from "react";

import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { roleName } from "../domain.js";
import { ErrorNotice, Loading, useResource } from "../ui.jsx";

function Carer({ carer, label }) {
  if (!carer) return <span className="muted">No {label}</span>;
  return (
    <span>
      {label}: <strong>{carer.name}</strong>
    </span>
  );
}

export default function CareTeamPage() {
  const { employee } = useAuth();
  const [ward, setWard] = useState(null);
  const [chosen, setChosen] = useState(null); // the staff member tapped, to place on a patient
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [handover, setHandover] = useState({ from: "", to: "" });
  const board = useResource((signal) => api("/care-teams", { query: { ward }, signal }), [ward]);
  const team = board.data;

  async function change(what, call) {
    setError(null);
    setDone(null);
    try {
      await call();
      setDone(what);
      setChosen(null);
      board.reload();
    } catch (failure) {
      setError({ what, failure });
    }
  }

  const assign = (patient, person) =>
    change(`${person.name} is now the nurse of ${patient.name}`, () =>
      api(`/care-teams/patients/${encodeURIComponent(patient.patient_id)}`, {
        method: "PUT",
        body: { nurse_id: person.employee_id, ...(patient.doctor ? { doctor_id: patient.doctor.employee_id } : {}) },
      }),
    );

  if (!team) return board.error ? <ErrorNotice error={board.error} what="Loading the care team failed" onRetry={board.reload} /> : <Loading what="Loading the care team" />;
  const nurses = team.staff_on_duty.filter((person) => person.role === "NURSE");
  const byId = Object.fromEntries(team.staff_on_duty.map((person) => [person.employee_id, person]));
  const caring = [...new Set(team.patients.map((patient) => patient.nurse?.employee_id).filter(Boolean))];

  return (
    <section className="care-team">
      <header className="page-head">
        <h1>Care team</h1>
        <label>
          Ward{" "}
          <select value={team.ward} onChange={(event) => setWard(event.target.value)}>
            {team.wards.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
      </header>
      <p className="muted">
        Charge nurse: {team.charge_nurse ? <strong data-testid="charge-nurse">{team.charge_nurse.name}</strong> : "none named"}
      </p>
      {error && <ErrorNotice error={error.failure} what="That change failed" onDismiss={() => setError(null)} />}
      {done && (
        <p role="status" className="notice">
          {done}
        </p>
      )}

      <section className="panel" aria-labelledby="on-duty-title">
        <h2 id="on-duty-title">Nurses on duty</h2>
        <p className="hint">Tap a nurse, then a patient (or drag the nurse onto the patient).</p>
        <div className="chips">
          {nurses.map((person) => (
            <button
              key={person.employee_id}
              type="button"
              className="chip"
              draggable
              aria-pressed={chosen?.employee_id === person.employee_id}
              onDragStart={(event) => event.dataTransfer.setData("text/plain", person.employee_id)}
              onClick={() => setChosen(chosen?.employee_id === person.employee_id ? null : person)}
            >
              {person.name}
              {!person.signed_in && <span className="muted"> (signed out)</span>}
            </button>
          ))}
        </div>
      </section>

      <ul className="care-patients" aria-label="Patients">
        {team.patients.map((patient) => (
          <li
            key={patient.patient_id}
            className="card"
            data-patient-id={patient.patient_id}
            onDragOver={(event) => event.preventDefault()}
            onDrop={(event) => {
              event.preventDefault();
              const person = byId[event.dataTransfer.getData("text/plain")];
              if (person) assign(patient, person);
            }}
          >
            <h2>
              {patient.name} <span className="muted">· Room {patient.room}</span>
            </h2>
            <p>
              <Carer carer={patient.nurse} label="Nurse" />
              <br />
              <Carer carer={patient.doctor} label="Doctor" />
            </p>
            {chosen && (
              <button type="button" className="primary" onClick={() => assign(patient, chosen)}>
                Give to {chosen.name}
              </button>
            )}
          </li>
        ))}
      </ul>

      <section className="panel" aria-labelledby="handover-title">
        <h2 id="handover-title">Handover</h2>
        <form
          className="handover"
          onSubmit={(event) => {
            event.preventDefault();
            change(`${byId[handover.to]?.name || handover.to} took over the patients of ${byId[handover.from]?.name || handover.from}`, () =>
              api("/care-teams/handover", { method: "POST", body: { from_employee_id: handover.from, to_employee_id: handover.to } }),
            );
          }}
        >
          <label>
            Patients of{" "}
            <select required value={handover.from} onChange={(event) => setHandover({ ...handover, from: event.target.value })}>
              <option value="">Choose</option>
              {caring.map((id) => (
                <option key={id} value={id}>
                  {byId[id]?.name || id}
                </option>
              ))}
            </select>
          </label>
          <label>
            go to{" "}
            <select required value={handover.to} onChange={(event) => setHandover({ ...handover, to: event.target.value })}>
              <option value="">Choose</option>
              {nurses.map((person) => (
                <option key={person.employee_id} value={person.employee_id}>
                  {person.name}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Hand over</button>
        </form>
      </section>

      {employee?.is_supervisor && (
        <section className="panel" aria-labelledby="charge-title">
          <h2 id="charge-title">Charge nurse this shift</h2>
          <div className="chips">
            {nurses.map((person) => (
              <button
                key={person.employee_id}
                type="button"
                className="chip"
                onClick={() =>
                  change(`${person.name} is the charge nurse of ${team.ward}`, () =>
                    api(`/care-teams/wards/${encodeURIComponent(team.ward)}/charge-nurse`, {
                      method: "PUT",
                      body: { employee_id: person.employee_id },
                    }),
                  )
                }
              >
                Make {person.name} charge nurse
              </button>
            ))}
          </div>
          <p className="hint">Anyone on duty who is not a nurse: {team.staff_on_duty.filter((p) => p.role !== "NURSE").map((p) => `${p.name} (${roleName(p.role)})`).join(", ") || "none"}.</p>
        </section>
      )}
    </section>
  );
}
