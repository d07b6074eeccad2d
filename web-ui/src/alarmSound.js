// What the alarm sounds, as pure functions of what waits for me, the mute and the time, so the
// rules can be tested without a browser (alarm.jsx plays them).
//
// Mute is per alarm: it silences the alarms sounding when it is pressed, for MUTE_MS, and the
// button counts the time down. An alarm that starts sounding afterwards (a new CRITICAL, say) is
// not covered by it and sounds at once. When the time runs out, whatever still waits sounds again.

export const MUTE_MS = 2 * 60 * 1000;
// A page that has heard nothing from the server this long, while its clinician is on duty, sounds
// too: a silent console is the failure a clinician cannot see from across the room.
export const OFFLINE_ALARM_AFTER_MS = 30 * 1000;
export const OFFLINE = "offline"; // the connection's own "alarm", muted like the others

// The tones, loudest first: a CRITICAL of mine, a HIGH of mine (softer, less often), the lost
// connection.
export const TONES = {
  critical: { every: 1500, notes: [[0, 880, 0.2], [0.25, 660, 0.2]], vibrate: [400, 150, 400] },
  high: { every: 4000, notes: [[0, 587, 0.07]], vibrate: [150] },
  offline: { every: 8000, notes: [[0, 392, 0.12], [0.3, 392, 0.12], [0.6, 330, 0.12]], vibrate: [200, 100, 200] },
};

// `waiting`: Map incident_id -> {severity} of the alarms paging me. Answers what sounds now.
export function soundingNow(waiting, { mute = null, now = Date.now(), offlineFor = 0, onDuty = false } = {}) {
  const muted = (id) => mute !== null && now < mute.until && mute.ids.has(id);
  const critical = [];
  const high = [];
  for (const [id, alarm] of waiting) {
    if (muted(id)) continue;
    if (alarm.severity === "CRITICAL") critical.push(id);
    else if (alarm.severity === "HIGH") high.push(id);
  }
  const offline = onDuty && offlineFor >= OFFLINE_ALARM_AFTER_MS && !muted(OFFLINE);
  const tone = critical.length ? "critical" : high.length ? "high" : offline ? "offline" : null;
  return { critical, high, offline, tone };
}

// Mute pressed: the alarms sounding now are silenced until now + MUTE_MS (with those a mute still
// running covers).
export function muteSounding(sounding, { mute = null, now = Date.now() } = {}) {
  const ids = new Set([...sounding.critical, ...sounding.high]);
  if (sounding.offline) ids.add(OFFLINE);
  if (mute !== null && now < mute.until) for (const id of mute.ids) ids.add(id);
  return { ids, until: now + MUTE_MS };
}

// Milliseconds of mute left (0 once it has run out, or with no mute).
export function muteLeft(mute, now = Date.now()) {
  return mute === null ? 0 : Math.max(0, mute.until - now);
}

// "1:59": the countdown on the button.
export function formatLeft(ms) {
  const seconds = Math.ceil(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}
