// The alarm a clinician hears. Every alarm paging me (the server's `paged` list: the assignee
// while unacknowledged, and at the last escalation step every clinician paged with them) sounds
// until it is taken or muted: a CRITICAL with the two-tone alarm, a HIGH with a softer, rarer
// tone; a phone vibrates with it where it can. Mute is per alarm (alarmSound.js): a new CRITICAL
// after a mute sounds at once. A page that has heard nothing from the server for 30 s while its
// clinician is on duty sounds too. The tab's title and favicon count the alarms paging me; with
// the tab hidden a system notification is shown for each new CRITICAL.
//
// Kept current from the incident_updated frames every signed-in socket gets, seeded from the
// server at start and after a reconnect. window.__hgAlarm says what it is doing (for support).
import { useCallback, useEffect, useRef, useState } from "react";

import { MUTE_MS, OFFLINE, TONES, formatLeft, muteLeft, muteSounding, soundingNow } from "./alarmSound.js";
import { api } from "./api.js";
import { useAuth } from "./auth.jsx";
import { UNACKNOWLEDGED_STATUSES, WS_FRAME_INCIDENT_UPDATED, pagedFor } from "./domain.js";
import { faviconHref } from "./format.js";
import { useLive } from "./live.jsx";
import { useNow } from "./ui.jsx";

const TITLE = document.title;
const ON_DUTY_REFRESH_MS = 5 * 60 * 1000;

function setFavicon(count) {
  const link = document.querySelector("link[rel='icon']");
  if (link) {
    link.href = faviconHref(count);
    link.dataset.count = String(count);
  }
}

// One audio context for the page. Browsers start it suspended until the user has touched the
// page; any tap or key resumes it (signing in is one), so the first alarm is heard.
let audioContext = null;
function sharedAudio() {
  const AudioContextClass = window.AudioContext || window.webkitAudioContext;
  if (!AudioContextClass) return null;
  if (!audioContext) {
    audioContext = new AudioContextClass();
    const wake = () => audioContext.state === "suspended" && audioContext.resume().catch(() => {});
    window.addEventListener("pointerdown", wake, { capture: true });
    window.addEventListener("keydown", wake, { capture: true });
  }
  if (audioContext.state === "suspended") audioContext.resume().catch(() => {});
  return audioContext;
}

// One round of a tone (TONES): its notes on the shared context, and a vibration on a phone.
function play(tone) {
  const { notes, vibrate } = TONES[tone];
  const context = sharedAudio();
  if (context) {
    const start = context.currentTime;
    for (const [offset, frequency, volume] of notes) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(volume, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.2);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + 0.2);
    }
  }
  if (typeof navigator.vibrate === "function") navigator.vibrate(vibrate);
}

// The alarms paging me: incident_id -> {severity, title}.
function useAlarmsForMe() {
  const { employee } = useAuth();
  const { subscribe } = useLive();
  const me = employee?.employee_id;
  const [waiting, setWaiting] = useState(() => new Map());

  const seed = useCallback(async () => {
    if (!me) return;
    try {
      // Mine, and every alarm waiting for someone (the last step pages more than the assignee).
      const [mine, unacknowledged] = await Promise.all([
        api("/incidents", { query: { mine: true, status: UNACKNOWLEDGED_STATUSES, limit: 200 } }),
        api("/incidents", { query: { status: UNACKNOWLEDGED_STATUSES, limit: 200 } }),
      ]);
      const paging = [...mine.incidents, ...unacknowledged.incidents].filter((i) => pagedFor(i).includes(me));
      setWaiting(new Map(paging.map((i) => [i.incident_id, { severity: i.severity, title: i.title }])));
    } catch {
      // The frames still keep it current.
    }
  }, [me]);

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- seeding from the server is this effect's job
    seed();
    return subscribe((event) => {
      if (event.type === "reconnected") {
        seed();
        return;
      }
      if (event.type !== WS_FRAME_INCIDENT_UPDATED || !event.status) return;
      setWaiting((current) => {
        const pages = pagedFor(event).includes(me);
        const known = current.get(event.incident_id);
        if (!pages && !known) return current;
        if (pages && known?.severity === event.severity) return current;
        const next = new Map(current);
        if (pages) next.set(event.incident_id, { severity: event.severity, title: event.title });
        else next.delete(event.incident_id);
        return next;
      });
    });
  }, [subscribe, seed, me]);
  return waiting;
}

// Whether I am on the rota now (the connection alarm is for the clinician on duty).
function useOnDuty() {
  const { employee } = useAuth();
  const [onDuty, setOnDuty] = useState(false);
  const me = employee?.employee_id;
  const role = employee?.role;
  useEffect(() => {
    if (!me || !role) return undefined;
    let alive = true;
    const check = () =>
      api("/oncall/current", { query: { role } })
        .then((answer) => alive && setOnDuty(answer.clinicians.some((c) => c.employee_id === me)))
        .catch(() => {}); // offline: keep what was known
    check();
    const timer = setInterval(check, ON_DUTY_REFRESH_MS);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [me, role]);
  return onDuty;
}

export function AlarmControl() {
  const waiting = useAlarmsForMe();
  const onDuty = useOnDuty();
  const { connection, lastDataAt } = useLive();
  const [mute, setMute] = useState(null);
  const now = useNow(1000);
  const told = useRef(new Set());
  const offlineFor = connection !== "live" && lastDataAt ? now - lastDataAt : 0;
  const sounding = soundingNow(waiting, { mute, now, offlineFor, onDuty });
  const left = muteLeft(mute, now);
  const mutedWaiting = left > 0 && ([...waiting.keys()].some((id) => mute.ids.has(id)) || mute.ids.has(OFFLINE));
  const tone = sounding.tone;

  // The title, "(2) HealthGuard Ops", and the favicon, a red "2", while two alarms page me: both
  // show on a background tab.
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

  // The tone repeats while it is the loudest one sounding; a change of tone starts the new one
  // at once.
  useEffect(() => {
    window.__hgAlarm = { playing: tone !== null, tone, muted_until: mute?.until ?? null };
    if (!tone) return undefined;
    play(tone);
    const timer = setInterval(() => play(tone), TONES[tone].every);
    return () => clearInterval(timer);
  }, [tone, mute]);

  // In the background, a system notification for each new CRITICAL paging me.
  useEffect(() => {
    for (const [id, alarm] of waiting) {
      if (alarm.severity !== "CRITICAL" || told.current.has(id)) continue;
      told.current.add(id);
      if (document.visibilityState === "hidden" && typeof Notification !== "undefined" && Notification.permission === "granted") {
        new Notification(`CRITICAL: incident #${id}`, { body: alarm.title, tag: `incident-${id}`, requireInteraction: true });
      }
    }
  }, [waiting]);

  if (tone) {
    const parts = [];
    if (sounding.critical.length) parts.push(`${sounding.critical.length} critical`);
    if (sounding.high.length) parts.push(`${sounding.high.length} high`);
    const label = parts.length ? `Mute alarm (${parts.join(", ")})` : "Mute connection alarm";
    return (
      <div className="alarm-control">
        <button
          type="button"
          className={`alarm-button sounding tone-${tone}`}
          onClick={() => setMute(muteSounding(sounding, { mute, now: Date.now() }))}
          title={`Silence these for ${MUTE_MS / 60000} minutes; a new alarm still sounds`}
        >
          {label}
        </button>
      </div>
    );
  }
  if (mutedWaiting) {
    return (
      <div className="alarm-control">
        <button
          type="button"
          className="alarm-button muted"
          aria-pressed="true"
          aria-label={`Alarm muted, ${formatLeft(left)} left. Tap to sound it again`}
          onClick={() => setMute(null)}
          data-testid="mute-countdown"
        >
          Muted <span className="mute-left">{formatLeft(left)}</span>
        </button>
      </div>
    );
  }
  return <div className="alarm-control" />;
}
