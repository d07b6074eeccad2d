// My notifications' rules editor, the delivery ledger's timeline and the push helpers.
import { describe, expect, it } from "vitest";

import { isPending, statusSteps, timelineOf } from "../reach/ledger.js";
import { applicationServerKey, deviceLabel } from "../reach/push.js";
import { delayName, rowsOf, rowsProblem, stepsOf, targetOf } from "../reach/rules.js";

describe("rules", () => {
  const server = {
    source: "personal",
    steps: [
      { position: 1, delay_seconds: 120, kind: "email", contact_method_id: null },
      { position: 0, delay_seconds: 0, kind: null, contact_method_id: 5 },
    ],
  };

  it("edits the server's steps as rows in order of delay, in minutes", () => {
    expect(rowsOf(server)).toEqual([
      { minutes: "0", target: "method:5" },
      { minutes: "2", target: "kind:email" },
    ]);
    expect(rowsOf(undefined)).toEqual([]);
  });

  it("writes rows back as steps in seconds, ordered by delay", () => {
    expect(stepsOf([{ minutes: "2", target: "kind:email" }, { minutes: "0.5", target: "method:5" }])).toEqual([
      { delay_seconds: 30, contact_method_id: 5, kind: null },
      { delay_seconds: 120, contact_method_id: null, kind: "email" },
    ]);
  });

  it("round-trips a step's target", () => {
    expect(targetOf({ contact_method_id: 9, kind: null })).toBe("method:9");
    expect(targetOf({ contact_method_id: null, kind: "push" })).toBe("kind:push");
  });

  it("refuses an empty, negative or over-a-day delay", () => {
    expect(rowsProblem([{ minutes: "0", target: "kind:push" }])).toBeNull();
    expect(rowsProblem([{ minutes: "", target: "kind:push" }])).toMatch(/Step 1/);
    expect(rowsProblem([{ minutes: "1", target: "kind:push" }, { minutes: "-1", target: "kind:push" }])).toMatch(/Step 2/);
    expect(rowsProblem([{ minutes: "1441", target: "kind:push" }])).toMatch(/1440/);
    expect(rowsProblem([{ minutes: "1", target: "" }])).toMatch(/method/);
  });

  it("says delays as people do", () => {
    expect(delayName(0)).toBe("at once");
    expect(delayName(120)).toBe("after 2 min");
    expect(delayName(90)).toBe("after 90 s");
  });
});

describe("the delivery ledger", () => {
  const push = {
    attempt_id: 1,
    employee_id: "D01",
    channel: "push",
    rule_step: 0,
    status: "acknowledged",
    due_at: "2026-12-07T10:00:00Z",
    queued_at: "2026-12-07T10:00:00Z",
    sending_at: "2026-12-07T10:00:01Z",
    sent_at: "2026-12-07T10:00:01.500Z",
    delivered_at: "2026-12-07T10:00:02Z",
    read_at: null,
    failed_at: null,
    cancelled_at: null,
    acknowledged_at: "2026-12-07T10:00:30Z",
  };
  const email = {
    ...push,
    attempt_id: 2,
    channel: "email",
    rule_step: 1,
    status: "cancelled",
    due_at: "2026-12-07T10:02:00Z",
    sending_at: null,
    sent_at: null,
    delivered_at: null,
    acknowledged_at: null,
    cancelled_at: "2026-12-07T10:00:30Z",
  };

  it("lists an attempt's statuses with their times, oldest first", () => {
    expect(statusSteps(push).map((step) => step.status)).toEqual(["queued", "sending", "sent", "delivered", "acknowledged"]);
  });

  it("ends a dead letter or a decline on its own status", () => {
    const dead = { ...push, status: "dead_letter", delivered_at: null, acknowledged_at: null, failed_at: "2026-12-07T10:01:00Z" };
    expect(statusSteps(dead).map((step) => step.status)).toEqual(["queued", "sending", "sent", "failed", "dead_letter"]);
  });

  it("groups attempts per person in the order they were due, named from the assignments", () => {
    const people = timelineOf([email, push, { ...push, attempt_id: 3, employee_id: "D02" }], { D01: "Dr. Brooks" });
    expect(people.map((person) => person.name)).toEqual(["Dr. Brooks", "D02"]);
    expect(people[0].attempts.map((attempt) => attempt.channel)).toEqual(["push", "email"]);
    expect(isPending({ status: "queued" })).toBe(true);
    expect(isPending(email)).toBe(false);
  });
});

describe("push helpers", () => {
  it("decodes a base64url VAPID key to the 65 bytes of a P-256 point", () => {
    const key = "BPwHP1X2OHJ2Bfq8F5vMAFqvA6vzqpPBTtSoFYk1-Y8SSJe6CMmUjQJ3Oz2R1Hx2F9ZuEdf2TrB9Z0gUBmT7yBM";
    const bytes = applicationServerKey(key);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(bytes.length).toBe(65);
    expect(bytes[0]).toBe(4);
  });

  it("names the device by browser and system", () => {
    expect(deviceLabel("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36")).toBe("Chrome on Android");
    expect(deviceLabel("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1")).toBe("Safari on iOS");
    expect(deviceLabel("curl/8")).toBe("Browser");
  });
});
