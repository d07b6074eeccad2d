import { useCallback, useEffect } from "react";

import { api } from "../api.js";
import { useTimeZone } from "../auth.jsx";
import { UNACKNOWLEDGED_STATUSES } from "../domain.js";
import { countdown, formatTime } from "../format.js";
import { useIncidentUpdates } from "../live.jsx";
import { CHANNEL_NAMES, STATUS_NAMES, isPending, timelineOf } from "./ledger.js";
import { Empty, ErrorNotice, useNow, useResource } from "../ui.jsx";

const REFRESH_MS = 5000;

// The escalation timer (incident management's ack_deadline) beside the off-tab deliveries (the
// notification service's ledger): two clocks run on an unacknowledged alarm, and the person on
// the ward sees both, "push sent 10:02, email at 10:04, escalates at 10:05".
function EscalationTimer({ incident, now, timeZone }) {
  const waiting = UNACKNOWLEDGED_STATUSES.includes(incident.status);
  if (!waiting) {
    return <p className="muted" data-testid="escalation-timer">No escalation timer: the incident is {incident.status.toLowerCase().replace("_", " ")}.</p>;
  }
  if (!incident.ack_deadline) return <p className="muted" data-testid="escalation-timer">Escalation timer: not set.</p>;
  const left = new Date(incident.ack_deadline) - now;
  return (
    <p className={`escalation-timer ${left < 0 ? "overdue" : left < 60000 ? "due-soon" : ""}`} data-testid="escalation-timer">
      <strong>Escalates {countdown(incident.ack_deadline, now)}</strong> ({formatTime(incident.ack_deadline, timeZone)})
      {incident.escalation_level > 0 && ` · level ${incident.escalation_level}`}
    </p>
  );
}

function Attempt({ attempt, now, timeZone }) {
  const channel = CHANNEL_NAMES[attempt.channel] ?? attempt.channel;
  return (
    <li className={`delivery delivery-${attempt.status}`} data-testid="delivery">
      <p className="timeline-head">
        <strong>
          Step {attempt.rule_step + 1}: {channel}
        </strong>
        {attempt.address_hint && <span className="muted"> {attempt.address_hint}</span>}{" "}
        <span className={`badge delivery-status status-${attempt.status}`} data-testid="delivery-status">
          {STATUS_NAMES[attempt.status] ?? attempt.status}
        </span>
      </p>
      {isPending(attempt) ? (
        <p className="timeline-meta">Due {countdown(attempt.due_at, now)} ({formatTime(attempt.due_at, timeZone)}) unless acknowledged</p>
      ) : (
        <ol className="delivery-steps">
          {attempt.steps.map((step) => (
            <li key={step.status} data-status={step.status}>
              {step.label} {formatTime(step.at, timeZone)}
            </li>
          ))}
        </ol>
      )}
      {attempt.reason && <p className="timeline-note">{attempt.reason}</p>}
    </li>
  );
}

export default function DeliveryTimeline({ incident }) {
  const incidentId = incident.incident_id;
  const timeZone = useTimeZone();
  const now = useNow(1000);
  const load = useCallback((signal) => api("/deliveries", { query: { incident_id: incidentId }, signal }), [incidentId]);
  const { data, error, reload } = useResource(load, [load]);
  useIncidentUpdates(reload, { incidentId });
  // The ledger moves without an incident event (sent, delivered, a step falling due): polled
  // while the incident is open.
  const open = incident.status !== "RESOLVED";
  useEffect(() => {
    if (!open) return undefined;
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [open, reload]);

  const names = Object.fromEntries((incident.assignments ?? []).map((a) => [a.employee_id, a.name]));
  const people = timelineOf(data?.deliveries ?? [], names);
  return (
    <section className="panel reach-panel" aria-labelledby="reach-title" data-testid="reach-panel">
      <h2 id="reach-title">Reaching the clinician</h2>
      <EscalationTimer incident={incident} now={now} timeZone={timeZone} />
      <ErrorNotice error={error} what="Loading the deliveries failed" onRetry={reload} />
      {data && people.length === 0 && <Empty>No off-tab deliveries for this incident.</Empty>}
      {people.map((person) => (
        <div key={person.employeeId} className="delivery-person">
          <h3>{person.name}</h3>
          <ol className="timeline deliveries" aria-label={`Deliveries to ${person.name}`}>
            {person.attempts.map((attempt) => (
              <Attempt key={attempt.attempt_id} attempt={attempt} now={now} timeZone={timeZone} />
            ))}
          </ol>
        </div>
      ))}
    </section>
  );
}
