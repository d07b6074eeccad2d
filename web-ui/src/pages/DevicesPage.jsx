// The device registry as supervisors see it: each device's last beat and whether it is silent.
import { api } from "../api.js";
import { useTimeZone } from "../auth.jsx";
import { formatDateTime, formatDuration, formatTime, timeAgo } from "../format.js";
import { Empty, ErrorNotice, Loading, useNow, useResource } from "../ui.jsx";

function Beat({ device, now, timeZone }) {
  if (device.silent_since) {
    return (
      <strong className="device-silent">
        Silent since {formatTime(device.silent_since, timeZone)}
      </strong>
    );
  }
  if (!device.last_beat_at) return <span className="muted">never heard</span>;
  return (
    <time dateTime={device.last_beat_at} title={formatDateTime(device.last_beat_at, timeZone)}>
      {timeAgo(device.last_beat_at, now)}
    </time>
  );
}

export default function DevicesPage() {
  const timeZone = useTimeZone();
  const now = useNow(15000);
  const devices = useResource((signal) => api("/devices", { signal }), []);
  if (devices.error) return <ErrorNotice error={devices.error} what="the devices" onRetry={devices.reload} />;
  if (!devices.data) return <Loading what="Loading the devices" />;
  const list = devices.data.devices;
  return (
    <section className="panel" aria-labelledby="devices-title">
      <h1 id="devices-title">Devices</h1>
      <p className="muted">
        A device expected to beat every interval is alarmed DEVICE_SILENT after two intervals without an alarm,
        an HL7 message or a heartbeat. Times in {timeZone || "the hospital's zone"}.
      </p>
      {list.length === 0 ? (
        <Empty>No device is registered.</Empty>
      ) : (
        <table className="table" data-testid="devices">
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Scope</th>
              <th scope="col">Expected every</th>
              <th scope="col">Last beat</th>
            </tr>
          </thead>
          <tbody>
            {list.map((device) => (
              <tr key={device.device_id} className={device.revoked_at ? "muted" : ""}>
                <td>
                  {device.name}
                  {device.revoked_at && " (revoked)"}
                </td>
                <td>{device.patient_id ? `Patient ${device.patient_id}` : device.ward || "Any patient"}</td>
                <td>
                  {device.heartbeat_interval_seconds ? formatDuration(device.heartbeat_interval_seconds) : "—"}
                </td>
                <td>
                  <Beat device={device} now={now} timeZone={timeZone} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
