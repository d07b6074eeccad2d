// A critical alarm the clinician can hear: while a CRITICAL incident assigned to me waits for
// my acknowledgement the page beeps (Web Audio), repeating until it is acknowledged or muted for a
// while; the tab title counts my unacknowledged incidents; with the tab hidden a system
// notification is shown too. Kept current from the incident_updated frames every signed-in socket
// gets, seeded from the server at start and after a reconnect.
//
// window.__hgAlarm = {playing, muted_until} says what the alarm is doing (for tests and support).
import { useCallback, useEffect, useRef, useState } from "react";

import { api } from "./api.js";
import { useAuth } from "./auth.jsx";
import { UNACKNOWLEDGED_STATUSES } from "./domain.js";
import { faviconHref } from "./format.js";
import { useLive } from "./live.jsx";

const BEEP_EVERY_MS = 1500;
const MUTE_MS = 2 * 60 * 1000;
const TITLE = document.title;
const LATER_KEY = "healthguard.background-alerts-later";

function setFavicon(count) {
  const link = document.querySelector("link[rel='icon']");
  if (link) {
    link.href = faviconHref(count);
    link.dataset.count = String(count);
  }
}

function publish(state) {
  window.__hgAlarm = state;
}

// Two short tones, the pattern of a high-priority medical alarm, played on `context`.
function beep(context) {
  const start = context.currentTime;
  for (const [offset, frequency] of [
    [0, 880],
    [0.25, 660],
  ]) {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.2, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.2);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(start + offset);
    oscillator.stop(start + offset + 0.2);
  }
}

function useUnacknowledgedMine() {
  const { employee } = useAuth();
  const { subscribe } = useLive();
  const me = employee?.employee_id;
  const [waiting, setWaiting] = useState(() => new Map()); // incident_id -> {severity, title}

  const seed = useCallback(async () => {
    try {
      const answer = await api("/incidents", { query: { mine: true, status: UNACKNOWLEDGED_STATUSES, limit: 200 } });
      setWaiting(new Map(answer.incidents.map((i) => [i.incident_id, { severity: i.severity, title: i.title }])));
    } catch {
      // The frames still keep it current.
    }
  }, []);

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- seeding from the server is this effect's job
    seed();
    return subscribe((event) => {
      if (event.type === "reconnected") {
        seed();
        return;
      }
      if (event.type !== "incident_updated" || !event.status) return;
      setWaiting((current) => {
        const waits = event.assigned_to === me && UNACKNOWLEDGED_STATUSES.includes(event.status);
        if (waits === current.has(event.incident_id)) return current;
        const next = new Map(current);
        if (waits) next.set(event.incident_id, { severity: event.severity, title: event.title });
        else next.delete(event.incident_id);
        return next;
      });
    });
  }, [subscribe, seed, me]);
  return waiting;
}

export function AlarmControl() {
  const waiting = useUnacknowledgedMine();
  const [mutedUntil, setMutedUntil] = useState(0);
  const audio = useRef(null);
  const told = useRef(new Set());
  const critical = [...waiting.entries()].filter(([, incident]) => incident.severity === "CRITICAL");
  const muted = mutedUntil > 0; // set back to 0 when the mute runs out
  const sounding = critical.length > 0 && !muted;

  // The title, "(2) HealthGuard Ops", and the favicon, a red "2", while two of mine wait for
  // acknowledgement: both show on a background tab.
  useEffect(() => {
    document.title = waiting.size > 0 ? `(${waiting.size}) ${TITLE}` : TITLE;
    setFavicon(waiting.size);
  }, [waiting.size]);
  useEffect(
    () => () => {
      document.title = TITLE;
      setFavicon(0);
    },
    [],
  );

  useEffect(() => {
    publish({ playing: sounding, muted_until: muted ? mutedUntil : null });
    if (!sounding) return undefined;
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) return undefined;
    const context = new AudioContextClass();
    audio.current = context;
    context.resume().catch(() => {});
    beep(context);
    const timer = setInterval(() => beep(context), BEEP_EVERY_MS);
    return () => {
      clearInterval(timer);
      context.close().catch(() => {});
      audio.current = null;
      publish({ playing: false, muted_until: null });
    };
  }, [sounding, muted, mutedUntil]);

  // The mute runs out on its own.
  useEffect(() => {
    if (!muted) return undefined;
    const timer = setTimeout(() => setMutedUntil(0), mutedUntil - Date.now());
    return () => clearTimeout(timer);
  }, [muted, mutedUntil]);

  // In the background, a system notification for each new critical incident of mine.
  useEffect(() => {
    for (const [id, incident] of critical) {
      if (told.current.has(id)) continue;
      told.current.add(id);
      if (document.visibilityState === "hidden" && typeof Notification !== "undefined" && Notification.permission === "granted") {
        new Notification(`CRITICAL: incident #${id}`, { body: incident.title, tag: `incident-${id}`, requireInteraction: true });
      }
    }
  });

  return (
    <div className="alarm-control">
      {critical.length > 0 && (
        <button
          type="button"
          className={`alarm-button ${muted ? "muted" : "sounding"}`}
          onClick={() => setMutedUntil(muted ? 0 : Date.now() + MUTE_MS)}
          aria-pressed={muted}
          title={muted ? "Tap to unmute" : "Silence for 2 minutes"}
        >
          {muted ? "Alarm muted" : `Mute alarm (${critical.length} critical)`}
        </button>
      )}
    </div>
  );
}

// Asked once signed in, in the page rather than the crowded header, saying why: the system
// notification is what reaches a clinician whose tab is in the background.
export function BackgroundAlertsPrompt() {
  const [permission, setPermission] = useState(() => (typeof Notification === "undefined" ? "unsupported" : Notification.permission));
  // "Not now" holds for the rest of the tab's session.
  const [later, setLater] = useState(() => sessionStorage.getItem(LATER_KEY) === "1");
  if (permission !== "default" || later) return null;
  return (
    <div className="notice info background-alerts" role="region" aria-label="Alerts in the background">
      <p>
        Allow notifications so that a critical alarm assigned to you reaches you while this tab is in the background
        or the screen is locked.
      </p>
      <button type="button" className="primary small" onClick={() => Notification.requestPermission().then(setPermission)}>
        Allow alerts in background
      </button>{" "}
      <button
        type="button"
        className="small"
        onClick={() => {
          sessionStorage.setItem(LATER_KEY, "1");
          setLater(true);
        }}
      >
        Not now
      </button>
    </div>
  );
}
