import { Link, useParams } from "react-router";

import { api } from "../api.js";
import { MonitorSilentBanner } from "../MonitorSilent.jsx";
import { ErrorNotice, Loading, useResource } from "../ui.jsx";

function ageOn(dateOfBirth) {
  if (!dateOfBirth) return null;
  const born = new Date(dateOfBirth);
  const now = new Date();
  let age = now.getFullYear() - born.getFullYear();
  if (now < new Date(now.getFullYear(), born.getMonth(), born.getDate())) age -= 1;
  return age;
}

export default function PatientPage() {
  const { patientId } = useParams();
  const record = useResource((signal) => api(`/patients/${encodeURIComponent(patientId)}`, { signal }), [patientId]);
  // Keyed data: never another patient's record under this URL.
  const patient = record.data?.patient_id === patientId ? record.data : null;
  if (record.error) return <ErrorNotice error={record.error} what="this patient" onRetry={record.reload} />;
  if (!patient) return <Loading what="Loading the patient" />;
  const age = ageOn(patient.date_of_birth);
  return (
    <section className="panel" aria-labelledby="patient-title">
      <h1 id="patient-title">{patient.name}</h1>
      <MonitorSilentBanner since={patient.monitor_silent_since} device={patient.silent_device} />
      <p className="patient-line">
        {patient.patient_id}
        {age !== null && `, ${age} y`} · {patient.ward}, room {patient.room} · {patient.status.toLowerCase()}
      </p>
      <p>
        <Link to={`/incidents?q=${encodeURIComponent(patient.patient_id)}`}>This patient's incidents</Link>
      </p>
    </section>
  );
}
