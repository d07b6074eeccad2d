import { SEVERITIES } from "./domain.js";

const SEVERITY_RANK = Object.fromEntries(SEVERITIES.map((severity, index) => [severity, index]));

// Most severe first, then the one waiting longest.
export function bySeverityThenAge(a, b) {
  return (
    (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) ||
    new Date(a.created_at) - new Date(b.created_at)
  );
}

// Where an incident's alarm is: the patient's room and ward, or for a device's own alarm (a silent
// ward monitor or gateway: no patient) its ward, or the whole hospital.
export function placeOf(incident) {
  if (incident.room) return incident.ward ? `Room ${incident.room} · ${incident.ward}` : `Room ${incident.room}`;
  return incident.ward || (incident.device_name ? "Hospital-wide" : "");
}

// Whom (or what) an incident is about: the patient, or the device for its own alarm.
export function subjectOf(incident) {
  if (incident.patient_id || !incident.device_name) return incident.patient_name;
  return `Device: ${incident.device_name}`;
}

export function humanize(text) {
  if (!text) return "";
  const words = String(text).replaceAll("_", " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function formatDateTime(value, timeZone) {
  if (!value) return "—";
  return new Date(value).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
    hourCycle: "h23",
    ...(timeZone ? { timeZone } : {}),
  });
}

export function formatTime(value, timeZone) {
  if (!value) return "—";
  return new Date(value).toLocaleTimeString(undefined, {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    ...(timeZone ? { timeZone } : {}),
  });
}

export function formatDay(value, timeZone) {
  return new Date(value).toLocaleDateString(undefined, {
    weekday: "long",
    day: "numeric",
    month: "short",
    ...(timeZone ? { timeZone } : {}),
  });
}

// Sub-second times in ms ("148 ms"), never "0 s".
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (Number(seconds) < 1) return `${Math.round(Number(seconds) * 1000)} ms`;
  if (Number(seconds) < 10) return `${Number(seconds).toFixed(1)} s`;
  const total = Math.round(Number(seconds));
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${total % 60} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function timeAgo(value, now = Date.now()) {
  if (!value) return "";
  const seconds = Math.max(0, Math.round((now - new Date(value)) / 1000));
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

// The calendar date (YYYY-MM-DD) of an instant in the given zone.
export function dayOf(value, timeZone) {
  return new Intl.DateTimeFormat("en-CA", {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    ...(timeZone ? { timeZone } : {}),
  }).format(new Date(value));
}

// The calendar date `days` from today in the given zone.
export function isoDay(days = 0, timeZone) {
  return dayOf(Date.now() + days * 86400000, timeZone);
}

// "40 s ago", "3 min ago": how old something is, to the second while it is under a minute.
export function ageOf(value, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - new Date(value)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

// Time left to a deadline as m:ss ("in 1:05"), or how far past it ("overdue 0:12").
export function countdown(deadline, now = Date.now()) {
  const left = Math.round((new Date(deadline) - now) / 1000);
  const size = Math.abs(left);
  const text = `${Math.floor(size / 60)}:${String(size % 60).padStart(2, "0")}`;
  return left >= 0 ? `in ${text}` : `overdue ${text}`;
}

// A shift as the rota shows it, in the hospital's zone: "08:00–16:00", "20:00–08:00 (+1 day)", and
// a 24-hour shift as "24 h from 08:00" (never "00:00–00:00").
export function formatShift(startsAt, endsAt, timeZone) {
  const start = formatTime(startsAt, timeZone);
  const hours = (new Date(endsAt) - new Date(startsAt)) / 3600000;
  if (hours === 24) return `24 h from ${start}`;
  const days = Math.round((Date.parse(dayOf(endsAt, timeZone)) - Date.parse(dayOf(startsAt, timeZone))) / 86400000);
  return `${start}–${formatTime(endsAt, timeZone)}${days > 0 ? ` (+${days} day${days > 1 ? "s" : ""})` : ""}`;
}

// A reading with its unit ("0 bpm": a reading of 0 is a reading). Null when there is none, and
// when the alarm measures nothing (an alert type without a unit: a cardiac arrest's "0" from the
// device means nothing to the reader).
export function formatReading(value, unit) {
  if (value === null || value === undefined || !unit) return null;
  return `${value} ${unit}`;
}

// The normal range of a reading ("60–100 bpm", "15 GCS"), null when none is known.
export function formatRange(min, max, unit) {
  if (min === null || min === undefined || max === null || max === undefined) return null;
  const range = min === max ? `${min}` : `${min}–${max}`;
  return unit ? `${range} ${unit}` : range;
}

// Whether a reading lies outside its normal range.
export function outsideRange(value, min, max) {
  if (value === null || value === undefined || min === null || min === undefined) return false;
  return value < min || value > max;
}

// The favicon: the product's cross, or the number of my unacknowledged incidents on red.
export function faviconHref(count) {
  const mark = "<path d='M6.5 3h3v3.5H13v3H9.5V13h-3V9.5H3v-3h3.5z' fill='#fff'/>";
  const text = count > 99 ? "99+" : String(count);
  const size = text.length > 2 ? 7 : text.length > 1 ? 9 : 12;
  const body = count > 0
    ? `<text x='8' y='12' text-anchor='middle' font-family='Arial,sans-serif' font-weight='700' font-size='${size}' fill='#fff'>${text}</text>`
    : mark;
  const svg = `<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><rect width='16' height='16' rx='3' fill='#b3261e'/>${body}</svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}
