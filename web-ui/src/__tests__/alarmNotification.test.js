// The service worker's alarm notification and its actions (src/sw/alarmNotification.js), and
// which requests it answers from the app shell cache (src/sw/shell.js).
import { describe, expect, it } from "vitest";

import {
  ACKNOWLEDGE,
  OPEN,
  acknowledgeOutcome,
  alarmNotification,
  alarmTitle,
  channelAckRequest,
  windowToReuse,
} from "../sw/alarmNotification.js";
import { BYPASS, CACHE_FIRST, NETWORK_FIRST, cacheKeyFor, strategyFor } from "../sw/shell.js";

// As notification/message_text.py push_payload writes it.
const PAYLOAD = {
  v: 1,
  type: "alarm",
  incident_id: 42,
  attempt_id: 7,
  severity: "CRITICAL",
  alert_name: "SpO2 low",
  room: "12",
  title: "CRITICAL: SpO2 low, room 12",
  body: "SpO2 low (critical) in room 12, ward ICU. Incident 42.",
  ack_token: "tok-abc",
  url: "/incidents/42",
};

describe("alarmNotification", () => {
  it("titles the alarm by severity, room and alarm type, with Acknowledge and Open", () => {
    const { title, options } = alarmNotification(PAYLOAD);
    expect(title).toBe("CRITICAL · Room 12 · SpO2 low");
    expect(options.body).toBe(PAYLOAD.body);
    expect(options.actions.map((action) => [action.action, action.title])).toEqual([
      [ACKNOWLEDGE, "Acknowledge"],
      [OPEN, "Open"],
    ]);
    expect(options.data).toEqual({ incidentId: 42, token: "tok-abc", attemptId: 7, url: "/incidents/42" });
    expect(options.tag).toBe("incident-42");
    expect(options.requireInteraction).toBe(true);
  });

  it("keeps a low alarm dismissable and offers only Open without a token", () => {
    const { options } = alarmNotification({ ...PAYLOAD, severity: "LOW", ack_token: undefined });
    expect(options.requireInteraction).toBe(false);
    expect(options.actions.map((action) => action.action)).toEqual([OPEN]);
    expect(options.data.url).toBe("/incidents/42");
  });

  it("names the ward when the room is unknown and falls back to the title", () => {
    expect(alarmTitle({ severity: "HIGH", ward: "ICU", alert_name: "Fall" })).toBe("HIGH · ICU · Fall");
    expect(alarmTitle({ title: "Something" })).toBe("Something");
    expect(alarmTitle({})).toBe("HealthGuard Ops alarm");
  });

  it("shows a test message from My notifications with Open only, opening My notifications", () => {
    const test = { v: 1, type: "alarm", incident_id: 0, attempt_id: 0, severity: "LOW", alert_name: "Test", room: null, title: "HealthGuard test notification", body: "This is a test of your notifications.", ack_token: "" };
    const { title, options } = alarmNotification(test);
    expect(title).toBe("HealthGuard test notification");
    expect(options.actions.map((action) => action.action)).toEqual([OPEN]);
    expect(options.data.url).toBe("/notifications");
  });

  it("opens /incidents/<id> when the payload names no url", () => {
    expect(alarmNotification({ ...PAYLOAD, url: undefined }).options.data.url).toBe("/incidents/42");
  });
});

describe("acknowledge from the shade", () => {
  it("posts the token and the action, without the session cookie or a CSRF header", () => {
    const [url, init] = channelAckRequest("tok-abc");
    expect(url).toBe("/api/v1/channel-ack");
    expect(init.method).toBe("POST");
    expect(init.credentials).toBe("omit");
    expect(JSON.parse(init.body)).toEqual({ token: "tok-abc", action: ACKNOWLEDGE });
    expect(Object.keys(init.headers)).not.toContain("X-CSRF-Token");
    expect(JSON.parse(channelAckRequest("tok-abc", OPEN)[1].body)).toEqual({ token: "tok-abc", action: OPEN });
  });

  it("says acknowledged, expired or failed", () => {
    const data = { incidentId: 42 };
    expect(acknowledgeOutcome(data, 200, { incident_id: 42, status: "ACKNOWLEDGED" })).toMatchObject({ ok: true, title: "Acknowledged" });
    expect(acknowledgeOutcome(data, 410, null).body).toMatch(/expired or was already used/);
    expect(acknowledgeOutcome(data, 409, { message: "not yours" }).body).toMatch(/not yours/);
    expect(acknowledgeOutcome(data, 0, null).body).toMatch(/no connection/);
  });

  it("reuses a window of this site only", () => {
    const windows = [{ url: "https://other.example/x" }, { url: "https://hg.example/incidents" }];
    expect(windowToReuse(windows, "https://hg.example")).toBe(windows[1]);
    expect(windowToReuse([{ url: "https://hg.example.evil/" }], "https://hg.example")).toBeNull();
  });
});

describe("the app shell cache", () => {
  const origin = "https://hg.example";
  const strategy = (path, extra = {}) => strategyFor(`${origin}${path}`, { origin, ...extra });

  it("never answers the API, the socket, readiness or the worker itself", () => {
    for (const path of ["/api/v1/incidents", "/api/v1/channel-ack", "/api", "/ws", "/ready/oncall", "/health", "/sw.js"]) {
      expect(strategy(path)).toBe(BYPASS);
    }
    expect(strategy("/api/v1/incidents", { mode: "navigate" })).toBe(BYPASS);
    expect(strategy("/assets/main-abc.js", { method: "POST" })).toBe(BYPASS);
    expect(strategyFor("https://cdn.example/x.js", { origin })).toBe(BYPASS);
  });

  it("fetches pages first and serves hashed assets from the cache", () => {
    expect(strategy("/incidents/4", { mode: "navigate" })).toBe(NETWORK_FIRST);
    expect(strategy("/assets/main-abc.js")).toBe(CACHE_FIRST);
    expect(strategy("/manifest.webmanifest")).toBe(NETWORK_FIRST);
    expect(strategy("/apiary", { mode: "navigate" })).toBe(NETWORK_FIRST);
  });

  it("keeps every page under index.html", () => {
    expect(cacheKeyFor(`${origin}/incidents/4`, "navigate")).toBe("/index.html");
    expect(cacheKeyFor(`${origin}/assets/a.js`, "no-cors")).toBe(`${origin}/assets/a.js`);
  });
});
