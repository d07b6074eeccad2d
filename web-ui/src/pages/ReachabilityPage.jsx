import { useCallback } from "react";
import { Link } from "react-router";

import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { roleName } from "../domain.js";
import { KIND_NAMES } from "../reach/rules.js";
import { Empty, ErrorNotice, Loading, useResource } from "../ui.jsx";

// Supervisors: who on the current rota an alarm cannot reach once their tab is closed (no working
// push subscription, email or, later, badge or phone), and how the others are reached.
export default function ReachabilityPage() {
  const { employee } = useAuth();
  const load = useCallback((signal) => api("/reachability", { signal }), []);
  const { data, error, loading, reload } = useResource(load, [load]);

  if (!employee?.is_supervisor) {
    return (
      <section>
        <h1>Reachability</h1>
        <p>Only supervisors see who on the rota can be reached off the tab.</p>
      </section>
    );
  }
  const onDuty = data?.on_duty ?? [];
  const unreachable = onDuty.filter((person) => !person.reachable);
  const reachable = onDuty.filter((person) => person.reachable);
  return (
    <section className="reachability">
      <h1>Reachability of the rota</h1>
      <p>Who is on duty now, and whether an alarm reaches them with no HealthGuard tab open.</p>
      <ErrorNotice error={error} what="Loading reachability failed" onRetry={reload} />
      {loading && !data && <Loading what="Loading the rota's reachability" />}
      {data && (
        <>
          <section className="panel" aria-labelledby="unreachable-title">
            <h2 id="unreachable-title">Cannot be reached off the tab ({unreachable.length})</h2>
            {unreachable.length === 0 ? (
              <Empty>Everyone on duty has a working method.</Empty>
            ) : (
              <ul className="people" data-testid="unreachable">
                {unreachable.map((person) => (
                  <li key={person.employee_id} className="unreachable">
                    <strong>{person.name ?? person.employee_id}</strong> {roleName(person.role)} ·{" "}
                    <span className="text-warn">no working push or email</span>
                  </li>
                ))}
              </ul>
            )}
          </section>
          <section className="panel" aria-labelledby="reachable-title">
            <h2 id="reachable-title">Reachable ({reachable.length})</h2>
            {reachable.length === 0 ? (
              <Empty>Nobody on duty.</Empty>
            ) : (
              <ul className="people">
                {reachable.map((person) => (
                  <li key={person.employee_id}>
                    <strong>{person.name ?? person.employee_id}</strong> {roleName(person.role)} ·{" "}
                    {person.kinds.map((kind) => KIND_NAMES[kind] ?? kind).join(", ")}
                  </li>
                ))}
              </ul>
            )}
          </section>
        </>
      )}
      <p>
        <Link to="/notifications">My own notifications</Link>
      </p>
    </section>
  );
}
