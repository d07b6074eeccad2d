import { useCallback, useEffect, useState } from "react";

import { api } from "./api.js";
import { formatTime } from "./format.js";
import { SERVICES, checkService } from "./health.js";

const REFRESH_MS = 15000;

const STATE_WORDS = { up: "Working", degraded: "Working, with a part down", down: "Not working" };
const PART_WORDS = { database: "Database", broker: "Message broker" };

// What a service's readiness answer means, in words: each part it depends on, up or down, and
// for a service that cannot answer at all why (no answer, the proxy's error).
function ServiceCard({ id, label, result }) {
  if (!result) {
    return (
      <li className="card pending">
        <h2>{label}</h2>
        <p className="state">Checking…</p>
      </li>
    );
  }
  const checks = Object.entries(result.body?.checks ?? {});
  return (
    <li className={`card ${result.state}`} data-testid={`status-${id}`}>
      <h2>{label}</h2>
      <p className="state">{STATE_WORDS[result.state]}</p>
      {checks.length > 0 && (
        <ul className="parts">
          {checks.map(([part, check]) => (
            <li key={part}>
              {PART_WORDS[part] ?? part}: {check.status === "up" ? "reachable" : "not reachable"}
            </li>
          ))}
        </ul>
      )}
      {checks.length === 0 && result.state !== "up" && (
        <p className="reason">{result.body?.message || result.body?.error || "No answer"}</p>
      )}
      {id === "alert-ingestion" && result.state === "degraded" && (
        <p className="hint">Alarms are still accepted and kept; they are passed on when the broker is back.</p>
      )}
      {result.httpStatus !== null && <p className="http">HTTP {result.httpStatus}</p>}
    </li>
  );
}

export default function StatusPage() {
  const [results, setResults] = useState({});
  const [checkedAt, setCheckedAt] = useState(null);
  const [timeZone, setTimeZone] = useState(null);

  const refresh = useCallback(async () => {
    const entries = await Promise.all(SERVICES.map(async ({ id }) => [id, await checkService(id)]));
    setResults(Object.fromEntries(entries));
    setCheckedAt(new Date());
  }, []);

  useEffect(() => {
    // The hospital's zone is public: this page is read before anyone signs in.
    api("/preferences/hospital", { authenticated: false })
      .then((answer) => setTimeZone(answer.timezone))
      .catch(() => {});
    // eslint-disable-next-line react-hooks/set-state-in-effect -- polling the services is this effect's job
    refresh();
    const timer = setInterval(refresh, REFRESH_MS);
    return () => clearInterval(timer);
  }, [refresh]);

  return (
    <section>
      <h1>System status</h1>
      <p className="meta">
        {checkedAt
          ? `Last checked at ${formatTime(checkedAt, timeZone)}${timeZone ? ` (hospital time, ${timeZone})` : ""}`
          : "Checking services…"}{" "}
        <button type="button" onClick={refresh}>
          Check now
        </button>
      </p>
      <ul className="cards">
        {SERVICES.map(({ id, label }) => (
          <ServiceCard key={id} id={id} label={label} result={results[id]} />
        ))}
      </ul>
    </section>
  );
}
