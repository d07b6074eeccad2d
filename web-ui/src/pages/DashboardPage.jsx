import { useCallback, useState } from "react";
import { Link } from "react-router";

import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { ACTIVE_INCIDENT_STATUSES, UNACKNOWLEDGED_STATUSES } from "../domain.js";
import { bySeverityThenAge, formatDuration, humanize } from "../format.js";
import IncidentTable from "../IncidentTable.jsx";
import { useIncidentUpdates, useLive } from "../live.jsx";
import { Empty, ErrorNotice, Loading, useResource } from "../ui.jsx";

function greeting() {
  const hour = new Date().getHours();
  if (hour < 12) return "Good morning";
  if (hour < 18) return "Good afternoon";
  return "Good evening";
}

function Tile({ label, value, tone = "", hint }) {
  return (
    <div className={`tile ${tone}`}>
      <p className="tile-value">{value}</p>
      <p className="tile-label">{label}</p>
      {hint && <p className="tile-hint">{hint}</p>}
    </div>
  );
}

async function loadDashboard(signal) {
  const [mine, active, figures] = await Promise.all([
    api("/incidents", { query: { mine: true, status: ACTIVE_INCIDENT_STATUSES, limit: 200 }, signal }),
    api("/incidents", { query: { status: ACTIVE_INCIDENT_STATUSES, limit: 200 }, signal }),
    api("/incidents/metrics", { query: { hours: 24 }, signal }).catch(() => null),
  ]);
  return { mine: mine.incidents, active: active.incidents, figures };
}

export default function DashboardPage() {
  const { employee } = useAuth();
  const { notifications, unreadCount } = useLive();
  const { data, error, loading, reload } = useResource(loadDashboard, []);
  const [actionError, setActionError] = useState(null);
  const [busyId, setBusyId] = useState(null);

  useIncidentUpdates(reload);

  const acknowledge = useCallback(
    async (incident) => {
      setBusyId(incident.incident_id);
      setActionError(null);
      try {
        await api(`/incidents/${incident.incident_id}/acknowledge`, { method: "PATCH" });
      } catch (failure) {
        setActionError(failure);
      } finally {
        setBusyId(null);
        reload();
      }
    },
    [reload],
  );

  const mine = (data?.mine ?? []).slice().sort(bySeverityThenAge);
  const others = (data?.active ?? [])
    .filter((incident) => incident.assigned_to !== employee?.employee_id)
    .sort(bySeverityThenAge);
  const criticalMine = mine.filter((incident) => incident.severity === "CRITICAL");
  const awaitingAck = mine.filter((incident) => UNACKNOWLEDGED_STATUSES.includes(incident.status));
  const activeAll = data?.active ?? [];
  const criticalAll = activeAll.filter((incident) => incident.severity === "CRITICAL").length;
  const unassigned = activeAll.filter((incident) => incident.status === "OPEN").length;
  const figures = data?.figures;

  return (
    <section className="dashboard">
      <header className="page-head">
        <div>
          <h1>
            {greeting()}, {employee?.name}
          </h1>
          <p className="muted">
            {humanize(employee?.role)}
            {employee?.tier ? ` · Tier ${employee.tier}` : ""}
            {employee?.is_supervisor ? " · Supervisor" : ""}
            {employee?.availability === "AWAY" && (
              <>
                {" "}
                · <strong>You are set to Away</strong> (<Link to="/oncall">change</Link>)
              </>
            )}
          </p>
        </div>
      </header>

      <ErrorNotice error={error} />
      <ErrorNotice error={actionError} onDismiss={() => setActionError(null)} />

      {criticalMine.length > 0 && (
        <div className="critical-banner" role="alert">
          <strong>
            {criticalMine.length === 1
              ? "1 critical incident is assigned to you"
              : `${criticalMine.length} critical incidents are assigned to you`}
          </strong>
          <ul>
            {criticalMine.map((incident) => (
              <li key={incident.incident_id}>
                <Link to={`/incidents/${incident.incident_id}`}>
                  {incident.title} — {incident.patient_name}
                </Link>{" "}
                ({humanize(incident.status)})
              </li>
            ))}
          </ul>
        </div>
      )}

      <div className="tiles" aria-label="Counts">
        <Tile label="My active incidents" value={data ? mine.length : "…"} tone={mine.length ? "tone-primary" : ""} />
        <Tile
          label="Awaiting my acknowledgement"
          value={data ? awaitingAck.length : "…"}
          tone={awaitingAck.length ? "tone-warn" : ""}
        />
        <Tile label="Critical, hospital-wide" value={data ? criticalAll : "…"} tone={criticalAll ? "tone-danger" : ""} />
        <Tile label="Unassigned" value={data ? unassigned : "…"} tone={unassigned ? "tone-warn" : ""} />
        <Tile label="Active, hospital-wide" value={data ? activeAll.length : "…"} />
        <Tile
          label="MTTA, last 24 h"
          value={figures ? formatDuration(figures.mtta_seconds.avg) : "…"}
          hint={figures ? `MTTR ${formatDuration(figures.mttr_seconds.avg)}` : null}
        />
      </div>

      <div className="dashboard-grid">
        <div>
          <section className="panel" aria-labelledby="my-incidents">
            <h2 id="my-incidents">My active incidents</h2>
            {loading && !data && <Loading what="Loading your incidents" />}
            {data && mine.length === 0 && <Empty>Nothing is assigned to you right now.</Empty>}
            {mine.length > 0 && (
              <IncidentTable
                incidents={mine}
                caption="My active incidents"
                showAssignee={false}
                actions={(incident) =>
                  UNACKNOWLEDGED_STATUSES.includes(incident.status) && (
                    <button
                      type="button"
                      className="primary small"
                      disabled={busyId === incident.incident_id}
                      onClick={() => acknowledge(incident)}
                      aria-label={`Acknowledge incident ${incident.incident_id}`}
                    >
                      Acknowledge
                    </button>
                  )
                }
              />
            )}
          </section>

          <section className="panel" aria-labelledby="other-incidents">
            <h2 id="other-incidents">Other active incidents</h2>
            {data && others.length === 0 && <Empty>No other active incidents.</Empty>}
            {others.length > 0 && <IncidentTable incidents={others.slice(0, 15)} caption="Other active incidents" />}
            {others.length > 15 && (
              <p>
                <Link to="/incidents?status=active">All {others.length} other active incidents</Link>
              </p>
            )}
          </section>
        </div>

        <aside className="panel" aria-labelledby="recent-notifications">
          <h2 id="recent-notifications">
            Recent notifications {unreadCount > 0 && <span className="pill">{unreadCount} unread</span>}
          </h2>
          {notifications.length === 0 ? (
            <Empty>No notifications yet.</Empty>
          ) : (
            <ul className="feed">
              {notifications.slice(0, 8).map((notification) => (
                <li key={notification.id} className={notification.read_at ? "read" : "unread"}>
                  <Link to={`/incidents/${notification.incident_id}`}>{notification.message}</Link>
                </li>
              ))}
            </ul>
          )}
        </aside>
      </div>
    </section>
  );
}
