import { useCallback, useRef, useState } from "react";
import { useSearchParams } from "react-router";

import { api } from "../api.js";
import { ACTIVE_INCIDENT_STATUSES, INCIDENT_STATUSES, SEVERITIES } from "../domain.js";
import { humanize } from "../format.js";
import IncidentTable from "../IncidentTable.jsx";
import { useIncidentUpdates } from "../live.jsx";
import { Empty, ErrorNotice, Loading, useResource } from "../ui.jsx";

const PAGE = 50;
const MAX_LIMIT = 500; // the API's largest page

// ?status=active|all|<STATUS>&severity=<SEVERITY>&mine=true, kept in the URL so a filtered list
// can be bookmarked and survives a reload.
function statusQuery(status) {
  if (status === "all") return undefined;
  if (INCIDENT_STATUSES.includes(status)) return status;
  return ACTIVE_INCIDENT_STATUSES;
}

export default function IncidentsPage() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") || "active";
  const severity = params.get("severity") || "";
  const mine = params.get("mine") === "true";
  const [more, setMore] = useState({ incidents: [], next: null, error: null, loading: false });
  // How many rows are on screen: a live update reloads that many and a page more (new incidents
  // come in on top), not only the first page.
  const shown = useRef(0);

  const load = useCallback(
    async (signal) => {
      const page = await api("/incidents", {
        query: { status: statusQuery(status), severity, mine, limit: Math.min(MAX_LIMIT, shown.current + PAGE) },
        signal,
      });
      setMore({ incidents: [], next: null, error: null, loading: false });
      return page;
    },
    [status, severity, mine],
  );
  const { data, error, loading, reload } = useResource(load, [load]);
  useIncidentUpdates(reload);

  const setFilter = (name, value) => {
    shown.current = 0; // other filters: start again from the first page
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  };

  const next = more.next ?? data?.next;
  const loadMore = async () => {
    setMore((current) => ({ ...current, loading: true, error: null }));
    try {
      const page = await api("/incidents", {
        query: { status: statusQuery(status), severity, mine, limit: PAGE, cursor: next },
      });
      shown.current = (data?.incidents.length ?? 0) + more.incidents.length + page.incidents.length;
      setMore((current) => ({
        incidents: [...current.incidents, ...page.incidents],
        next: page.next,
        error: null,
        loading: false,
      }));
    } catch (failure) {
      setMore((current) => ({ ...current, error: failure, loading: false }));
    }
  };

  const incidents = [...(data?.incidents ?? []), ...more.incidents];
  const hasMore = more.incidents.length ? Boolean(more.next) : Boolean(data?.next);

  return (
    <section>
      <header className="page-head">
        <h1>Incidents</h1>
      </header>
      <form className="filters" onSubmit={(event) => event.preventDefault()} aria-label="Filter incidents">
        <div className="field">
          <label htmlFor="filter-status">Status</label>
          <select id="filter-status" value={status} onChange={(event) => setFilter("status", event.target.value)}>
            <option value="active">All active</option>
            <option value="all">All, including resolved</option>
            {INCIDENT_STATUSES.map((value) => (
              <option key={value} value={value}>
                {humanize(value)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-severity">Severity</label>
          <select
            id="filter-severity"
            value={severity}
            onChange={(event) => setFilter("severity", event.target.value)}
          >
            <option value="">Any severity</option>
            {SEVERITIES.map((value) => (
              <option key={value} value={value}>
                {humanize(value)}
              </option>
            ))}
          </select>
        </div>
        <div className="field checkbox">
          <input
            id="filter-mine"
            type="checkbox"
            checked={mine}
            onChange={(event) => setFilter("mine", event.target.checked ? "true" : "")}
          />
          <label htmlFor="filter-mine">Assigned to me</label>
        </div>
      </form>

      <section className="panel" aria-label="Incident list">
      <ErrorNotice error={error} />
      {loading && !data && <Loading what="Loading incidents" />}
      {data && incidents.length === 0 && <Empty>No incidents match these filters.</Empty>}
      {incidents.length > 0 && <IncidentTable incidents={incidents} caption="Incidents" />}
      <ErrorNotice error={more.error} />
      {hasMore && (
        <p>
          <button type="button" onClick={loadMore} disabled={more.loading}>
            {more.loading ? "Loading…" : "Load more"}
          </button>
        </p>
      )}
      </section>
    </section>
  );
}
