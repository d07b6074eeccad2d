import { useCallback, useState } from "react";

import { api } from "../api.js";
import { INCIDENT_STATUSES, SEVERITIES, roleName } from "../domain.js";
import { formatDateTime, formatDuration, humanize } from "../format.js";
import { useTimeZone } from "../auth.jsx";
import { useIncidentUpdates } from "../live.jsx";
import TrendCharts from "../TrendCharts.jsx";
import { Empty, ErrorNotice, FilterSelect, Loading, useResource } from "../ui.jsx";

const WINDOWS = [
  { hours: 24, label: "Last 24 hours" },
  { hours: 168, label: "Last 7 days" },
  { hours: 720, label: "Last 30 days" },
  { hours: 2160, label: "Last 90 days" },
];

function TimingCard({ title, summary, explanation }) {
  return (
    <section className="panel timing" aria-label={title}>
      <h2>{title}</h2>
      <p className="timing-main">{formatDuration(summary.avg)}</p>
      <p className="muted">average over {summary.count} incidents</p>
      <dl className="facts compact">
        <div className="fact">
          <dt>Median (p50)</dt>
          <dd>{formatDuration(summary.p50)}</dd>
        </div>
        <div className="fact">
          <dt>p90</dt>
          <dd>{formatDuration(summary.p90)}</dd>
        </div>
      </dl>
      <p className="hint">{explanation}</p>
    </section>
  );
}

function Bars({ title, counts, order, kind }) {
  const max = Math.max(1, ...order.map((key) => counts[key] || 0));
  return (
    <section className="panel" aria-label={title}>
      <h2>{title}</h2>
      <ul className="bars">
        {order.map((key) => (
          <li key={key}>
            <span className="bar-label">{humanize(key)}</span>
            <span className="bar-track" aria-hidden="true">
              <span className={`bar bar-${kind}-${key.toLowerCase()}`} style={{ width: `${((counts[key] || 0) / max) * 100}%` }} />
            </span>
            <span className="bar-value">{counts[key] || 0}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export default function MetricsPage() {
  const [hours, setHours] = useState(24);
  const load = useCallback((signal) => api("/incidents/metrics", { query: { hours }, signal }), [hours]);
  const { data, error, loading, reload } = useResource(load, [load]);
  useIncidentUpdates(reload, { debounceMs: 1000 });
  const timeZone = useTimeZone();

  return (
    <section>
      <header className="page-head">
        <div>
          <h1>Metrics</h1>
          {data && (
            <p className="muted">
              Incidents raised {formatDateTime(data.window.since, timeZone)} – {formatDateTime(data.window.until, timeZone)}
              {timeZone && ` (${timeZone})`}
            </p>
          )}
        </div>
        <FilterSelect
          id="metrics-window"
          label="Period"
          value={hours}
          onChange={(value) => setHours(Number(value))}
          options={WINDOWS.map((window) => window.hours)}
          optionName={(value) => WINDOWS.find((window) => window.hours === value).label}
          inline
        />
      </header>
      <ErrorNotice error={error} what="Loading the metrics failed" onRetry={reload} />
      {loading && !data && <Loading what="Loading metrics" />}
      {data && (
        <>
          <div className="tiles">
            <div className="tile">
              <p className="tile-value">{data.counts.total}</p>
              <p className="tile-label">Incidents in period</p>
            </div>
            <div className={`tile ${data.active_now ? "tone-primary" : ""}`}>
              <p className="tile-value">{data.active_now}</p>
              <p className="tile-label">Active now</p>
            </div>
            <div className={`tile ${data.unassigned_now ? "tone-warn" : ""}`}>
              <p className="tile-value">{data.unassigned_now}</p>
              <p className="tile-label">Unassigned now</p>
            </div>
            <div className="tile">
              <p className="tile-value">{data.counts.by_status.RESOLVED}</p>
              <p className="tile-label">Resolved in period</p>
            </div>
          </div>
          <div className="metrics-grid">
            <TimingCard
              title="MTTA — mean time to acknowledge"
              summary={data.mtta_seconds}
              explanation="From the incident being raised to its first acknowledgement."
            />
            <TimingCard
              title="MTTR — mean time to resolve"
              summary={data.mttr_seconds}
              explanation="From the incident being raised to its resolution."
            />
            <Bars title="By status" counts={data.counts.by_status} order={INCIDENT_STATUSES} kind="status" />
            <Bars title="By severity" counts={data.counts.by_severity} order={SEVERITIES} kind="severity" />
          </div>
          <TrendCharts />
          <section className="panel" aria-labelledby="clinicians-title">
            <h2 id="clinicians-title">By clinician</h2>
            {data.clinicians.length === 0 ? (
              <Empty>No incidents were assigned in this period.</Empty>
            ) : (
              <div className="table-wrap" tabIndex={0}>
                <table className="cards-on-phone" aria-labelledby="clinicians-title">
                  <thead>
                    <tr>
                      <th scope="col">Clinician</th>
                      <th scope="col">Role</th>
                      <th scope="col" className="num">
                        Active
                      </th>
                      <th scope="col" className="num">
                        Resolved
                      </th>
                      <th scope="col" className="num">
                        MTTA
                      </th>
                      <th scope="col" className="num">
                        MTTR
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.clinicians.map((row) => (
                      <tr key={row.employee_id}>
                        <td data-label="Clinician">{row.name}</td>
                        <td data-label="Role">{roleName(row.role)}</td>
                        <td className="num" data-label="Active">{row.active}</td>
                        <td className="num" data-label="Resolved">{row.resolved}</td>
                        <td className="num" data-label="MTTA">{formatDuration(row.mtta_avg_seconds)}</td>
                        <td className="num" data-label="MTTR">{formatDuration(row.mttr_avg_seconds)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </>
      )}
    </section>
  );
}
