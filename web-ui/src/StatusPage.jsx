import { useCallback, useEffect, useState } from "react";

import { SERVICES, checkService } from "./health.js";

const REFRESH_MS = 15000;

function ServiceCard({ label, result }) {
  if (!result) {
    return (
      <li className="card pending">
        <h2>{label}</h2>
        <p className="state">checking…</p>
      </li>
    );
  }
  return (
    <li className={`card ${result.state}`}>
      <h2>{label}</h2>
      <p className="state">
        {result.state}
        {result.httpStatus !== null && <span className="http"> (HTTP {result.httpStatus})</span>}
      </p>
      <pre className="reason">{JSON.stringify(result.body, null, 2)}</pre>
    </li>
  );
}

export default function StatusPage() {
  const [results, setResults] = useState({});
  const [checkedAt, setCheckedAt] = useState(null);

  const refresh = useCallback(async () => {
    const entries = await Promise.all(
      SERVICES.map(async ({ id }) => [id, await checkService(id)]),
    );
    setResults(Object.fromEntries(entries));
    setCheckedAt(new Date());
  }, []);

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- polling the services is this effect's job
    refresh();
    const timer = setInterval(refresh, REFRESH_MS);
    return () => clearInterval(timer);
  }, [refresh]);

  return (
    <section>
      <h1>System status</h1>
      <p className="meta">
        {checkedAt ? `Last checked ${checkedAt.toLocaleTimeString()}` : "Checking services…"}{" "}
        <button type="button" onClick={refresh}>
          Check now
        </button>
      </p>
      <ul className="cards">
        {SERVICES.map(({ id, label }) => (
          <ServiceCard key={id} label={label} result={results[id]} />
        ))}
      </ul>
    </section>
  );
}
