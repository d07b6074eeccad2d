import { Link } from "react-router";

import { useTimeZone } from "./auth.jsx";
import { UNACKNOWLEDGED_STATUSES } from "./domain.js";
import { countdown, formatDateTime, placeOf, subjectOf, timeAgo } from "./format.js";
import { DataTable, SeverityBadge, StatusBadge, TestBadge, useNow } from "./ui.jsx";

// While unacknowledged: the time left before escalation (from the server's ack_deadline) and the
// escalation level; nothing when the server does not send them.
function EscalationCountdown({ incident, now }) {
  if (!incident.ack_deadline || !UNACKNOWLEDGED_STATUSES.includes(incident.status)) return null;
  const left = new Date(incident.ack_deadline) - now;
  const urgency = left < 0 ? "overdue" : left < 60000 ? "due-soon" : "";
  return (
    <span className={`sub countdown ${urgency}`} data-testid="escalation-countdown">
      Escalates {countdown(incident.ack_deadline, now)}
      {incident.escalation_level > 0 && ` · level ${incident.escalation_level}`}
    </span>
  );
}

// Nobody owns it (the server's unowned_since: OPEN, or past the last escalation step with every
// doctor on call paged): how long, in red, on every list.
function Unowned({ incident, now }) {
  const since = incident.unowned_since ?? (incident.unowned_since === undefined && incident.status === "OPEN" ? incident.created_at : null);
  if (!since) return null;
  const minutes = Math.max(0, Math.floor((now - new Date(since)) / 60000));
  return (
    <span className="sub unowned" data-testid="unowned">
      Unowned for {minutes} min
    </span>
  );
}

// Incidents as rows; `actions(incident)` may render buttons in a last column.
export default function IncidentTable({ incidents, caption, showAssignee = true, actions }) {
  const now = useNow(1000); // the countdowns tick
  const timeZone = useTimeZone();
  const columns = [
    { label: "#", className: "num", cell: (incident) => incident.incident_id },
    {
      label: "Severity",
      cell: (incident) => (
        <>
          <SeverityBadge severity={incident.severity} /> <TestBadge show={incident.is_test} />
        </>
      ),
    },
    {
      label: "Incident",
      cell: (incident) => (
        <>
          <Link to={`/incidents/${incident.incident_id}`} className="incident-link">
            {incident.alert_name || incident.title}
          </Link>
          <span className="sub">{placeOf(incident)}</span>
          {incident.alert_count > 1 && (
            <span className="sub repeats">
              ×{incident.alert_count} alarms
              {incident.last_alert_at && <>, last {timeAgo(incident.last_alert_at, now)}</>}
            </span>
          )}
        </>
      ),
    },
    {
      label: "Patient",
      cell: (incident) => (
        <>
          {subjectOf(incident)}
          {incident.patient_id && <span className="sub">{incident.patient_id}</span>}
        </>
      ),
    },
    {
      label: "Status",
      cell: (incident) => (
        <>
          <StatusBadge status={incident.status} reason={incident.assignment_reason} />
          {incident.silenced_by ? (
            <span className="sub" data-testid="silenced">
              Silenced: paging nobody
            </span>
          ) : (
            <Unowned incident={incident} now={now} />
          )}
        </>
      ),
    },
    showAssignee && {
      label: "Assigned to",
      cell: (incident) =>
        incident.assignee ? incident.assignee.name : <span className="unassigned">Unassigned</span>,
    },
    {
      label: "Raised",
      cell: (incident) => (
        <>
          <time dateTime={incident.created_at} title={formatDateTime(incident.created_at, timeZone)}>
            {timeAgo(incident.created_at, now)}
          </time>
          <EscalationCountdown incident={incident} now={now} />
        </>
      ),
    },
    actions && { label: "Actions", hideLabel: true, className: "row-actions", cell: actions },
  ].filter(Boolean);
  return (
    <DataTable
      className="incidents"
      caption={caption}
      columns={columns}
      rows={incidents}
      rowKey={(incident) => incident.incident_id}
      rowProps={(incident) => ({
        className: incident.severity === "CRITICAL" && incident.status !== "RESOLVED" ? "critical-row" : "",
        "data-incident-id": incident.incident_id,
      })}
    />
  );
}
