// "Monitor silent since 02:14": a device monitoring the patient missed two heartbeats (the
// technical alarm DEVICE_SILENT). The time is the hospital's, labelled with its zone.
import { api } from "./api.js";
import { useTimeZone } from "./auth.jsx";
import { formatDateTime, formatTime } from "./format.js";
import { useResource } from "./ui.jsx";

export function MonitorSilentBanner({ since, device }) {
  const timeZone = useTimeZone();
  if (!since) return null;
  return (
    <p className="monitor-silent" role="alert" data-testid="monitor-silent">
      <strong>Monitor silent since {formatTime(since, timeZone)}</strong>
      {timeZone && <span className="muted"> ({timeZone})</span>}
      {device && <> · {device}</>} — its alarms may not be reaching anyone. Check the patient and the device.
      <span className="visually-hidden"> Last heard {formatDateTime(since, timeZone)}.</span>
    </p>
  );
}

// For a page that knows only the patient's id (an incident's page): asks the patient's record.
export function MonitorSilentNotice({ patientId }) {
  const record = useResource((signal) => api(`/patients/${encodeURIComponent(patientId)}`, { signal }), [patientId]);
  if (!record.data || record.data.patient_id !== patientId) return null;
  return <MonitorSilentBanner since={record.data.monitor_silent_since} device={record.data.silent_device} />;
}
