import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";

import { api } from "../api.js";
import { useAuth, useTimeZone } from "../auth.jsx";
import { formatDateTime } from "../format.js";
import { deviceLabel, enablePushOnThisDevice, pushSupported, reachChanged, thisDevicesMethodId } from "../reach/push.js";
import { KIND_NAMES, URGENCIES, delayName, rowsOf, rowsProblem, sourceName, stepsOf } from "../reach/rules.js";
import { Empty, ErrorNotice, Loading, useRequest, useResource } from "../ui.jsx";

// "My notifications": how HealthGuard reaches me when no tab of it is open. My contact methods
// (email verified by a code, Web Push on each of my devices) and my rules (which method, how long
// after the assignment, per urgency). Each method can be tested.

function methodStatus(method) {
  if (method.disabled_at) return { tone: "failed", text: `Disabled${method.disabled_reason ? `: ${method.disabled_reason}` : ""}` };
  if (method.verified) return { tone: "ok", text: "Working" };
  return { tone: "pending", text: "Not verified" };
}

function submitting(run) {
  return (event) => {
    event.preventDefault();
    run();
  };
}

function VerifyForm({ method, onVerified }) {
  const [code, setCode] = useState("");
  const id = `verify-${method.contact_method_id}`;
  const { busy, error, run } = useRequest(async () => {
    await api(`/contact-methods/${method.contact_method_id}/verify`, { method: "POST", body: { code: code.trim() } });
    onVerified();
  });
  const submit = submitting(run);
  return (
    <form className="inline-form" onSubmit={submit}>
      <label htmlFor={id}>Code sent to {method.address}</label>
      <input id={id} inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} required maxLength={12} />
      <button type="submit" disabled={busy || !code.trim()}>
        Verify
      </button>
      <ErrorNotice error={error} what="Verifying failed" />
    </form>
  );
}

function MethodRow({ method, thisDevice, onChange }) {
  const [result, setResult] = useState(null);
  const [what, setWhat] = useState(null);
  const timeZone = useTimeZone();
  const status = methodStatus(method);
  const { busy, error, run: request, dismiss } = useRequest((call) => call());

  const run = (failureText, call) => {
    setWhat(failureText);
    setResult(null);
    return request(call);
  };
  const test = () =>
    run("Sending a test failed", async () => {
      const answer = await api(`/contact-methods/${method.contact_method_id}/test`, { method: "POST" });
      setResult(
        answer.status === "failed"
          ? `The test was not sent${answer.reason ? `: ${answer.reason}` : ""}.`
          : answer.status === "verification_sent"
            ? "A new verification code was sent."
            : "Test sent: check that it arrived.",
      );
    });
  const remove = () =>
    run("Removing failed", async () => {
      await api(`/contact-methods/${method.contact_method_id}`, { method: "DELETE" });
      onChange();
    });

  return (
    <li className="method" data-testid={`method-${method.kind}`}>
      <div className="method-head">
        <strong>{KIND_NAMES[method.kind] ?? method.kind}</strong>
        <span className="method-address">{method.label || method.address}</span>
        {thisDevice && <span className="badge">This device</span>}
        <span className={`badge method-${status.tone}`}>{status.text}</span>
      </div>
      <p className="muted method-meta">Added {formatDateTime(method.created_at, timeZone)}</p>
      {!method.verified && !method.disabled_at && method.kind === "email" && (
        <VerifyForm method={method} onVerified={onChange} />
      )}
      <div className="actions">
        <button type="button" disabled={busy} onClick={test}>
          {method.verified ? "Send a test" : "Send the code again"}
        </button>
        <button type="button" className="danger-outline" disabled={busy} onClick={remove}>
          Remove
        </button>
      </div>
      {result && (
        <p className="notice success" role="status">
          {result}
        </p>
      )}
      <ErrorNotice error={error} what={what} onDismiss={dismiss} />
    </li>
  );
}

function AddEmail({ onAdded }) {
  const [address, setAddress] = useState("");
  const { busy, error, run } = useRequest(async () => {
    await api("/contact-methods", { method: "POST", body: { kind: "email", address: address.trim() } });
    setAddress("");
    onAdded();
  });
  const submit = submitting(run);
  return (
    <form className="inline-form" onSubmit={submit}>
      <label htmlFor="new-email">Add an email address</label>
      <input id="new-email" type="email" autoComplete="email" value={address} onChange={(e) => setAddress(e.target.value)} required />
      <button type="submit" disabled={busy || !address.trim()}>
        Add email
      </button>
      <p className="hint">A code is sent to it: enter it here to start using the address.</p>
      <ErrorNotice error={error} what="Adding the email failed" />
    </form>
  );
}

function EnablePush({ onEnabled, subscribedHere }) {
  const { busy, error, run: enable } = useRequest(async () => {
    await enablePushOnThisDevice(deviceLabel(navigator.userAgent));
    onEnabled();
  });
  if (!pushSupported()) {
    return <p className="muted">This browser cannot receive push notifications. On a phone, add HealthGuard to the home screen first.</p>;
  }
  return (
    <div>
      <button type="button" className="primary" disabled={busy} onClick={enable}>
        {subscribedHere ? "Renew push on this device" : "Enable push on this device"}
      </button>
      <p className="hint">Alarms then reach this device even when HealthGuard is closed, with Acknowledge and Open.</p>
      <ErrorNotice error={error} what="Enabling push failed" />
    </div>
  );
}

function ContactMethods({ methods, reload, error, loading }) {
  const [hereId, setHereId] = useState(null);
  useEffect(() => {
    thisDevicesMethodId()
      .then(setHereId)
      .catch(() => {});
  }, [methods]);
  const isHere = (method) => method.kind === "push" && method.contact_method_id === hereId;
  return (
    <section className="panel" aria-labelledby="methods-title">
      <h2 id="methods-title">Contact methods</h2>
      <ErrorNotice error={error} what="Loading your contact methods failed" onRetry={reload} />
      {loading && !methods && <Loading what="Loading your contact methods" />}
      {methods && methods.length === 0 && <Empty>No contact methods yet: alarms reach you only in an open tab.</Empty>}
      {methods && methods.length > 0 && (
        <ul className="methods">
          {methods.map((method) => (
            <MethodRow key={method.contact_method_id} method={method} thisDevice={isHere(method)} onChange={reload} />
          ))}
        </ul>
      )}
      <h3>Push on this device</h3>
      <EnablePush onEnabled={reload} subscribedHere={Boolean(methods?.some(isHere))} />
      <h3>Email</h3>
      <AddEmail onAdded={reload} />
    </section>
  );
}

function UrgencyRules({ urgency, rules, methods, onSaved }) {
  // The parent keys this form by the rules it got: saved or reloaded rules start it afresh.
  const [rows, setRows] = useState(() => rowsOf(rules));
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useRequest(async () => {
    const answer = await api("/notification-rules", { method: "PUT", body: { [urgency.id]: stepsOf(rows) } });
    setSaved(true);
    onSaved(answer);
  });
  const save = submitting(run);

  const usable = (methods ?? []).filter((method) => method.verified);
  const targets = [
    ...usable.map((method) => ({
      value: `method:${method.contact_method_id}`,
      label: `${KIND_NAMES[method.kind]}: ${method.label || method.address}`,
    })),
    ...["push", "email"].map((kind) => ({ value: `kind:${kind}`, label: `Every ${KIND_NAMES[kind].toLowerCase()} method of mine` })),
  ];
  const problem = rowsProblem(rows);
  const change = (index, field, value) => {
    setSaved(false);
    setRows((current) => current.map((row, at) => (at === index ? { ...row, [field]: value } : row)));
  };
  const legend = `${urgency.label}`;
  return (
    <form className="rules" onSubmit={save} aria-label={legend} data-testid={`rules-${urgency.id}`}>
      <fieldset>
        <legend>{legend}</legend>
        <p className="hint">Now: {sourceName(rules?.source)}.</p>
        {rows.length === 0 && <p className="muted">No steps: only the open tab alerts you.</p>}
        <ol className="rule-steps">
          {rows.map((row, index) => {
            const id = `${urgency.id}-${index}`;
            const known = targets.some((target) => target.value === row.target);
            return (
              <li key={id} className="rule-step">
                <label htmlFor={`${id}-minutes`}>Minutes after assignment</label>
                <input
                  id={`${id}-minutes`}
                  type="number"
                  min="0"
                  max="1440"
                  step="0.5"
                  inputMode="decimal"
                  value={row.minutes}
                  onChange={(e) => change(index, "minutes", e.target.value)}
                />
                <label htmlFor={`${id}-method`}>Method</label>
                <select id={`${id}-method`} value={row.target} onChange={(e) => change(index, "target", e.target.value)}>
                  {!known && <option value={row.target}>{row.target.replace(/^kind:/, "Every ").replace(/^method:/, "Method #")}</option>}
                  {targets.map((target) => (
                    <option key={target.value} value={target.value}>
                      {target.label}
                    </option>
                  ))}
                </select>
                <span className="muted rule-when">{row.minutes !== "" && Number(row.minutes) >= 0 ? delayName(Math.round(Number(row.minutes) * 60)) : ""}</span>
                <button
                  type="button"
                  className="link-button"
                  aria-label={`Remove step ${index + 1}`}
                  onClick={() => {
                    setSaved(false);
                    setRows((current) => current.filter((_, at) => at !== index));
                  }}
                >
                  Remove
                </button>
              </li>
            );
          })}
        </ol>
        <div className="actions">
          <button
            type="button"
            onClick={() => {
              setSaved(false);
              setRows((current) => [...current, { minutes: current.length === 0 ? "0" : "2", target: targets[0]?.value ?? "kind:push" }]);
            }}
          >
            Add a step
          </button>
          <button type="submit" className="primary" disabled={busy || Boolean(problem)}>
            Save
          </button>
        </div>
        {problem && <p className="field-error">{problem}</p>}
        {saved && (
          <p className="notice success" role="status">
            Saved.
          </p>
        )}
        <ErrorNotice error={error} what="Saving the rules failed" />
      </fieldset>
    </form>
  );
}

function Rules({ methods }) {
  const load = useCallback((signal) => api("/notification-rules", { signal }), []);
  const { data, error, loading, reload } = useResource(load, [load]);
  const [latest, setLatest] = useState(null);
  const rules = latest ?? data;
  return (
    <section className="panel" aria-labelledby="rules-title">
      <h2 id="rules-title">My notification rules</h2>
      <p className="hint">
        Each step reaches you that many minutes after an alarm is assigned to you, unless you have acknowledged it by
        then. Escalation to a colleague keeps its own timer.
      </p>
      <ErrorNotice error={error} what="Loading your rules failed" onRetry={reload} />
      {loading && !rules && <Loading what="Loading your rules" />}
      {rules &&
        URGENCIES.map((urgency) => (
          <UrgencyRules key={`${urgency.id}:${JSON.stringify(rules[urgency.id])}`} urgency={urgency} rules={rules[urgency.id]} methods={methods} onSaved={setLatest} />
        ))}
    </section>
  );
}

export default function MyNotificationsPage() {
  const { employee } = useAuth();
  const load = useCallback((signal) => api("/contact-methods", { signal }), []);
  const { data, error, loading, reload: reloadMethods } = useResource(load, [load]);
  const methods = data?.contact_methods ?? null;
  const reload = useCallback(() => {
    reachChanged();
    return reloadMethods();
  }, [reloadMethods]);
  return (
    <section className="my-notifications">
      <h1>My notifications</h1>
      <p>How HealthGuard reaches you when no tab of it is open: on this phone, by email.</p>
      {employee?.is_supervisor && (
        <p>
          <Link to="/reachability">Who on the rota cannot be reached off the tab</Link>
        </p>
      )}
      <div className="detail-grid">
        <ContactMethods methods={methods} reload={reload} error={error} loading={loading} />
        <Rules methods={methods} />
      </div>
    </section>
  );
}
