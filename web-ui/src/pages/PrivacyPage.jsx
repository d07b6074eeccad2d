// The privacy office's search of the PHI access log: who read which patient's data, when, from
// where and why; by patient, by user and by time, with the search exported as CSV. The server
// answers only privacy officers (403 for anyone else).
import { useState } from "react";

import { api } from "../api.js";
import { useTimeZone } from "../auth.jsx";
import { formatDateTime } from "../format.js";
import { DataTable, Empty, ErrorNotice, Loading, useRequest } from "../ui.jsx";

const EMPTY_SEARCH = { patient_id: "", employee_id: "", since: "", until: "" };

function asQuery(search) {
  const query = {};
  for (const [name, value] of Object.entries(search)) {
    if (!value) continue;
    // datetime-local has no zone: the browser's own, sent as an instant.
    query[name] = name === "since" || name === "until" ? new Date(value).toISOString() : value.trim();
  }
  return query;
}

function exportHref(query) {
  const params = new URLSearchParams(query).toString();
  return `/api/v1/privacy/access-log/export${params ? `?${params}` : ""}`;
}

function Accessor({ entry }) {
  if (entry.accessor_kind === "EMPLOYEE") return `${entry.employee_name ?? ""} (${entry.employee_id})`;
  if (entry.accessor_kind === "DEVICE") return entry.device_id ? `Device ${entry.device_id}` : "Bootstrap device key";
  return "A HealthGuard service";
}

// The access log's columns: one entry per patient in an answer.
function accessColumns(timeZone) {
  return [
    {
      label: "When",
      cell: (entry) => <time dateTime={entry.accessed_at}>{formatDateTime(entry.accessed_at, timeZone)}</time>,
    },
    { label: "Who", cell: (entry) => <Accessor entry={entry} /> },
    { label: "Patient", cell: (entry) => entry.patient_id },
    { label: "What", cell: (entry) => <code>{entry.route}</code> },
    { label: "From", cell: (entry) => entry.address ?? "—" },
    {
      label: "Purpose",
      cell: (entry) =>
        entry.purpose === "break-glass" ? <strong title={entry.reason}>Break-glass: {entry.reason}</strong> : "Treatment",
    },
  ];
}

export default function PrivacyPage() {
  const timeZone = useTimeZone();
  const [search, setSearch] = useState(EMPTY_SEARCH);
  const [asked, setAsked] = useState(null);
  const [result, setResult] = useState(null);

  const { busy, error, run, dismiss } = useRequest(async (query, before) => {
    const page = await api("/privacy/access-log", { query: { ...query, before } });
    setResult((previous) =>
      before && previous ? { entries: [...previous.entries, ...page.entries], next: page.next } : page,
    );
    setAsked(query);
  });

  const submit = (event) => {
    event.preventDefault();
    run(asQuery(search));
  };
  const field = (name) => ({
    value: search[name],
    onChange: (event) => setSearch({ ...search, [name]: event.target.value }),
  });

  return (
    <section className="panel" aria-labelledby="privacy-title">
      <h1 id="privacy-title">PHI access log</h1>
      <p className="muted">
        Every answer that carried a patient's data, one entry per patient. Times in {timeZone || "the hospital's zone"}.
      </p>
      <form className="filters" onSubmit={submit} aria-label="Search the access log">
        <label>
          Patient id <input name="patient_id" placeholder="P001" {...field("patient_id")} />
        </label>
        <label>
          User id <input name="employee_id" placeholder="N01" {...field("employee_id")} />
        </label>
        <label>
          From <input type="datetime-local" name="since" {...field("since")} />
        </label>
        <label>
          Until <input type="datetime-local" name="until" {...field("until")} />
        </label>
        <button type="submit" disabled={busy}>
          Search
        </button>
        {asked && (
          <a href={exportHref(asked)} download>
            Export CSV
          </a>
        )}
      </form>
      {error && <ErrorNotice error={error} what="the access log" onDismiss={dismiss} />}
      {busy && !result && <Loading what="Searching" />}
      {result && result.entries.length === 0 && <Empty>No access matches this search.</Empty>}
      {result && result.entries.length > 0 && (
        <DataTable label="Access log" testId="access-log" columns={accessColumns(timeZone)} rows={result.entries} rowKey={(entry) => entry.access_id} />
      )}
      {result?.next && (
        <button type="button" disabled={busy} onClick={() => run(asked, result.next)}>
          Older entries
        </button>
      )}
    </section>
  );
}
