import { describe, expect, it } from "vitest";

import { MUTE_MS, OFFLINE_ALARM_AFTER_MS, formatLeft, muteLeft, muteSounding, soundingNow } from "../alarmSound.js";

const t0 = Date.parse("2026-12-07T02:14:00Z");
const waiting = (...alarms) => new Map(alarms.map(([id, severity]) => [id, { severity }]));

describe("what sounds", () => {
  it("a CRITICAL of mine with the critical tone, a HIGH alone with its softer one, nothing for MEDIUM", () => {
    expect(soundingNow(waiting([1, "CRITICAL"], [2, "HIGH"]), { now: t0 }).tone).toBe("critical");
    expect(soundingNow(waiting([2, "HIGH"]), { now: t0 }).tone).toBe("high");
    expect(soundingNow(waiting([3, "MEDIUM"]), { now: t0 }).tone).toBe(null);
  });
  it("the lost connection, once past 30 s and only on duty", () => {
    const none = waiting();
    expect(soundingNow(none, { now: t0, offlineFor: OFFLINE_ALARM_AFTER_MS - 1, onDuty: true }).tone).toBe(null);
    expect(soundingNow(none, { now: t0, offlineFor: OFFLINE_ALARM_AFTER_MS, onDuty: true }).tone).toBe("offline");
    expect(soundingNow(none, { now: t0, offlineFor: 10 * OFFLINE_ALARM_AFTER_MS, onDuty: false }).tone).toBe(null);
  });
});

describe("mute per alarm", () => {
  it("silences the alarms sounding when pressed, and a new CRITICAL sounds at once", () => {
    const before = waiting([1, "CRITICAL"], [2, "HIGH"]);
    const mute = muteSounding(soundingNow(before, { now: t0 }), { now: t0 });
    expect(soundingNow(before, { mute, now: t0 + 1000 }).tone).toBe(null);
    const after = waiting([1, "CRITICAL"], [2, "HIGH"], [3, "CRITICAL"]);
    const sounding = soundingNow(after, { mute, now: t0 + 5000 });
    expect(sounding.tone).toBe("critical");
    expect(sounding.critical).toEqual([3]);
  });
  it("runs out after two minutes, counting down on the way, and the muted alarms sound again", () => {
    const alarms = waiting([1, "CRITICAL"]);
    const mute = muteSounding(soundingNow(alarms, { now: t0 }), { now: t0 });
    expect(formatLeft(muteLeft(mute, t0 + 1000))).toBe("1:59");
    expect(formatLeft(muteLeft(mute, t0 + 61000))).toBe("0:59");
    expect(muteLeft(mute, t0 + MUTE_MS)).toBe(0);
    expect(soundingNow(alarms, { mute, now: t0 + MUTE_MS }).tone).toBe("critical");
  });
  it("muting again keeps what a running mute covers and restarts the time", () => {
    const first = muteSounding(soundingNow(waiting([1, "CRITICAL"]), { now: t0 }), { now: t0 });
    const both = waiting([1, "CRITICAL"], [2, "CRITICAL"]);
    const second = muteSounding(soundingNow(both, { mute: first, now: t0 + 60000 }), { mute: first, now: t0 + 60000 });
    expect([...second.ids].sort()).toEqual([1, 2]);
    expect(second.until).toBe(t0 + 60000 + MUTE_MS);
  });
});
