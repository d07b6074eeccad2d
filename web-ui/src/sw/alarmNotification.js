// What the service worker makes of a push message (RFC 8030/8291, sent by the notification
// worker): the system notification a locked phone shows in its shade, and what its actions do.
// Plain functions, so the unit tests and the worker share one definition.
//
// The payload is the minimum necessary (REACH-CONTRACT.md): severity, room, ward and the alarm
// type, never a patient's name unless the hospital allows it (then the server puts it in
// `summary`). `ack_token` is a short-lived, single-use token bound to this one delivery: the
// Acknowledge action posts it, never the session, which a notification shade has no access to.

export const ACKNOWLEDGE = "acknowledge";
export const OPEN = "open";
export const DELIVERED = "delivered"; // not an action of the notification: the push arrived
const URGENT = new Set(["CRITICAL", "HIGH"]);

export function incidentPath(incidentId) {
  return `/incidents/${encodeURIComponent(incidentId)}`;
}

// "CRITICAL · Room 12 · SpO2 low": what a glance at the shade must tell.
export function alarmTitle(payload) {
  const place = payload.room ? `Room ${payload.room}` : payload.ward;
  const parts = [payload.severity, place, payload.alert_name].filter((part) => part);
  return parts.length > 0 ? parts.join(" · ") : payload.title || "HealthGuard Ops alarm";
}

// A test message from My notifications (the server's "Send a test": no incident, no token).
export function isTestMessage(payload) {
  return !payload.incident_id;
}

// The title and the options of registration.showNotification for one payload.
export function alarmNotification(payload) {
  if (isTestMessage(payload)) {
    return {
      title: payload.title || "HealthGuard test notification",
      options: {
        body: payload.body || "This is a test of your notifications.",
        tag: "healthguard-test",
        icon: "/icons/icon-192.png",
        badge: "/icons/icon-192.png",
        data: { incidentId: null, token: null, attemptId: null, url: "/notifications" },
        actions: [{ action: OPEN, title: "Open" }],
      },
    };
  }
  const incidentId = payload.incident_id;
  const token = payload.ack_token || payload.token || null;
  // The server's line or two (message_text.py: no patient name unless the hospital allows it).
  const body = payload.body || payload.summary || payload.title || "";
  return {
    title: alarmTitle(payload),
    options: {
      body,
      // One notification per incident: a re-page replaces it and rings again.
      tag: `incident-${incidentId}`,
      renotify: true,
      // A critical or high alarm stays on screen until the clinician acts on it.
      requireInteraction: URGENT.has(payload.severity),
      icon: "/icons/icon-192.png",
      badge: "/icons/icon-192.png",
      timestamp: Date.now(),
      data: { incidentId, token, attemptId: payload.attempt_id ?? null, url: payload.url || incidentPath(incidentId) },
      // Without a token there is nothing to acknowledge with from the shade: Open only.
      actions: token
        ? [
            { action: ACKNOWLEDGE, title: "Acknowledge" },
            { action: OPEN, title: "Open" },
          ]
        : [{ action: OPEN, title: "Open" }],
    },
  };
}

// The request an action sends: the token and the action, no cookie (credentials "omit") and no
// CSRF header; the server knows the person and the incident from the token. "acknowledge" uses
// the token up; "delivered" (the push arrived) and "open" stamp the ledger's delivered and read
// times and leave it usable.
export function channelAckRequest(token, action = ACKNOWLEDGE) {
  return [
    "/api/v1/channel-ack",
    {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ token, action }),
    },
  ];
}

// What the clinician is told after Acknowledge from the shade (a second, quiet notification):
// `status` is the HTTP status, `answer` the JSON body, if any.
export function acknowledgeOutcome(data, status, answer) {
  const which = `incident #${data.incidentId}`;
  if (status >= 200 && status < 300) {
    return { ok: true, title: "Acknowledged", body: `You acknowledged ${which}.` };
  }
  if (status === 410) {
    return {
      ok: false,
      title: "Not acknowledged",
      body: `This alarm's link has expired or was already used (${which}). Open the app to act on it.`,
    };
  }
  const message = answer?.message || (status ? `HTTP ${status}` : "no connection");
  return { ok: false, title: "Not acknowledged", body: `Acknowledging ${which} failed: ${message}. Open the app.` };
}

// The window to reuse for Open: one already on this site (focused and sent to the incident),
// else none (the worker opens a new one).
export function windowToReuse(clients, origin) {
  return clients.find((client) => client.url.startsWith(`${origin}/`)) ?? null;
}
