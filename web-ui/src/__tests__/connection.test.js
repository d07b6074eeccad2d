import { describe, expect, it } from "vitest";

import { reconnectDelay, stateAfterLoss, watchdogStep } from "../live.jsx";

describe("the connection's watchdog", () => {
  it("does nothing while frames arrive, pings after 10 s of quiet, gives up after 22 s", () => {
    expect(watchdogStep(500, true)).toBe(null);
    expect(watchdogStep(10001, true)).toBe("ping");
    expect(watchdogStep(10001, false)).toBe(null); // still connecting: nothing to ping on
    expect(watchdogStep(22001, true)).toBe("lost");
    expect(watchdogStep(22001, false)).toBe("lost");
  });
});

describe("the pill after a loss", () => {
  it("says Reconnecting on the first loss, Offline without network or once a retry failed", () => {
    expect(stateAfterLoss({ online: true, attempt: 0 })).toBe("reconnecting");
    expect(stateAfterLoss({ online: false, attempt: 0 })).toBe("offline");
    expect(stateAfterLoss({ online: true, attempt: 1 })).toBe("offline");
  });
  it("retries within a jittered band around each step", () => {
    const low = reconnectDelay(0, () => 0);
    const high = reconnectDelay(0, () => 0.999);
    expect(high).toBeGreaterThan(low);
    expect(reconnectDelay(99, () => 0.5)).toBe(reconnectDelay(50, () => 0.5)); // capped
  });
});
