import { useCallback, useState } from "react";

import { api } from "../api.js";
import { roleName } from "../domain.js";
import { useAuth } from "../auth.jsx";
import { dayOf, formatDay, formatShift, formatTime } from "../format.js";
import { useIncidentUpdates } from "../live.jsx";
import { Empty, ErrorNotice, FilterSelect, Loading, useRequest, useResource } from "../ui.jsx";

const SCHEDULE_DAYS = 7;

function AvailabilityCard() {
  const { employee, updateEmployee } = useAuth();
  const away = employee?.availability === "AWAY";

  const { busy, error, run: toggle } = useRequest(async () => {
    const updated = await api("/employees/me/availability", {
      method: "PATCH",
      body: { availability: away ? "AVAILABLE" : "AWAY" },
    });
    updateEmployee(updated);
  });

  return (
    <section className="panel availability" aria-labelledby="availability-title">
      <h2 id="availability-title">My availability</h2>
      <p>
        You are <strong className={away ? "text-warn" : "text-ok"}>{away ? "Away" : "Available"}</strong>.{" "}
        {away
          ? "No new incidents are assigned to you while you are away."
          : "New incidents for your role can be assigned to you while you are on duty."}
      </p>
      <button
        type="button"
        className={away ? "primary" : ""}
        aria-pressed={away}
        onClick={toggle}
        disabled={busy || !employee}
      >
        {away ? "Set me Available" : "Set me Away"}
      </button>
      <ErrorNotice error={error} what="Changing your availability failed" onRetry={toggle} />
    </section>
  );
}

function OnDutyNow({ role }) {
  const load = useCallback((signal) => api("/oncall/current", { query: { role }, signal }), [role]);
  const { data, error, loading, reload } = useResource(load, [load]);
  useIncidentUpdates(reload, { debounceMs: 1000 });
  const byRole = new Map();
  for (const clinician of data?.clinicians ?? []) {
    if (!byRole.has(clinician.role)) byRole.set(clinician.role, []);
    byRole.get(clinician.role).push(clinician);
  }
  return (
    <section className="panel" aria-labelledby="on-duty-title">
      <h2 id="on-duty-title">On duty now</h2>
      <ErrorNotice error={error} what="Loading who is on duty failed" onRetry={reload} />
      {loading && !data && <Loading what="Loading who is on duty" />}
      {data && byRole.size === 0 && <Empty>Nobody is on duty{role ? ` as ${roleName(role)}` : ""} right now.</Empty>}
      <div className="roles">
        {[...byRole.entries()].map(([roleCode, clinicians]) => (
          <section key={roleCode} className="role-group" aria-label={roleName(roleCode)}>
            <h3>{roleName(roleCode)}</h3>
            <ul>
              {clinicians.map((clinician) => (
                <li key={clinician.employee_id}>
                  <span className="person">
                    <strong>{clinician.name}</strong>
                    <span className="sub">
                      {clinician.specialty} · Tier {clinician.tier}
                      {clinician.is_supervisor ? " · Supervisor" : ""}
                    </span>
                  </span>
                  <span className="person-state">
                    {!clinician.signed_in ? (
                      <span className="badge muted-badge">Signed out</span>
                    ) : clinician.availability === "AWAY" ? (
                      <span className="badge away">Away</span>
                    ) : (
                      <span className="badge available">Available</span>
                    )}
                    <span className="sub">
                      {clinician.active_incidents} active · until {formatTime(clinician.shift.ends_at, data.timezone)}
                      {dayOf(clinician.shift.ends_at, data.timezone) !== dayOf(data.at, data.timezone) && " tomorrow"}
                    </span>
                  </span>
                </li>
              ))}
            </ul>
          </section>
        ))}
      </div>
    </section>
  );
}

// The rota: one row per role, one column per day; a shift sits in the day it starts.
function Schedule({ role }) {
  const { employee } = useAuth();
  const load = useCallback(
    (signal) =>
      // From today in the hospital's time zone (the server's), not the browser's.
      api("/schedules", { query: { days: SCHEDULE_DAYS, role }, signal }),
    [role],
  );
  const { data, error, loading, reload } = useResource(load, [load]);
  const tz = data?.timezone;
  const days = [];
  const cells = new Map(); // role -> day -> shifts
  const first = data ? data.from.slice(0, 10) : null; // the hospital-local day the rota starts
  for (const shift of data?.shifts ?? []) {
    const day = dayOf(shift.starts_at, tz);
    if (day < first) continue; // a night shift that began yesterday: yesterday's column
    if (!days.includes(day)) days.push(day);
    if (!cells.has(shift.role)) cells.set(shift.role, new Map());
    const byDay = cells.get(shift.role);
    if (!byDay.has(day)) byDay.set(day, []);
    byDay.get(day).push(shift);
  }
  days.sort();
  const roles = [...cells.keys()].sort();
  return (
    <section className="panel" aria-labelledby="schedule-title">
      <h2 id="schedule-title">Schedule, next {SCHEDULE_DAYS} days</h2>
      {tz && <p className="muted">Times in the hospital's time zone ({tz}). Your own shifts are highlighted.</p>}
      <ErrorNotice error={error} what="Loading the schedule failed" onRetry={reload} />
      {loading && !data && <Loading what="Loading the schedule" />}
      {data && days.length === 0 && <Empty>No shifts in this period.</Empty>}
      {days.length > 0 && (
        <div className="table-wrap" tabIndex={0}>
          <table className="rota cards-on-phone">
            <thead>
              <tr>
                <th scope="col">Role</th>
                {days.map((day) => (
                  <th scope="col" key={day}>
                    {formatDay(`${day}T12:00:00Z`, "UTC")}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {roles.map((roleCode) => (
                <tr key={roleCode}>
                  <th scope="row">{roleName(roleCode)}</th>
                  {days.map((day) => (
                    <td key={day} data-label={formatDay(`${day}T12:00:00Z`, "UTC")}>
                      <ul>
                        {(cells.get(roleCode).get(day) ?? []).map((shift) => (
                          <li
                            key={`${shift.employee_id}-${shift.starts_at}-${shift.source}`}
                            className={shift.employee_id === employee?.employee_id ? "me" : ""}
                          >
                            <span className="shift-time">
                              {formatShift(shift.starts_at, shift.ends_at, tz)}
                            </span>
                            <span className="shift-name">{shift.name}</span>
                            {shift.source === "override" && <span className="cover"> (cover)</span>}
                          </li>
                        ))}
                      </ul>
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export default function OnCallPage() {
  const [role, setRole] = useState("");
  const { data: staff } = useResource((signal) => api("/employees", { signal }), []);
  const roles = [...new Set((staff?.employees ?? []).map((employee) => employee.role))].sort();
  return (
    <section>
      <header className="page-head">
        <h1>On-Call</h1>
        <FilterSelect
          id="oncall-role"
          label="Role"
          value={role}
          onChange={setRole}
          first="All roles"
          options={roles}
          optionName={roleName}
          inline
        />
      </header>
      <div className="oncall-grid">
        <AvailabilityCard />
        <OnDutyNow role={role} />
      </div>
      <Schedule role={role} />
    </section>
  );
}
