// The delivery ledger (GET /api/v1/deliveries?incident_id=N) as a timeline: each attempt to reach
// a person by one channel, and every status it went through with its time, in order.

const STEPS = [
  ["queued_at", "queued", "Queued"],
  ["sending_at", "sending", "Sending"],
  ["sent_at", "sent", "Sent"],
  ["delivered_at", "delivered", "Delivered"],
  ["read_at", "read", "Opened"],
  ["failed_at", "failed", "Failed"],
  ["cancelled_at", "cancelled", "Cancelled"],
  ["acknowledged_at", "acknowledged", "Acknowledged from it"],
];

export const CHANNEL_NAMES = {
  push: "Push",
  email: "Email",
  sms: "SMS",
  voice: "Voice call",
  phone: "Phone",
  badge: "Badge",
};

export const STATUS_NAMES = {
  queued: "Queued",
  sending: "Sending",
  sent: "Sent",
  delivered: "Delivered",
  read: "Opened",
  failed: "Failed",
  dead_letter: "Gave up",
  cancelled: "Cancelled",
  acknowledged: "Acknowledged",
  rejected: "Declined",
};

// The statuses an attempt went through, oldest first: [{status, label, at}]. A dead letter or a
// decline has no time of its own: it is the last status, at the failure's (or last) time.
export function statusSteps(attempt) {
  const steps = STEPS.filter(([field]) => attempt[field]).map(([field, status, label]) => ({
    status,
    label,
    at: attempt[field],
  }));
  steps.sort((a, b) => new Date(a.at) - new Date(b.at));
  const last = steps.at(-1);
  if (!steps.some((step) => step.status === attempt.status) && last) {
    steps.push({ status: attempt.status, label: STATUS_NAMES[attempt.status] ?? attempt.status, at: last.at });
  }
  return steps;
}

// Attempts grouped per person, in the order they were first due; each row its steps.
export function timelineOf(deliveries, names = {}) {
  const people = new Map();
  for (const attempt of deliveries) {
    const entry = people.get(attempt.employee_id) ?? {
      employeeId: attempt.employee_id,
      name: names[attempt.employee_id] ?? attempt.employee_id,
      attempts: [],
    };
    entry.attempts.push({ ...attempt, steps: statusSteps(attempt) });
    people.set(attempt.employee_id, entry);
  }
  for (const entry of people.values()) entry.attempts.sort((a, b) => new Date(a.due_at) - new Date(b.due_at) || a.rule_step - b.rule_step);
  return [...people.values()];
}

// Still to come: a queued step that is not due yet ("email in 1:30 unless acknowledged").
export function isPending(attempt) {
  return attempt.status === "queued";
}
