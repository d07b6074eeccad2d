import { describe, expect, it } from "vitest";

import {
  ageOf,
  countdown,
  faviconHref,
  formatDuration,
  formatRange,
  formatReading,
  formatShift,
  formatTime,
} from "../format.js";
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
  it("says — for no value and keeps 0 as 0 ms", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(0)).toBe("0 ms");
  });
  it("shows sub-second times in ms, never 0 s", () => {
    expect(formatDuration(0.148)).toBe("148 ms");
    expect(formatDuration(0.9996)).toBe("1000 ms");
    expect(formatDuration(2.345)).toBe("2.3 s");
    expect(formatDuration(75)).toBe("1 min 15 s");
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

describe("formatShift", () => {
  it("says a night shift ends the next day and a 24-hour one is 24 h, in the hospital's zone", () => {
    const zone = "Europe/London";
    expect(formatShift("2026-01-05T08:00:00Z", "2026-01-05T16:00:00Z", zone)).toBe("08:00–16:00");
    expect(formatShift("2026-01-05T20:00:00Z", "2026-01-06T08:00:00Z", zone)).toBe("20:00–08:00 (+1 day)");
    expect(formatShift("2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", zone)).toBe("24 h from 00:00");
    expect(formatTime("2026-07-01T07:00:00Z", zone)).toBe("08:00"); // British Summer Time
    expect(formatTime("2026-07-01T07:00:00Z", "Asia/Kolkata")).toBe("12:30");
  });
});

describe("readings", () => {
  it("shows 0 as 0 with its unit, and the normal range", () => {
    expect(formatReading(0, "bpm")).toBe("0 bpm");
    expect(formatReading(null, "bpm")).toBe(null);
    // No unit: the alarm measures nothing (a cardiac arrest's "0"), so no reading is shown.
    expect(formatReading(0, null)).toBe(null);
    expect(formatRange(60, 100, "bpm")).toBe("60–100 bpm");
    expect(formatRange(15, 15, "GCS")).toBe("15 GCS");
    expect(formatRange(null, null, "bpm")).toBe(null);
  });
});

describe("faviconHref", () => {
  it("draws the count of unacknowledged incidents, or the cross when there are none", () => {
    expect(decodeURIComponent(faviconHref(3))).toContain(">3</text>");
    expect(decodeURIComponent(faviconHref(120))).toContain(">99+</text>");
    expect(decodeURIComponent(faviconHref(0))).not.toContain("<text");
  });
});
