import { useCallback } from "react";
import { useSearchParams } from "react-router";

import { api } from "../api.js";
import { ACTIVE_INCIDENT_STATUSES, INCIDENT_STATUSES, SEVERITIES, severityName, statusName } from "../domain.js";
import IncidentTable from "../IncidentTable.jsx";
import { usePagedList } from "../paging.js";
import { Empty, ErrorNotice, LoadMore, Loading, useResource } from "../ui.jsx";

// ?status=active|all|<STATUS>&severity=<SEVERITY>&ward=<WARD>&q=<room, patient>&mine=true, kept in the URL so a filtered list
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
  const ward = params.get("ward") || "";
  const search = params.get("q") || "";
  const list = usePagedList(
    "/incidents",
    { status: statusQuery(status), severity, mine, ward, q: search.trim() },
    "incidents",
  );
  // The wards to choose from: those of the patients in the hospital.
  const loadWards = useCallback((signal) => api("/patients", { signal }), []);
  const { data: patients } = useResource(loadWards, [loadWards]);
  const wards = [...new Set((patients?.patients ?? []).map((patient) => patient.ward))].sort();

  const setFilter = (name, value) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  };

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
                {statusName(value)}
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
                {severityName(value)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-ward">Ward</label>
          <select id="filter-ward" value={ward} onChange={(event) => setFilter("ward", event.target.value)}>
            <option value="">All wards</option>
            {(ward && !wards.includes(ward) ? [ward, ...wards] : wards).map((value) => (
              <option key={value} value={value}>
                {value}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-search">Patient or room</label>
          <input
            id="filter-search"
            type="search"
            maxLength={64}
            value={search}
            placeholder="Name, P004 or 418"
            onChange={(event) => setFilter("q", event.target.value)}
          />
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
      <ErrorNotice error={list.error} what="Loading the incidents failed" onRetry={list.reload} />
      {!list.loaded && list.loading && <Loading what="Loading incidents" />}
      {list.loaded && list.items.length === 0 && <Empty>No incidents match these filters.</Empty>}
      {list.items.length > 0 && <IncidentTable incidents={list.items} caption="Incidents" />}
      <LoadMore list={list} />
      </section>
    </section>
  );
}
