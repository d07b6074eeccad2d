import { useCallback, useEffect, useRef, useState } from "react";

import { statusName } from "./domain.js";

export function SeverityBadge({ severity }) {
  return <span className={`badge severity-${String(severity).toLowerCase()}`}>{severity}</span>;
}

// The status in words; `reason` (the incident's assignment_reason) tells an escalated alarm from
// a reassigned one.
export function StatusBadge({ status, reason }) {
  const name = statusName(status, reason);
  const tone = name === "Escalated" ? "escalated" : String(status).toLowerCase();
  return <span className={`badge status status-${tone}`}>{name}</span>;
}

// A test alert (a drill) must never pass for a real alarm: marked wherever an incident shows.
export function TestBadge({ show = true }) {
  if (!show) return null;
  return (
    <span className="badge test-badge" title="Raised by a manual test alert, not by a patient's device">
      TEST
    </span>
  );
}

// An API error as the clinician should read it: what failed (`what`, "Loading the incidents
// failed"), the service's own message, and for a conflict (409) the incident's current status (what
// this clinician may do now is the page's, from the incident as the server answers it for them);
// `onRetry` offers to try again.
export function ErrorNotice({ error, what, onDismiss, onRetry }) {
  if (!error) return null;
  const { incident_status: status, field } = error.body || {};
  const heading = what || (error.status === 0 ? "Connection problem" : "Something went wrong");
  return (
    <div className="notice error" role="alert">
      <p>
        <strong>{heading}:</strong> {error.status === 0 && what ? "cannot reach HealthGuard Ops." : error.message}
      </p>
      {status && (
        <p>
          The incident is now <StatusBadge status={status} />.
        </p>
      )}
      {field && !status && <p className="muted">Field: {field}</p>}
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      )}
      {onDismiss && (
        <button type="button" className="link-button" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

// A labelled choice of a filter: `first` the words of its first option (value ""; none without),
// then `options` (values) in the words `optionName` gives them. `onChange` gets the value chosen.
export function FilterSelect({ id, label, value, onChange, options, optionName = String, first, inline = false }) {
  return (
    <div className={inline ? "field inline" : "field"}>
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(event) => onChange(event.target.value)}>
        {first && <option value="">{first}</option>}
        {options.map((option) => (
          <option key={option} value={option}>
            {optionName(option)}
          </option>
        ))}
      </select>
    </div>
  );
}

// A table of `rows`, one column per entry of `columns`: { label, cell(row), className, hideLabel }
// (hideLabel: the heading is for screen readers only). Each cell carries its column's label, so
// where the table's class lays rows out as cards on a phone (cards-on-phone, incidents) each
// reads as one. `rowProps(row)` adds attributes to a row (a class, a data- attribute).
export function DataTable({ columns, rows, rowKey, rowProps, className = "cards-on-phone", label, caption, testId }) {
  return (
    <div className="table-wrap" tabIndex={0}>
      <table className={className} aria-label={label} data-testid={testId}>
        {caption && <caption className="visually-hidden">{caption}</caption>}
        <thead>
          <tr>
            {columns.map((column) => (
              <th scope="col" key={column.label}>
                {column.hideLabel ? <span className="visually-hidden">{column.label}</span> : column.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} {...rowProps?.(row)}>
              {columns.map((column) => (
                <td key={column.label} data-label={column.label} className={column.className}>
                  {column.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// The "Load more" button of a usePagedList list (paging.js).
export function LoadMore({ list }) {
  if (!list.hasMore) return null;
  const busy = list.loading && list.loaded;
  return (
    <p>
      <button type="button" onClick={list.loadMore} disabled={busy}>
        {busy ? "Loading…" : "Load more"}
      </button>
    </p>
  );
}

export function Loading({ what = "Loading" }) {
  return (
    <p className="loading" role="status">
      {what}…
    </p>
  );
}

export function Empty({ children }) {
  return <p className="empty">{children}</p>;
}

// One request at a time from a form or button: busy while it runs, its failure kept to show.
export function useRequest(request) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (...args) => {
    setBusy(true);
    setError(null);
    try {
      return await request(...args);
    } catch (failure) {
      setError(failure);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, dismiss: () => setError(null) };
}

// Loads data with `load(signal)`; reload() fetches again keeping the old data on screen.
export function useResource(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const controller = useRef(null);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);

  const reload = useCallback(async () => {
    controller.current?.abort();
    const current = new AbortController();
    controller.current = current;
    setState((previous) => ({ ...previous, loading: true }));
    try {
      const data = await run(current.signal);
      if (!current.signal.aborted) setState({ data, error: null, loading: false });
    } catch (error) {
      if (error.name === "AbortError" || current.signal.aborted) return;
      setState((previous) => ({ ...previous, error, loading: false }));
    }
  }, [run]);

  useEffect(() => {
    reload();
    return () => controller.current?.abort();
  }, [reload]);

  return { ...state, reload };
}

// Re-renders every `ms` so relative times ("3 min ago") stay true.
export function useNow(ms = 30000) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

// Whether a CSS media query matches now, kept current (the phone layout of the pop-ups).
export function useMediaQuery(query) {
  const [matches, setMatches] = useState(() => window.matchMedia(query).matches);
  useEffect(() => {
    const list = window.matchMedia(query);
    const changed = () => setMatches(list.matches);
    changed();
    list.addEventListener("change", changed);
    return () => list.removeEventListener("change", changed);
  }, [query]);
  return matches;
}
