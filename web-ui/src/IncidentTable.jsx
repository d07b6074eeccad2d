import { Link } from "react-router";

import { formatDateTime, timeAgo } from "./format.js";
import { SeverityBadge, StatusBadge, useNow } from "./ui.jsx";

// Incidents as rows; `actions(incident)` may render buttons in a last column.
export default function IncidentTable({ incidents, caption, showAssignee = true, actions }) {
  const now = useNow();
  return (
    <div className="table-wrap" tabIndex={0}>
      <table className="incidents">
        {caption && <caption className="visually-hidden">{caption}</caption>}
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Severity</th>
            <th scope="col">Incident</th>
            <th scope="col">Patient</th>
            <th scope="col">Status</th>
            {showAssignee && <th scope="col">Assigned to</th>}
            <th scope="col">Raised</th>
            {actions && (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {incidents.map((incident) => (
            <tr
              key={incident.incident_id}
              className={incident.severity === "CRITICAL" && incident.status !== "RESOLVED" ? "critical-row" : ""}
              data-incident-id={incident.incident_id}
            >
              <td className="num">{incident.incident_id}</td>
              <td>
                <SeverityBadge severity={incident.severity} />
              </td>
              <td>
                <Link to={`/incidents/${incident.incident_id}`} className="incident-link">
                  {incident.alert_name || incident.title}
                </Link>
                <span className="sub">Room {incident.room}</span>
              </td>
              <td>
                {incident.patient_name}
                <span className="sub">{incident.patient_id}</span>
              </td>
              <td>
                <StatusBadge status={incident.status} />
              </td>
              {showAssignee && (
                <td>{incident.assignee ? incident.assignee.name : <span className="unassigned">Unassigned</span>}</td>
              )}
              <td>
                <time dateTime={incident.created_at} title={formatDateTime(incident.created_at)}>
                  {timeAgo(incident.created_at, now)}
                </time>
              </td>
              {actions && <td className="row-actions">{actions(incident)}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
