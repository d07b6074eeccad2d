import { useCallback, useEffect, useRef, useState } from "react";
import { Link } from "react-router";

import { api } from "../api.js";
import { useAuth, useTimeZone } from "../auth.jsx";
import {
  ACTIVE_INCIDENT_STATUSES,
  UNACKNOWLEDGED_STATUSES,
  WS_FRAME_INCIDENT_UPDATED,
  eventName,
  roleName,
  statusName,
} from "../domain.js";
import { bySeverityThenAge, formatDuration, subjectOf, timeAgo } from "../format.js";
import ActiveSilences from "../ActiveSilences.jsx";
import { applyIncidentFrame, applyIncidentRow, incidentMap } from "../incidentCache.js";
import IncidentTable from "../IncidentTable.jsx";
import { useLive } from "../live.jsx";
import { Empty, ErrorNotice, Loading, TestBadge, useNow } from "../ui.jsx";

function greeting(timeZone) {
  const hour = Number(
    new Intl.DateTimeFormat("en-GB", { hour: "numeric", hourCycle: "h23", ...(timeZone ? { timeZone } : {}) }).format(new Date()),
  );
  if (hour < 12) return "Good morning";
  if (hour < 18) return "Good afternoon";
  return "Good evening";
}

// A count, linking to the list it counts.
function Tile({ label, value, tone = "", hint, testId, to }) {
  return (
    <Link to={to} className={`tile ${tone}`} data-testid={testId}>
      <span className="tile-value">{value}</span>
      <span className="tile-label">{label}</span>
      {hint && <span className="tile-hint">{hint}</span>}
    </Link>
  );
}

const MINE_LIMIT = 200;
const BANNER_LINES = 3; // the critical banner names this many, then "and N more"
const OTHERS_LIMIT = 50;
const FIGURES_DEBOUNCE_MS = 500;

async function loadLists(signal) {
  const [mine, active] = await Promise.all([
    api("/incidents", { query: { mine: true, status: ACTIVE_INCIDENT_STATUSES, limit: MINE_LIMIT }, signal }),
    api("/incidents", { query: { status: ACTIVE_INCIDENT_STATUSES, limit: OTHERS_LIMIT }, signal }),
  ]);
  return { incidents: incidentMap(active.incidents, mine.incidents), mineCapped: Boolean(mine.next) };
}

// The lists load once (and again after a reconnect, when frames may have been missed); every
// incident_updated frame is applied to them in place, and only an incident the page has not
// seen is fetched, on its own. The counts are the server's (the metrics endpoint), refreshed
// after changes: the lists are capped, the counts are not.
function useLiveDashboard() {
  const { subscribe } = useLive();
  const [state, setState] = useState({ incidents: null, mineCapped: false, error: null });
  const cache = useRef(state);
  const commit = useCallback((change) => {
    cache.current = { ...cache.current, ...change };
    setState(cache.current);
  }, []);
  const [figures, setFigures] = useState(null);
  const inflight = useRef(new Map()); // incident_id -> true when a frame came during the fetch
  const loading = useRef(null); // frames received while the lists load, applied after them
  const figuresTimer = useRef(null);
  const alive = useRef(true);

  const loadFigures = useCallback(async () => {
    try {
      const answer = await api("/incidents/metrics", { query: { hours: 24 } });
      if (alive.current) setFigures(answer);
    } catch {
      // The tiles keep the last figures; the lists still show.
    }
  }, []);

  // One fetch per incident at a time; a frame for it during the fetch makes it fetch again.
  const fetchOne = useCallback(async (id) => {
    if (inflight.current.has(id)) {
      inflight.current.set(id, true);
      return;
    }
    for (;;) {
      inflight.current.set(id, false);
      let row;
      try {
        row = await api(`/incidents/${id}`);
      } catch {
        inflight.current.delete(id);
        return;
      }
      if (alive.current && inflight.current.get(id)) continue;
      inflight.current.delete(id);
      if (alive.current && cache.current.incidents) commit({ incidents: applyIncidentRow(cache.current.incidents, row) });
      return;
    }
  }, [commit]);

  // The map lives in a ref (what each frame is applied to, synchronously) and is copied to state
  // for rendering.
  const applyFrame = useCallback(
    (frame) => {
      const current = cache.current.incidents;
      if (!current) return;
      const { incidents, fetch } = applyIncidentFrame(current, frame);
      if (inflight.current.has(frame.incident_id)) inflight.current.set(frame.incident_id, true);
      if (incidents !== current) commit({ incidents });
      if (fetch) fetchOne(frame.incident_id);
    },
    [fetchOne, commit],
  );

  const reload = useCallback(async () => {
    loading.current = [];
    loadFigures();
    try {
      const lists = await loadLists();
      if (!alive.current) return;
      const frames = loading.current;
      loading.current = null;
      commit({ ...lists, error: null });
      frames.forEach(applyFrame);
    } catch (error) {
      loading.current = null;
      if (alive.current) commit({ error });
    }
  }, [applyFrame, loadFigures, commit]);

  useEffect(() => {
    alive.current = true;
    // eslint-disable-next-line react-hooks/set-state-in-effect -- loading the lists is this effect's job
    reload();
    const unsubscribe = subscribe((event) => {
      if (event.type === "reconnected") {
        reload();
        return;
      }
      if (event.type !== WS_FRAME_INCIDENT_UPDATED) return;
      if (loading.current) loading.current.push(event);
      else applyFrame(event);
      clearTimeout(figuresTimer.current);
      figuresTimer.current = setTimeout(loadFigures, FIGURES_DEBOUNCE_MS);
    });
    return () => {
      alive.current = false;
      clearTimeout(figuresTimer.current);
      unsubscribe();
    };
  }, [subscribe, reload, applyFrame, loadFigures]);

  return { ...state, figures, reload, refresh: fetchOne, refreshFigures: loadFigures };
}

export default function DashboardPage() {
  const { employee } = useAuth();
  const timeZone = useTimeZone();
  const { notifications, unreadCount, connection } = useLive();
  // Cut off from the server, the lists are what was known before: "nothing assigned" would be a lie.
  const cutOff = connection === "offline" || connection === "reconnecting";
  const { incidents, mineCapped, figures, error, reload, refresh, refreshFigures } = useLiveDashboard();
  const [actionError, setActionError] = useState(null);
  const [busyId, setBusyId] = useState(null);
  const now = useNow();

  // The button pressed goes away with the acknowledgement: the keyboard moves on to the next
  // row's Acknowledge, else stays on the row (its link), never falling back to the page's top.
  const acknowledge = useCallback(
    async (incident, button) => {
      const table = button?.closest("table");
      const row = button?.closest("tr");
      setBusyId(incident.incident_id);
      setActionError(null);
      try {
        await api(`/incidents/${incident.incident_id}/acknowledge`, { method: "PATCH" });
      } catch (failure) {
        setActionError({ error: failure, incident });
      } finally {
        setBusyId(null);
        refresh(incident.incident_id);
        refreshFigures();
      }
      if (!table || !row) return;
      const rows = [...table.querySelectorAll("tbody tr")];
      const after = rows.slice(rows.indexOf(row) + 1).find((other) => other.querySelector("button.acknowledge"));
      const next = after?.querySelector("button.acknowledge") ?? row.querySelector("a.incident-link");
      next?.focus();
    },
    [refresh, refreshFigures],
  );

  const data = incidents;
  const all = data ? [...data.values()] : [];
  const me = employee?.employee_id;
  const mine = all.filter((incident) => incident.assigned_to === me).sort(bySeverityThenAge);
  const others = all.filter((incident) => incident.assigned_to !== me).sort(bySeverityThenAge);
  const criticalMine = mine.filter((incident) => incident.severity === "CRITICAL");
  const awaitingAck = mine.filter((incident) => UNACKNOWLEDGED_STATUSES.includes(incident.status));
  const capped = (count) => (mineCapped ? `${count}+` : count);
  const criticalAll = figures?.active_by_severity?.CRITICAL;
  const unassigned = figures?.unassigned_now;
  const activeAll = figures?.active_now;
  const otherCount = activeAll === undefined ? others.length : Math.max(others.length, activeAll - mine.length);
  // A count ("…" until known) in `tone` when it is not zero.
  const count = (label, value, tone, to, testId) => ({ label, value: value ?? "…", tone: value ? tone : "", to, testId });
  const tiles = [
    count("My active incidents", data && capped(mine.length), "tone-primary", "/incidents?mine=true"),
    count("Awaiting my acknowledgement", data && capped(awaitingAck.length), "tone-warn", "/incidents?mine=true"),
    count("Critical, hospital-wide", criticalAll, "tone-danger", "/incidents?severity=CRITICAL", "tile-critical"),
    count("Unassigned", unassigned, "tone-warn", "/incidents?status=OPEN", "tile-unassigned"),
    count("Active, hospital-wide", activeAll, "", "/incidents", "tile-active"),
    {
      label: "MTTA, last 24 h",
      value: figures ? formatDuration(figures.mtta_seconds.avg) : "…",
      hint: figures ? `MTTR ${formatDuration(figures.mttr_seconds.avg)}` : null,
      to: "/metrics",
    },
  ];

  return (
    <section className="dashboard">
      <header className="page-head">
        <div>
          <h1>
            {greeting(timeZone)}, {employee?.name}
          </h1>
          <p className="muted">
            {roleName(employee?.role)}
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

      <ErrorNotice error={error} what="Loading your incidents failed" onRetry={reload} />
      <ActiveSilences />
      <ErrorNotice
        error={actionError?.error}
        what={actionError && `Acknowledging incident #${actionError.incident.incident_id} failed`}
        onRetry={actionError?.error.status === 409 ? undefined : () => acknowledge(actionError.incident)}
        onDismiss={() => setActionError(null)}
      />

      {criticalMine.length > 0 && (
        <div className="critical-banner" role="alert">
          <strong>
            {criticalMine.length === 1
              ? "1 critical incident is assigned to you"
              : `${criticalMine.length} critical incidents are assigned to you`}
          </strong>
          <ul>
            {criticalMine.slice(0, BANNER_LINES).map((incident) => (
              <li key={incident.incident_id}>
                {incident.is_test && <TestBadge />}{" "}
                <Link to={`/incidents/${incident.incident_id}`}>
                  #{incident.incident_id} {incident.title} — {subjectOf(incident)}
                </Link>{" "}
                ({statusName(incident.status, incident.assignment_reason)}, raised {timeAgo(incident.created_at, now)})
              </li>
            ))}
          </ul>
          {criticalMine.length > BANNER_LINES && (
            <p>
              <Link to="/incidents?mine=true&severity=CRITICAL">and {criticalMine.length - BANNER_LINES} more</Link>
            </p>
          )}
        </div>
      )}

      <div className="tiles" aria-label="Counts">
        {tiles.map((tile) => (
          <Tile key={tile.label} {...tile} />
        ))}
      </div>

      <div className="dashboard-grid">
        <div>
          <section className="panel" aria-labelledby="my-incidents">
            <h2 id="my-incidents">My active incidents</h2>
            {!data && !error && <Loading what="Loading your incidents" />}
            {data && mine.length === 0 && !cutOff && <Empty>Nothing is assigned to you right now.</Empty>}
            {data && mine.length === 0 && cutOff && (
              <p className="offline-note">Not known while the connection is lost: alarms for you may be waiting.</p>
            )}
            {mine.length > 0 && (
              <IncidentTable
                incidents={mine}
                caption="My active incidents"
                showAssignee={false}
                actions={(incident) =>
                  incident.allowed_actions?.includes("acknowledge") && (
                    <button
                      type="button"
                      className="primary small acknowledge"
                      disabled={busyId === incident.incident_id}
                      onClick={(event) => acknowledge(incident, event.currentTarget)}
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
            {data && others.length === 0 && !cutOff && <Empty>No other active incidents.</Empty>}
            {others.length > 0 && <IncidentTable incidents={others.slice(0, 15)} caption="Other active incidents" />}
            {otherCount > 15 && (
              <p>
                <Link to="/incidents?status=active">All {otherCount} other active incidents</Link>
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
                  <Link to={`/incidents/${notification.incident_id}`}>
                    <span className="feed-what">{eventName(notification)}:</span> {notification.message}
                  </Link>
                </li>
              ))}
            </ul>
          )}
        </aside>
      </div>
    </section>
  );
}
