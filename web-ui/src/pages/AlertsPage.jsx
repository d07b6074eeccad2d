import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";

import { api } from "../api.js";
import { SEVERITIES, severityName } from "../domain.js";
import { formatDateTime, formatReading, humanize, timeAgo } from "../format.js";
import { usePagedList } from "../paging.js";
import { useTimeZone } from "../auth.jsx";
import {
  DataTable,
  Empty,
  ErrorNotice,
  FilterSelect,
  LoadMore,
  Loading,
  SeverityBadge,
  StatusBadge,
  TestBadge,
  useNow,
  useRequest,
  useResource,
} from "../ui.jsx";

function TriggerAlertForm({ onTriggered }) {
  const [catalogue, setCatalogue] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [patientId, setPatientId] = useState("");
  const [alertType, setAlertType] = useState("");
  const [value, setValue] = useState("");
  const [result, setResult] = useState(null);

  useEffect(() => {
    const controller = new AbortController();
    Promise.all([
      api("/patients", { query: { status: "ADMITTED" }, signal: controller.signal }),
      api("/alert-types", { signal: controller.signal }),
    ])
      .then(([patients, types]) => setCatalogue({ patients: patients.patients, types: types.alert_types }))
      .catch((failure) => failure.name !== "AbortError" && setLoadError(failure));
    return () => controller.abort();
  }, []);

  const type = catalogue?.types.find((candidate) => candidate.alert_type === alertType);
  const categories = [...new Set((catalogue?.types ?? []).map((candidate) => candidate.category))];

  const { busy, error, run: send, dismiss } = useRequest(async () => {
    setResult(null);
    const body = { source: "MANUAL" };
    if (patientId) body.patient_id = patientId;
    if (alertType) body.alert_type = alertType;
    if (value !== "") body.value = Number(value);
    const alert = await api("/alerts/manual", { method: "POST", body });
    setResult(alert);
    onTriggered(alert);
  });
  const submit = (event) => {
    event?.preventDefault();
    send();
  };

  return (
    <section className="panel" aria-labelledby="trigger-title">
      <h2 id="trigger-title">Trigger a test alert</h2>
      <p className="muted">
        For drills and checks: the alert goes through the same path as a bedside device and becomes an incident
        routed to whoever is on call.
      </p>
      <ErrorNotice error={loadError} what="Loading the patients and alert types failed" />
      <form className="trigger-form" onSubmit={submit}>
        <div className="field">
          <label htmlFor="trigger-patient">Patient</label>
          <select id="trigger-patient" value={patientId} onChange={(event) => setPatientId(event.target.value)}>
            <option value="">Any admitted patient</option>
            {(catalogue?.patients ?? []).map((patient) => (
              <option key={patient.patient_id} value={patient.patient_id}>
                {patient.name} — room {patient.room} ({patient.ward})
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="trigger-type">Alert type</label>
          <select id="trigger-type" value={alertType} onChange={(event) => setAlertType(event.target.value)}>
            <option value="">Any alert type</option>
            {categories.map((category) => (
              <optgroup key={category} label={humanize(category)}>
                {catalogue.types
                  .filter((candidate) => candidate.category === category)
                  .map((candidate) => (
                    <option key={candidate.alert_type} value={candidate.alert_type}>
                      {candidate.name} ({severityName(candidate.severity)})
                    </option>
                  ))}
              </optgroup>
            ))}
          </select>
        </div>
        <div className="field narrow">
          <label htmlFor="trigger-value">Reading{type?.unit ? ` (${type.unit})` : ""}</label>
          <input
            id="trigger-value"
            type="number"
            step="any"
            value={value}
            onChange={(event) => setValue(event.target.value)}
            placeholder={type?.typical_min != null ? `${type.typical_min}–${type.typical_max}` : "optional"}
          />
        </div>
        <div className="field submit">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Sending…" : "Trigger test alert"}
          </button>
        </div>
      </form>
      {type && <p className="hint">{type.description}</p>}
      <ErrorNotice error={error} what="Sending the test alert failed" onRetry={submit} onDismiss={dismiss} />
      {result && (
        <p className="notice success" role="status">
          Test alert #{result.alert_id} recorded: {result.alert_name} for {result.patient_name}, room {result.room}. It
          becomes an incident in a moment.
        </p>
      )}
    </section>
  );
}

// The recent alerts' columns (units: alert type -> the unit of its reading).
function alertColumns(units, now, timeZone) {
  return [
    { label: "#", className: "num", cell: (alert) => alert.alert_id },
    {
      label: "Received",
      cell: (alert) => (
        <time dateTime={alert.received_at} title={formatDateTime(alert.received_at, timeZone)}>
          {timeAgo(alert.received_at, now)}
        </time>
      ),
    },
    {
      label: "Severity",
      cell: (alert) => (
        <>
          <SeverityBadge severity={alert.severity} /> <TestBadge show={alert.source === "MANUAL"} />
        </>
      ),
    },
    { label: "Alert", cell: (alert) => alert.alert_name },
    {
      label: "Patient",
      cell: (alert) => (
        <>
          {alert.patient_name}
          <span className="sub">Room {alert.room}</span>
        </>
      ),
    },
    {
      label: "Reading",
      className: "num",
      cell: (alert) => formatReading(alert.value, units.get(alert.alert_type)) ?? <span className="muted">—</span>,
    },
    {
      label: "Source",
      cell: (alert) => (alert.source === "MANUAL" ? `Test by ${alert.triggered_by}` : alert.device_id || "Device"),
    },
    {
      label: "Incident",
      cell: (alert) =>
        alert.incident_id ? (
          <Link to={`/incidents/${alert.incident_id}`}>
            #{alert.incident_id} <StatusBadge status={alert.incident_status} />
          </Link>
        ) : (
          <span className="muted">Pending</span>
        ),
    },
  ];
}

export default function AlertsPage() {
  const now = useNow();
  const timeZone = useTimeZone();
  const [severity, setSeverity] = useState("");
  const list = usePagedList("/alerts", { severity }, "alerts", { debounceMs: 500 });
  const alerts = list.items;
  // A reading is shown with its unit, which is the alert type's (the catalogue's).
  const loadTypes = useCallback((signal) => api("/alert-types", { signal }), []);
  const { data: catalogue } = useResource(loadTypes, [loadTypes]);
  const units = new Map((catalogue?.alert_types ?? []).map((type) => [type.alert_type, type.unit]));

  return (
    <section>
      <header className="page-head">
        <h1>Alerts</h1>
      </header>
      <TriggerAlertForm onTriggered={() => list.reload()} />

      <section className="panel" aria-labelledby="recent-alerts">
        <div className="panel-head">
          <h2 id="recent-alerts">Recent alerts</h2>
          <FilterSelect
            id="alert-severity"
            label="Severity"
            value={severity}
            onChange={setSeverity}
            first="Any severity"
            options={SEVERITIES}
            optionName={severityName}
            inline
          />
        </div>
        <ErrorNotice error={list.error} what="Loading the alerts failed" onRetry={list.reload} />
        {!list.loaded && list.loading && <Loading what="Loading alerts" />}
        {list.loaded && alerts.length === 0 && <Empty>No alerts received.</Empty>}
        {alerts.length > 0 && (
          <DataTable label="Recent alerts" columns={alertColumns(units, now, timeZone)} rows={alerts} rowKey={(alert) => alert.alert_id} />
        )}
        <LoadMore list={list} />
      </section>
    </section>
  );
}
