// The notification rules editor's logic: steps per urgency as the server keeps them (GET/PUT
// /api/v1/notification-rules: {HIGH: {source, steps}, LOW: ...}), edited as rows of
// "after N minutes, by <method>".

export const URGENCIES = [
  { id: "HIGH", label: "Critical and high alarms" },
  { id: "LOW", label: "Medium and low alarms" },
];

export const KIND_NAMES = { push: "Push", email: "Email", phone: "Phone", badge: "Badge" };

const SOURCES = {
  personal: "your own rules",
  role: "your role's defaults, set by a supervisor",
  hospital: "the hospital's default",
};

export function sourceName(source) {
  return SOURCES[source] ?? "not set";
}

// A step's method as the select holds it: "method:<id>" for one of mine, "kind:<kind>" for every
// verified method of a kind (a role default, or "each of my phones' push").
export function targetOf(step) {
  return step.contact_method_id ? `method:${step.contact_method_id}` : `kind:${step.kind}`;
}

export function stepFromTarget(target, delaySeconds) {
  const [type, value] = target.split(":");
  return type === "method"
    ? { delay_seconds: delaySeconds, contact_method_id: Number(value), kind: null }
    : { delay_seconds: delaySeconds, contact_method_id: null, kind: value };
}

// Editable rows from the server's steps (minutes, in order of delay).
export function rowsOf(urgencyRules) {
  return [...(urgencyRules?.steps ?? [])]
    .sort((a, b) => a.delay_seconds - b.delay_seconds || a.position - b.position)
    .map((step) => ({ minutes: String(step.delay_seconds / 60), target: targetOf(step) }));
}

// What is wrong with the rows, or null: each needs a method and a delay of 0 to 1440 minutes.
export function rowsProblem(rows) {
  for (const [index, row] of rows.entries()) {
    const minutes = Number(row.minutes);
    if (row.minutes === "" || !Number.isFinite(minutes) || minutes < 0 || minutes > 1440) {
      return `Step ${index + 1}: the delay must be between 0 and 1440 minutes.`;
    }
    if (!row.target) return `Step ${index + 1}: choose a method.`;
  }
  return null;
}

// The PUT body of one urgency's rows (seconds, ordered by delay).
export function stepsOf(rows) {
  return rows
    .map((row) => stepFromTarget(row.target, Math.round(Number(row.minutes) * 60)))
    .sort((a, b) => a.delay_seconds - b.delay_seconds);
}

export function delayName(seconds) {
  if (seconds === 0) return "at once";
  if (seconds % 60 === 0) return `after ${seconds / 60} min`;
  return `after ${seconds} s`;
}
