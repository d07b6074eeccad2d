// The silences running now, on the dashboard for every clinician: which alarms page nobody, why,
// until when, and how many alarms each holds. Refreshed every 15 s.
import { useEffect } from "react";

import { api } from "./api.js";
import { useTimeZone } from "./auth.jsx";
import { formatDateTime, humanize } from "./format.js";
import { useResource } from "./ui.jsx";

const REFRESH_MS = 15000;

function matches(silence) {
  const parts = [];
  if (silence.ward) parts.push(`ward ${silence.ward}`);
  if (silence.patient_id) parts.push(`patient ${silence.patient_id}`);
  if (silence.device_id) parts.push(`device ${silence.device_id}`);
  if (silence.alert_type) parts.push(silence.alert_name || humanize(silence.alert_type));
  return parts.join(" · ");
}

export default function ActiveSilences() {
  const timeZone = useTimeZone();
  const { data, reload } = useResource((signal) => api("/silences", { query: { active: true }, signal }), []);
  useEffect(() => {
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const silences = data?.silences || [];
  if (silences.length === 0) return null;
  return (
    <section className="panel silences" aria-labelledby="silences-title" data-testid="active-silences">
      <h2 id="silences-title">Silenced now ({silences.length})</h2>
      <ul>
        {silences.map((silence) => (
          <li key={silence.silence_id}>
            <strong>{matches(silence)}</strong>: {humanize(silence.reason)}
            {silence.note ? ` (${silence.note})` : ""}, until {formatDateTime(silence.ends_at, timeZone)}
            {silence.held_incidents.length > 0 && ` · ${silence.held_incidents.length} alarm(s) held, paging nobody`}
          </li>
        ))}
      </ul>
    </section>
  );
}
