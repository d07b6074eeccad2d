// The pop-ups for alarms paging me, as pure functions over a list (Popups.jsx shows them), so
// their rules can be tested without a browser:
// - one pop-up per incident: a re-page, an escalation to me, a raised severity update it;
// - the most severe first (a CRITICAL is pinned at the top whatever came after it), the newest
//   first within a severity;
// - gone as soon as any news of its incident says it no longer pages me (taken, acknowledged,
//   escalated or reassigned away, resolved).
import { ALERTING_EVENTS, SEVERITIES, UNACKNOWLEDGED_STATUSES, pagedFor } from "./domain.js";

const RANK = Object.fromEntries(SEVERITIES.map((severity, index) => [severity, index]));

// Whether a notification of mine (a stored notification, as the socket brings it) pages me.
export function notificationPages(notification, me) {
  const data = notification?.data ?? {};
  if (Array.isArray(data.paged)) return data.paged.includes(me);
  return ALERTING_EVENTS.includes(notification?.event_type) && pagedFor(data).includes(me);
}

// A notification arrived: a pop-up for its incident when it pages me (replacing the incident's
// earlier one), else the incident's pop-up goes when the news says it no longer pages me.
export function receiveNotification(popups, notification, me) {
  const id = notification.incident_id;
  if (id === null || id === undefined) return popups;
  const others = popups.filter((popup) => popup.incidentId !== id);
  if (notificationPages(notification, me)) {
    const data = notification.data ?? {};
    return [
      ...others,
      {
        key: `n${notification.id}`,
        incidentId: id,
        notification,
        severity: notification.severity,
        status: data.status,
        reason: data.reason ?? null,
        order: notification.id,
      },
    ];
  }
  return others.length === popups.length ? popups : others;
}

// An incident_updated frame (every dashboard gets one per change): the pop-up of its incident
// goes when the change means it no longer pages me, else takes its new severity and status.
export function receiveIncidentUpdate(popups, frame, me) {
  const popup = popups.find((candidate) => candidate.incidentId === frame.incident_id);
  if (!popup || !frame.status) return popups;
  const stillPages = Array.isArray(frame.paged)
    ? frame.paged.includes(me)
    : UNACKNOWLEDGED_STATUSES.includes(frame.status) && frame.assigned_to === me;
  if (!stillPages) return popups.filter((candidate) => candidate !== popup);
  if (popup.severity === frame.severity && popup.status === frame.status) return popups;
  return popups.map((candidate) =>
    candidate === popup ? { ...candidate, severity: frame.severity ?? candidate.severity, status: frame.status } : candidate,
  );
}

export function dismissPopup(popups, incidentId) {
  return popups.filter((popup) => popup.incidentId !== incidentId);
}

// Most severe first, then the newest.
export function orderPopups(popups) {
  return [...popups].sort((a, b) => (RANK[a.severity] ?? 9) - (RANK[b.severity] ?? 9) || b.order - a.order);
}

// The pop-up's heading: what happened, in words.
export function popupHeading(popup) {
  switch (popup.reason) {
    case "LAST_RESORT":
    case "UNOWNED_REPAGE":
      return "Nobody has taken this: every doctor on call is paged";
    case "ESCALATED":
      return "Escalated to you";
    case "DECLINED":
      return "Passed to you: a colleague could not take it";
    case "REASSIGNED":
      return "Reassigned to you";
    case "REPAGED":
      return "Reminder: work has not started";
    default:
      break;
  }
  if (popup.notification?.event_type === "INCIDENT_ESCALATED") return "Escalated to you";
  if (popup.notification?.event_type === "INCIDENT_REPAGED") return "Reminder: work has not started";
  return "New alarm for you";
}
