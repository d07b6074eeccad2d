// The pop-ups of the alarms paging me (popups.js has their rules): on a desk screen up to three,
// the most severe first, with "N more"; on a phone one bar at the bottom with the most severe,
// which expands to all of them. Each names the patient and the room, says what happened, and
// offers Acknowledge and, to the assignee, "I can't take this".
import { useCallback, useEffect, useId, useState } from "react";
import { useNavigate } from "react-router";

import { api } from "./api.js";
import { useAuth } from "./auth.jsx";
import { TAKEN_ON_STATUSES, WS_FRAME_INCIDENT_UPDATED, WS_FRAME_NOTIFICATION, actionName } from "./domain.js";
import { formatReading, subjectOf } from "./format.js";
import { useLive } from "./live.jsx";
import { dismissPopup, orderPopups, popupHeading, receiveIncidentUpdate, receiveNotification } from "./popups.js";
import { ErrorNotice, SeverityBadge, TestBadge, useMediaQuery, useRequest, useResource } from "./ui.jsx";

const SHOWN = 3; // on a desk screen; the others wait behind "N more"
const QUIET_AFTER_MS = 30000; // a MEDIUM or LOW pop-up leaves on its own (the bell keeps it)
const PHONE = "(max-width: 40rem)";

// "I can't take this": the alarm goes at once to the next clinician of the routing order; the
// reason is optional and goes into the audit trail.
export function DeclineForm({ incidentId, onDeclined, onCancel, idPrefix }) {
  const [reason, setReason] = useState("");
  const field = `${idPrefix}-decline-reason`;
  const { busy, error, run: decline } = useRequest(async () => {
    const body = reason.trim() ? { reason: reason.trim() } : undefined;
    const incident = await api(`/incidents/${incidentId}/decline`, { method: "PATCH", body });
    onDeclined(incident);
  });
  const submit = (event) => {
    event.preventDefault();
    decline();
  };
  return (
    <form className="decline-form" onSubmit={submit}>
      <label htmlFor={field}>Why not? (optional)</label>
      <input
        id={field}
        type="text"
        maxLength={4000}
        value={reason}
        placeholder="In theatre, with another patient…"
        onChange={(event) => setReason(event.target.value)}
      />
      <ErrorNotice error={error} what={`Passing incident #${incidentId} on failed`} />
      <div className="popup-actions">
        <button type="submit" className="danger" disabled={busy}>
          Pass it on now
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

function Popup({ popup, compact, onDismiss, more }) {
  const { markRead } = useLive();
  const navigate = useNavigate();
  const formId = useId();
  const { incidentId: id, notification } = popup;
  const load = useCallback((signal) => api(`/incidents/${id}`, { signal }), [id]);
  const { data: incident } = useResource(load, [load]);
  const [declining, setDeclining] = useState(false);
  const heading = popupHeading(popup);
  // What the server says this clinician may do (allowed_actions) once the incident is loaded;
  // until then the alarm that paged them offers its acknowledgement at once.
  const allowed = incident?.allowed_actions;
  const toAcknowledge = allowed ? allowed.includes("acknowledge") : !TAKEN_ON_STATUSES.includes(popup.status);
  const canDecline = (allowed ?? []).includes("decline");
  const room = incident?.room ?? notification.data?.room;
  const reading = incident ? formatReading(incident.alert?.value, incident.unit) : null;

  const done = () => {
    markRead(notification.id).catch(() => {});
    onDismiss(id);
  };
  const { busy, error, run: acknowledge } = useRequest(async () => {
    await api(`/incidents/${id}/acknowledge`, { method: "PATCH" });
    done();
  });

  return (
    <div
      className={`popup severity-edge-${String(popup.severity).toLowerCase()} ${compact ? "compact" : ""}`}
      role="alert"
      aria-label={incident?.is_test ? `${heading} (test)` : heading}
      data-testid="toast"
      data-incident-id={id}
      data-severity={popup.severity}
    >
      <p className="popup-title">
        <SeverityBadge severity={popup.severity} /> <TestBadge show={incident?.is_test} /> {heading}
      </p>
      <p className="popup-what">
        <strong>{incident?.alert_name ?? notification.title}</strong>
        {" · "}
        <span className="popup-patient" data-testid="popup-patient">
          {incident ? subjectOf(incident) : notification.data?.patient_id}
          {room && `, room ${room}`}
          {incident?.ward && ` (${incident.ward})`}
        </span>
        {reading && <span className="popup-reading"> · {reading}</span>}
        <span className="popup-number"> · #{id}</span>
      </p>
      {/* The server's sentence says what happened (escalated, passed on...); for a plain new
          assignment the heading and the line above say it all. */}
      {!compact && notification.event_type !== "INCIDENT_ASSIGNED" && (
        <p className="popup-message">{notification.message}</p>
      )}
      <ErrorNotice error={error} what={`Acknowledging incident #${id} failed`} />
      {declining ? (
        <DeclineForm idPrefix={formId} incidentId={id} onDeclined={done} onCancel={() => setDeclining(false)} />
      ) : (
        <div className="popup-actions">
          {toAcknowledge && (
            <button type="button" className="primary" disabled={busy} onClick={acknowledge}>
              Acknowledge #{id}
            </button>
          )}
          {!compact && canDecline && (
            <button type="button" onClick={() => setDeclining(true)}>
              {actionName("decline")}
            </button>
          )}
          {!compact && (
            <button
              type="button"
              className={toAcknowledge ? "" : "primary"}
              onClick={() => {
                done();
                navigate(`/incidents/${id}`);
              }}
            >
              Open incident #{id}
            </button>
          )}
          {!compact && (
            <button type="button" onClick={() => onDismiss(id)}>
              Dismiss
            </button>
          )}
          {compact && more}
        </div>
      )}
    </div>
  );
}

export default function Popups() {
  const { employee } = useAuth();
  const { subscribe } = useLive();
  const me = employee?.employee_id;
  const [popups, setPopups] = useState([]);
  const [expanded, setExpanded] = useState(false);
  const phone = useMediaQuery(PHONE);

  useEffect(
    () =>
      subscribe((event) => {
        if (event.type === WS_FRAME_NOTIFICATION) {
          setPopups((current) => receiveNotification(current, event.notification, me));
          const { severity } = event.notification;
          if (severity === "MEDIUM" || severity === "LOW") {
            const key = `n${event.notification.id}`;
            setTimeout(() => setPopups((current) => current.filter((popup) => popup.key !== key)), QUIET_AFTER_MS);
          }
        } else if (event.type === WS_FRAME_INCIDENT_UPDATED) {
          setPopups((current) => receiveIncidentUpdate(current, event, me));
        }
      }),
    [subscribe, me],
  );
  const dismiss = useCallback((incidentId) => setPopups((current) => dismissPopup(current, incidentId)), []);
  const ordered = orderPopups(popups);
  if (ordered.length === 0) return null;

  if (phone) {
    // One bar at the bottom: the most severe alarm, and a button that opens them all.
    const toggle = (
      <button
        type="button"
        className="popups-toggle"
        aria-expanded={expanded}
        aria-controls="all-popups"
        onClick={() => setExpanded((open) => !open)}
      >
        {expanded ? "Hide" : ordered.length > 1 ? `All ${ordered.length} alarms` : "Details"}
      </button>
    );
    return (
      <>
        <div className="popups-spacer" aria-hidden="true" />
        <section className={`popups popups-bar ${expanded ? "expanded" : ""}`} aria-label="Alarms for you">
          {expanded ? (
            <>
              <div className="popups-bar-head">
                <p>
                  {ordered.length === 1 ? "1 alarm for you" : `${ordered.length} alarms for you`}, most severe first
                </p>
                {toggle}
              </div>
              <div id="all-popups" className="popups-list">
                {ordered.map((popup) => (
                  <Popup key={popup.key} popup={popup} onDismiss={dismiss} />
                ))}
              </div>
            </>
          ) : (
            <Popup key={ordered[0].key} popup={ordered[0]} compact onDismiss={dismiss} more={toggle} />
          )}
        </section>
      </>
    );
  }
  return (
    <section className="popups" aria-label="Alarms for you">
      {ordered.length > SHOWN && (
        <p className="popup-more" role="status">
          {ordered.length - SHOWN} more — see the bell
        </p>
      )}
      {ordered.slice(0, SHOWN).map((popup) => (
        <Popup key={popup.key} popup={popup} onDismiss={dismiss} />
      ))}
    </section>
  );
}
