// The service worker (served as /sw.js, scope /): caches the app shell, shows alarms that come
// as Web Push messages even when no tab is open, and acts on their Acknowledge and Open actions
// from the notification shade (a locked phone: no window, no session).
//
// Built by Vite as its own entry (vite.config.js) into a classic script with nothing imported
// at run time: keep what it imports out of the SPA's own modules, or Rollup would split a shared
// chunk that a classic worker cannot load.
import {
  ACKNOWLEDGE,
  DELIVERED,
  OPEN,
  acknowledgeOutcome,
  alarmNotification,
  channelAckRequest,
  incidentPath,
  windowToReuse,
} from "./alarmNotification.js";
import { BYPASS, CACHE_FIRST, cacheKeyFor, strategyFor } from "./shell.js";

/* global __SHELL_FILES__, __SHELL_VERSION__ */
// Replaced at build time (vite.config.js, shellFiles): the build's files, and a version that
// changes with them so a new release gets a new cache and the old one is deleted.
const SHELL = __SHELL_FILES__;
const CACHE = `healthguard-shell-${__SHELL_VERSION__}`;
const ALWAYS = ["/index.html", "/manifest.webmanifest", "/icons/icon-192.png", "/icons/icon-512.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([...ALWAYS, ...SHELL]))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name.startsWith("healthguard-shell-") && name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") await cache.put(key, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw error;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") await cache.put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const strategy = strategyFor(request.url, { method: request.method, mode: request.mode, origin: self.location.origin });
  if (strategy === BYPASS) return;
  event.respondWith(
    strategy === CACHE_FIRST ? cacheFirst(request) : networkFirst(request, cacheKeyFor(request.url, request.mode)),
  );
});

// Tells the server what became of the message, for the ledger: "delivered" (it reached this
// device; the push service's own answer to the sender only says it accepted it) or "open". Best
// effort: the alarm is shown, the incident opened, whatever this answers; the token stays usable.
async function tellServer(token, action) {
  if (!token) return;
  try {
    await fetch(...channelAckRequest(token, action));
  } catch {
    // Offline between the push and now: nothing to do.
  }
}

async function showAlarm(payload) {
  const { title, options } = alarmNotification(payload);
  await self.registration.showNotification(title, options);
  await tellServer(options.data.token, DELIVERED);
}

self.addEventListener("push", (event) => {
  let payload;
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = { title: event.data?.text() };
  }
  // A push must always show something (browsers penalise a silent one), even a malformed one.
  event.waitUntil(showAlarm(payload));
});

async function openIncident(data) {
  const url = new URL(data?.url || incidentPath(data?.incidentId ?? ""), self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const existing = windowToReuse(windows, self.location.origin);
  if (existing) {
    const shown = existing.url === url ? existing : await existing.navigate(url).catch(() => null);
    if (shown) return shown.focus();
  }
  return self.clients.openWindow(url);
}

async function acknowledgeFromShade(notification) {
  const data = notification.data || {};
  let status = 0;
  let answer = null;
  try {
    const response = await fetch(...channelAckRequest(data.token, ACKNOWLEDGE));
    status = response.status;
    answer = await response.json().catch(() => null);
  } catch {
    // No connection: status stays 0, said as such below.
  }
  const outcome = acknowledgeOutcome(data, status, answer);
  // Said where the clinician is looking: the shade. A failure keeps Open at hand.
  await self.registration.showNotification(outcome.title, {
    body: outcome.body,
    tag: `incident-${data.incidentId}`,
    renotify: false,
    silent: outcome.ok,
    icon: "/icons/icon-192.png",
    data: { ...data, token: null, outcome: outcome.ok ? "acknowledged" : "failed" },
    actions: outcome.ok ? [] : [{ action: "open", title: "Open" }],
  });
  return outcome;
}

// What a click on the notification does: its Acknowledge action acknowledges by the token; its
// Open action, or the body, opens the incident. Named and on `self` so it can be called with a
// displayed notification where no one can click one (tests/test_push_e2e.py says why).
async function onAlarmNotificationClick(notification, action) {
  notification.close();
  if (action === ACKNOWLEDGE && notification.data?.token) return acknowledgeFromShade(notification);
  await Promise.all([openIncident(notification.data), tellServer(notification.data?.token, OPEN)]);
  return { ok: true, opened: true };
}
self.onAlarmNotificationClick = onAlarmNotificationClick;

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(onAlarmNotificationClick(event.notification, event.action));
});
