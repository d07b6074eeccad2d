import { describe, expect, it } from "vitest";

import { ageOf, countdown, formatDuration } from "../format.js";
import { reconnectDelay } from "../live.jsx";

describe("ageOf", () => {
  it("counts seconds under a minute, then minutes and hours", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(ageOf("2026-01-01T11:59:20Z", now)).toBe("40 s ago");
    expect(ageOf("2026-01-01T11:57:00Z", now)).toBe("3 min ago");
    expect(ageOf("2026-01-01T09:00:00Z", now)).toBe("3 h ago");
  });
});

describe("formatDuration", () => {
  it("says — for no value and keeps 0 as 0 s", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(0)).toBe("0 s");
  });
});

describe("reconnectDelay", () => {
  it("jitters between half and one and a half times the step, capped at the last step", () => {
    expect(reconnectDelay(0, () => 0)).toBe(500);
    expect(reconnectDelay(0, () => 0.999)).toBeLessThan(1500);
    expect(reconnectDelay(50, () => 0.5)).toBe(20000);
  });
});

describe("countdown", () => {
  it("counts down in m:ss and then says how far overdue", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(countdown("2026-01-01T12:01:05Z", now)).toBe("in 1:05");
    expect(countdown("2026-01-01T11:59:48Z", now)).toBe("overdue 0:12");
  });
});
