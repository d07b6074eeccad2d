import { useCallback } from "react";
import { useSearchParams } from "react-router";

import { api } from "../api.js";
import { ACTIVE_INCIDENT_STATUSES, INCIDENT_STATUSES, SEVERITIES, severityName, statusName } from "../domain.js";
import IncidentTable from "../IncidentTable.jsx";
import { usePagedList } from "../paging.js";
import { Empty, ErrorNotice, FilterSelect, LoadMore, Loading, useResource } from "../ui.jsx";

// ?status=active|all|<STATUS>&severity=<SEVERITY>&ward=<WARD>&q=<room, patient>&mine=true, kept in the URL so a filtered list
// can be bookmarked and survives a reload.
// The status filter's choices besides the statuses themselves.
const STATUS_CHOICES = { active: "All active", all: "All, including resolved" };

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
        <FilterSelect
          id="filter-status"
          label="Status"
          value={status}
          onChange={(value) => setFilter("status", value)}
          options={["active", "all", ...INCIDENT_STATUSES]}
          optionName={(value) => STATUS_CHOICES[value] ?? statusName(value)}
        />
        <FilterSelect
          id="filter-severity"
          label="Severity"
          value={severity}
          onChange={(value) => setFilter("severity", value)}
          first="Any severity"
          options={SEVERITIES}
          optionName={severityName}
        />
        <FilterSelect
          id="filter-ward"
          label="Ward"
          value={ward}
          onChange={(value) => setFilter("ward", value)}
          first="All wards"
          options={ward && !wards.includes(ward) ? [ward, ...wards] : wards}
        />
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
