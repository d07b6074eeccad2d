// The metrics page's trends, drawn with Recharts: MTTA and MTTR per hour (last 24 h) and per day
// (last 30 days), and alarms per hour by severity. Hours and days are the hospital's
// (GET /incidents/trends answers them in HOSPITAL_TZ); durations under a second show in ms.
import { useCallback } from "react";
import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";

import { api } from "./api.js";
import { SEVERITIES } from "./domain.js";
import { formatDuration, formatTime } from "./format.js";
import { useIncidentUpdates } from "./live.jsx";
import { ErrorNotice, Loading, useResource } from "./ui.jsx";

const COLOURS = { CRITICAL: "#b3261e", HIGH: "#c75300", MEDIUM: "#8a6d00", LOW: "#44617a", MTTA: "#0b4f6c", MTTR: "#7a3e9d" };
const HEIGHT = 240;

function dayLabel(value, timeZone) {
  return new Date(value).toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone });
}

function useTrends(hours, bucket) {
  const load = useCallback((signal) => api("/incidents/trends", { query: { hours, bucket }, signal }), [hours, bucket]);
  const resource = useResource(load, [load]);
  useIncidentUpdates(resource.reload, { debounceMs: 5000 });
  return resource;
}

// A chart in a figure named by its caption; the figure says in words what the chart shows.
function ChartFigure({ title, summary, testId, children }) {
  return (
    <figure className="panel chart" aria-label={title} data-testid={testId}>
      <figcaption>
        <h2>{title}</h2>
        <p className="muted">{summary}</p>
      </figcaption>
      <div className="chart-area">
        <ResponsiveContainer width="100%" height={HEIGHT}>
          {children}
        </ResponsiveContainer>
      </div>
    </figure>
  );
}

function latest(points, field) {
  const found = [...points].reverse().find((point) => point[field] !== null && point[field] !== undefined);
  return found ? formatDuration(found[field]) : "none yet";
}

function TimingTrend({ data, timeZone, title, testId }) {
  const label = (value) => (data.bucket === "hour" ? formatTime(value, timeZone) : dayLabel(value, timeZone));
  const points = data.points.map((point) => ({ ...point, MTTA: point.mtta_avg_seconds, MTTR: point.mttr_avg_seconds }));
  return (
    <ChartFigure
      title={title}
      testId={testId}
      summary={`Latest MTTA ${latest(data.points, "mtta_avg_seconds")}, MTTR ${latest(data.points, "mttr_avg_seconds")}.`}
    >
      <LineChart data={points} margin={{ top: 16, right: 12, bottom: 0, left: 4 }}>
        <CartesianGrid stroke="#dde3ea" vertical={false} />
        <XAxis dataKey="start" tickFormatter={label} minTickGap={24} tick={{ fontSize: 12, fill: "#3d4653" }} />
        {/* Wide enough for "27 h 46 min" on one line: a narrower axis wrapped and cut it. */}
        <YAxis domain={[0, "auto"]} tickFormatter={formatDuration} width={88} tick={{ fontSize: 12, fill: "#3d4653" }} />
        <Tooltip formatter={(value) => formatDuration(value)} labelFormatter={label} />
        <Legend />
        <Line type="monotone" dataKey="MTTA" stroke={COLOURS.MTTA} strokeWidth={2} dot={{ r: 3 }} connectNulls isAnimationActive={false} />
        <Line type="monotone" dataKey="MTTR" stroke={COLOURS.MTTR} strokeWidth={2} dot={{ r: 3 }} connectNulls isAnimationActive={false} />
      </LineChart>
    </ChartFigure>
  );
}

function AlarmTrend({ data, timeZone }) {
  const label = (value) => formatTime(value, timeZone);
  const points = data.points.map((point) => ({ start: point.start, ...point.alarms_by_severity }));
  const total = points.reduce((sum, point) => sum + SEVERITIES.reduce((n, severity) => n + point[severity], 0), 0);
  const critical = points.reduce((sum, point) => sum + point.CRITICAL, 0);
  return (
    <ChartFigure
      title="Alarms per hour by severity, last 24 h"
      testId="alarm-trend"
      summary={`${total} alarm${total === 1 ? "" : "s"}, ${critical} critical.`}
    >
      <BarChart data={points} margin={{ top: 16, right: 12, bottom: 0, left: 4 }}>
        <CartesianGrid stroke="#dde3ea" vertical={false} />
        <XAxis dataKey="start" tickFormatter={label} minTickGap={24} tick={{ fontSize: 12, fill: "#3d4653" }} />
        <YAxis allowDecimals={false} width={40} tick={{ fontSize: 12, fill: "#3d4653" }} />
        <Tooltip labelFormatter={label} />
        <Legend itemSorter={(item) => SEVERITIES.indexOf(item.value)} />
        {[...SEVERITIES].reverse().map((severity) => (
          <Bar key={severity} dataKey={severity} stackId="alarms" fill={COLOURS[severity]} isAnimationActive={false} />
        ))}
      </BarChart>
    </ChartFigure>
  );
}

export default function TrendCharts() {
  const hourly = useTrends(24, "hour");
  const daily = useTrends(24 * 30, "day");
  const timeZone = hourly.data?.timezone;
  return (
    <section aria-labelledby="trends-title" className="trends">
      <h2 id="trends-title" className="section-title">
        Trends
      </h2>
      {timeZone && <p className="muted">Hours and days in the hospital's time zone ({timeZone}).</p>}
      <ErrorNotice error={hourly.error} what="Loading the hourly trends failed" onRetry={hourly.reload} />
      <ErrorNotice error={daily.error} what="Loading the daily trends failed" onRetry={daily.reload} />
      {!hourly.data && hourly.loading && <Loading what="Loading trends" />}
      <div className="metrics-grid">
        {hourly.data && (
          <TimingTrend data={hourly.data} timeZone={timeZone} title="MTTA and MTTR per hour, last 24 h" testId="timing-hourly" />
        )}
        {daily.data && (
          <TimingTrend
            data={daily.data}
            timeZone={daily.data.timezone}
            title="MTTA and MTTR per day, last 30 days"
            testId="timing-daily"
          />
        )}
        {hourly.data && <AlarmTrend data={hourly.data} timeZone={timeZone} />}
      </div>
    </section>
  );
}
