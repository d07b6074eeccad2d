import { useCallback, useEffect, useRef, useState } from "react";
import { Link, useParams } from "react-router";

import { api } from "../api.js";
import { useAuth, useTimeZone } from "../auth.jsx";
import { ACTIVE_INCIDENT_STATUSES, actionName, assignmentReasonName, historyName, roleName } from "../domain.js";
import {
  formatDateTime,
  formatDuration,
  formatRange,
  formatReading,
  humanize,
  outsideRange,
  placeOf,
  subjectOf,
} from "../format.js";
import { useIncidentUpdates } from "../live.jsx";
import WhyThisPerson from "../WhyThisPerson.jsx";
import { MonitorSilentNotice } from "../MonitorSilent.jsx";
import { DeclineForm } from "../Popups.jsx";
import DeliveryTimeline from "../reach/DeliveryTimeline.jsx";
import { Empty, ErrorNotice, Loading, SeverityBadge, StatusBadge, TestBadge, useResource } from "../ui.jsx";

function Fact({ label, children }) {
  return (
    <div className="fact">
      <dt>{label}</dt>
      <dd>{children === null || children === undefined || children === "" ? "—" : children}</dd>
    </div>
  );
}

// The same patient's other active alarms: a second alarm for the patient changes the picture.
function OtherAlarms({ incident }) {
  const { patient_id: patientId, incident_id: incidentId } = incident;
  const load = useCallback(
    (signal) =>
      api("/incidents", { query: { patient_id: patientId, status: ACTIVE_INCIDENT_STATUSES, limit: 20 }, signal }),
    [patientId],
  );
  const { data } = useResource(load, [load]);
  const others = (data?.incidents ?? []).filter((other) => other.incident_id !== incidentId);
  return (
    <section className="panel" aria-labelledby="other-alarms-title">
      <h2 id="other-alarms-title">This patient's other active alarms</h2>
      {data && others.length === 0 && <Empty>None.</Empty>}
      {others.length > 0 && (
        <ul className="other-alarms">
          {others.map((other) => (
            <li key={other.incident_id}>
              <Link to={`/incidents/${other.incident_id}`}>
                #{other.incident_id} {other.title}
              </Link>{" "}
              <StatusBadge status={other.status} reason={other.assignment_reason} /> <TestBadge show={other.is_test} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function ResolveForm({ busy, onResolve }) {
  const [notes, setNotes] = useState("");
  return (
    <form
      className="stack"
      onSubmit={(event) => {
        event.preventDefault();
        onResolve(notes);
      }}
    >
      <label htmlFor="resolution-notes">Resolution notes</label>
      <textarea
        id="resolution-notes"
        required
        rows={3}
        maxLength={4000}
        value={notes}
        onChange={(event) => setNotes(event.target.value)}
        placeholder="What was done, and the patient's state now"
      />
      <button type="submit" className="primary" disabled={busy || !notes.trim()}>
        {actionName("resolve")}
      </button>
    </form>
  );
}

function ReassignForm({ incident, busy, onReassign }) {
  const [employees, setEmployees] = useState(null);
  const [chosen, setChosen] = useState("");
  const [error, setError] = useState(null);
  useEffect(() => {
    const controller = new AbortController();
    api("/employees", { signal: controller.signal })
      .then((answer) => setEmployees(answer.employees))
      .catch((failure) => failure.name !== "AbortError" && setError(failure));
    return () => controller.abort();
  }, []);
  return (
    <form
      className="inline-form"
      onSubmit={(event) => {
        event.preventDefault();
        if (chosen) onReassign(chosen);
      }}
    >
      <label htmlFor="reassign-to">Reassign to</label>
      <select id="reassign-to" value={chosen} onChange={(event) => setChosen(event.target.value)} required>
        <option value="">Choose a clinician…</option>
        {(employees ?? [])
          .filter((employee) => employee.employee_id !== incident.assigned_to)
          .map((employee) => (
            <option key={employee.employee_id} value={employee.employee_id}>
              {employee.name} ({roleName(employee.role)}
              {employee.signed_in ? "" : ", signed out"})
            </option>
          ))}
      </select>
      <button type="submit" disabled={busy || !chosen}>
        {actionName("reassign")}
      </button>
      <ErrorNotice error={error} />
    </form>
  );
}

function NoteForm({ busy, onAdd }) {
  const [note, setNote] = useState("");
  return (
    <form
      className="stack"
      onSubmit={async (event) => {
        event.preventDefault();
        if (await onAdd(note)) setNote("");
      }}
    >
      <label htmlFor="new-note">Add a note</label>
      <textarea
        id="new-note"
        rows={2}
        maxLength={4000}
        value={note}
        onChange={(event) => setNote(event.target.value)}
        placeholder="Observations, orders, handover…"
      />
      <button type="submit" disabled={busy || !note.trim()}>
        {actionName("note")}
      </button>
    </form>
  );
}

// One incident per mounted page: the route remounts the page whenever the id in the URL changes
// (key={incidentId}), so nothing of the previous incident -- its data, a late answer for it, a
// half-typed note -- can show or be acted on under another incident's URL.
export default function IncidentDetailRoute() {
  const { incidentId } = useParams();
  if (!/^[0-9]{1,18}$/.test(incidentId ?? "")) return <IncidentNotFound id={incidentId} />;
  return <IncidentDetailPage key={incidentId} id={Number(incidentId)} />;
}

function IncidentNotFound({ id }) {
  return (
    <section className="not-found" aria-labelledby="not-found-title">
      <p>
        <Link to="/incidents">← Incidents</Link>
      </p>
      <h1 id="not-found-title">No incident {id}</h1>
      <p className="muted">There is no incident with this number. It may have been mistyped.</p>
    </section>
  );
}

function IncidentDetailPage({ id }) {
  const { employee } = useAuth();
  const timeZone = useTimeZone();
  const when = (value) => formatDateTime(value, timeZone);
  const load = useCallback((signal) => api(`/incidents/${id}`, { signal }), [id]);
  const { data: incident, error, loading, reload } = useResource(load, [load]);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState(null);
  const [done, setDone] = useState(null);
  const [declining, setDeclining] = useState(false);
  const actionsHeading = useRef(null);

  useIncidentUpdates(reload, { incidentId: id });

  // Acts on the incident on screen (its own id, not the URL's). A failure says which action
  // failed and offers to try it again.
  const act = async (path, options, message, label = actionName(path)) => {
    setBusy(true);
    setActionError(null);
    setDone(null);
    try {
      await api(`/incidents/${incident.incident_id}/${path}`, options);
      setDone(message);
      return true;
    } catch (failure) {
      setActionError({ error: failure, what: `${label} failed`, retry: () => act(path, options, message, label) });
      return false;
    } finally {
      setBusy(false);
      reload();
      // The button pressed may be gone (Acknowledge becomes Start work): keep the keyboard and
      // screen reader in the Actions panel rather than back at the top of the page.
      actionsHeading.current?.focus();
    }
  };

  if (loading && !incident) return <Loading what={`Loading incident ${id}`} />;
  if (!incident && error?.status === 404) return <IncidentNotFound id={id} />;
  if (!incident)
    return (
      <section>
        <p>
          <Link to="/incidents">← Incidents</Link>
        </p>
        <ErrorNotice error={error} what={`Loading incident ${id} failed`} onRetry={reload} />
      </section>
    );
  if (incident.incident_id !== id) return <Loading what={`Loading incident ${id}`} />;

  const isAssignee = incident.assigned_to === employee?.employee_id;
  // Exactly what the server says this clinician may do now (their role, whether they hold it,
  // are on duty, supervise, were paged): the page decides none of it.
  const allowed = new Set(incident.allowed_actions ?? []);
  const steps = ["acknowledge", "start"].filter((action) => allowed.has(action));
  const canDecline = allowed.has("decline");
  const canResolve = allowed.has("resolve");
  const canClaim = allowed.has("claim");
  const canReassign = allowed.has("reassign");
  const canNote = allowed.has("note");
  const alert = incident.alert;

  return (
    <article className="incident-detail">
      <p>
        <Link to="/incidents">← Incidents</Link>
      </p>
      <header className={`incident-head ${incident.severity === "CRITICAL" ? "critical" : ""}`}>
        <div>
          <p className="eyebrow">Incident #{incident.incident_id}</p>
          <h1>{incident.title}</h1>
          {incident.patient_id ? (
            <p className="patient-line" data-testid="patient-line">
              <strong>
                <Link to={`/patients/${encodeURIComponent(incident.patient_id)}`}>{incident.patient_name}</Link>
              </strong>
              {incident.patient_age !== null && incident.patient_age !== undefined && `, ${incident.patient_age} y`} ·{" "}
              {incident.ward} · Room {incident.room}
            </p>
          ) : (
            // A device's own alarm (a silent ward monitor or gateway): no patient, the device and its ward.
            <p className="patient-line" data-testid="patient-line">
              <strong>{subjectOf(incident)}</strong> · {placeOf(incident)}
            </p>
          )}
          {incident.patient_id && <MonitorSilentNotice patientId={incident.patient_id} />}
          {incident.is_test && (
            <p className="test-notice" role="note">
              <TestBadge /> A test alert raised by a clinician (a drill), not an alarm from the patient's device.
            </p>
          )}
          <p className="badges">
            <SeverityBadge severity={incident.severity} /> <TestBadge show={incident.is_test} />
            <span data-testid="incident-status">
              <StatusBadge status={incident.status} reason={incident.assignment_reason} />
            </span>
            <span className="muted" data-testid="incident-assignee">
              {incident.assignee ? (
                <>
                  Assigned to <strong>{isAssignee ? "you" : incident.assignee.name}</strong>
                </>
              ) : (
                <span className="unassigned">Unassigned</span>
              )}
            </span>
          </p>
        </div>
      </header>

      <ErrorNotice error={error} what={`Refreshing incident ${id} failed`} onRetry={reload} />

      <div className="detail-grid">
        <div>
          <section className="panel" aria-labelledby="actions-title">
            <h2 id="actions-title" tabIndex={-1} ref={actionsHeading}>
              Actions
            </h2>
            {done && (
              <p className="notice success" role="status">
                {done}
              </p>
            )}
            <ErrorNotice
              error={actionError?.error}
              what={actionError?.what}
              onRetry={actionError?.error.status === 409 ? undefined : actionError?.retry}
              onDismiss={() => setActionError(null)}
            />
            <div className="actions">
              {steps.map((action) => (
                <button
                  key={action}
                  type="button"
                  className="primary"
                  disabled={busy}
                  onClick={() =>
                    act(action, { method: "PATCH" }, `${actionName(action)}: done.`)
                  }
                >
                  {actionName(action)}
                </button>
              ))}
              {canClaim && (
                <button
                  type="button"
                  disabled={busy}
                  onClick={() => act("claim", { method: "PATCH" }, "You now own this incident.")}
                >
                  {actionName("claim")}
                </button>
              )}
            </div>
            {canDecline && !declining && (
              <p>
                <button type="button" className="danger-outline" disabled={busy} onClick={() => setDeclining(true)}>
                  {actionName("decline")}
                </button>
              </p>
            )}
            {canDecline && declining && (
              <DeclineForm
                idPrefix="detail"
                incidentId={incident.incident_id}
                onCancel={() => setDeclining(false)}
                onDeclined={() => {
                  setDeclining(false);
                  setDone("Passed on: it is no longer yours.");
                  reload();
                }}
              />
            )}
            {canResolve && (
              <ResolveForm
                busy={busy}
                onResolve={(notes) =>
                  act("resolve", { method: "PATCH", body: { resolution_notes: notes } }, "Incident resolved.")
                }
              />
            )}
            {canReassign && (
              <ReassignForm
                incident={incident}
                busy={busy}
                onReassign={(employeeId) =>
                  act("reassign", { method: "PATCH", body: { employee_id: employeeId } }, "Incident reassigned.")
                }
              />
            )}
            {incident.status === "RESOLVED" && <p className="muted">This incident is resolved; no further actions.</p>}
            {incident.status !== "RESOLVED" && allowed.size === 0 && (
              <p className="muted" data-testid="no-actions">
                Nothing for you to do on this incident now: it is for its assignee and the roles it is routed to.
              </p>
            )}
          </section>

          <DeliveryTimeline incident={incident} />

          <section className="panel" aria-labelledby="details-title">
            <h2 id="details-title">{incident.patient_id ? "Patient and reading" : "Device"}</h2>
            <dl className="facts" data-testid="patient-context">
              {incident.patient_id ? (
                <Fact label="Patient">
                  {incident.patient_name} ({incident.patient_id})
                </Fact>
              ) : (
                <Fact label="Device">{incident.device_name}</Fact>
              )}
              <Fact label="Age">
                {incident.patient_age === null || incident.patient_age === undefined ? null : `${incident.patient_age} years`}
              </Fact>
              <Fact label="Ward">{incident.ward ?? (incident.patient_id ? null : "Hospital-wide")}</Fact>
              <Fact label="Room / bed">{incident.room}</Fact>
              <Fact label="Alert">
                {incident.alert_name} ({humanize(incident.category)})
              </Fact>
              {/* An alarm that measures nothing (no unit: an arrest, a fall) shows no reading and no range. */}
              {incident.unit && (
                <>
                  <Fact label="Reading">
                    <span
                      data-testid="reading"
                      className={outsideRange(alert?.value, incident.normal_min, incident.normal_max) ? "reading outside" : "reading"}
                    >
                      {formatReading(alert?.value, incident.unit) ?? "—"}
                    </span>
                  </Fact>
                  <Fact label="Normal range">{formatRange(incident.normal_min, incident.normal_max, incident.unit)}</Fact>
                </>
              )}
              <Fact label="Device">
                {alert ? (alert.source === "MANUAL" ? `None: manual test by ${alert.triggered_by}` : alert.device_id) : null}
              </Fact>
              <Fact label="Raised">{when(incident.created_at)}</Fact>
              <Fact label="Acknowledged">{when(incident.acknowledged_at)}</Fact>
              <Fact label="Resolved">{when(incident.resolved_at)}</Fact>
              <Fact label="Time to acknowledge">{formatDuration(incident.response_seconds)}</Fact>
              <Fact label="Time to resolve">{formatDuration(incident.resolution_seconds)}</Fact>
            </dl>
            {timeZone && <p className="hint">Times in the hospital's time zone ({timeZone}).</p>}
            {incident.resolution_notes && (
              <div className="resolution">
                <h3>Resolution</h3>
                <p>{incident.resolution_notes}</p>
              </div>
            )}
          </section>

          <WhyThisPerson incident={incident} />

          <OtherAlarms incident={incident} />

          <section className="panel" aria-labelledby="notes-title">
            <h2 id="notes-title">Notes</h2>
            {incident.notes.length === 0 ? (
              <Empty>No notes yet.</Empty>
            ) : (
              <ul className="notes">
                {incident.notes.map((note) => (
                  <li key={note.note_id}>
                    <p className="note-meta">
                      <strong>{note.author_name}</strong> · {when(note.created_at)}
                    </p>
                    <p className="note-body">{note.body}</p>
                  </li>
                ))}
              </ul>
            )}
            {canNote && (
              <NoteForm
                busy={busy}
                onAdd={(note) => act("notes", { method: "POST", body: { note } }, "Note added.", actionName("note"))}
              />
            )}
          </section>
        </div>

        <section className="panel" aria-labelledby="history-title">
          <h2 id="history-title">Audit trail</h2>
          <ol className="timeline" aria-label="Audit trail">
            {incident.history.map((entry) => (
              <li key={entry.history_id}>
                <p className="timeline-head">
                  <strong>{historyName(entry.action)}</strong>
                  {entry.new_status && entry.previous_status !== entry.new_status && (
                    <>
                      {" "}
                      → <StatusBadge status={entry.new_status} />
                    </>
                  )}
                </p>
                <p className="timeline-meta">
                  {entry.actor_name || "System"} · {when(entry.created_at)}
                </p>
                {entry.note && <p className="timeline-note">{entry.note}</p>}
              </li>
            ))}
          </ol>
          {incident.assignments.length > 0 && (
            <>
              <h3>Assignments</h3>
              <ul className="assignments">
                {incident.assignments.map((assignment) => (
                  <li key={assignment.assignment_id}>
                    {assignment.name} ({roleName(assignment.role)}) — {assignmentReasonName(assignment.reason)},{" "}
                    {when(assignment.assigned_at)}
                    {assignment.ended_at ? ` to ${when(assignment.ended_at)}` : " (current)"}
                  </li>
                ))}
              </ul>
            </>
          )}
        </section>
      </div>
    </article>
  );
}
