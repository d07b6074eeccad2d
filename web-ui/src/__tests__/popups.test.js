import { describe, expect, it } from "vitest";

import { notificationPages, orderPopups, popupHeading, receiveIncidentUpdate, receiveNotification } from "../popups.js";

let nextId = 1;
function notification(incidentId, severity, data = {}, eventType = "INCIDENT_ASSIGNED") {
  return {
    id: nextId++,
    incident_id: incidentId,
    event_type: eventType,
    severity,
    title: `${severity}: alarm ${incidentId}`,
    message: "…",
    data: { status: "ASSIGNED", assigned_to: "D02", paged: ["D02"], ...data },
  };
}

function flood(...alarms) {
  return alarms.reduce((popups, [incidentId, severity]) => receiveNotification(popups, notification(incidentId, severity), "D02"), []);
}

describe("pop-up order", () => {
  it("pins a CRITICAL first whatever arrived after it, then the most severe, newest first within one", () => {
    const popups = flood([1, "MEDIUM"], [2, "CRITICAL"], [3, "HIGH"], [4, "LOW"], [5, "HIGH"], [6, "MEDIUM"]);
    expect(orderPopups(popups).map((popup) => popup.incidentId)).toEqual([2, 5, 3, 6, 1, 4]);
  });
  it("keeps one CRITICAL among twenty lower alarms in front", () => {
    const lower = Array.from({ length: 20 }, (_, n) => [100 + n, n % 2 ? "HIGH" : "MEDIUM"]);
    const popups = flood(...lower.slice(0, 7), [7, "CRITICAL"], ...lower.slice(7));
    expect(orderPopups(popups)[0].incidentId).toBe(7);
    expect(popups).toHaveLength(21);
  });
});

describe("one pop-up per incident, never stale", () => {
  it("a re-page of the same incident replaces its pop-up", () => {
    let popups = flood([1, "HIGH"]);
    popups = receiveNotification(popups, notification(1, "CRITICAL", { reason: "ESCALATED" }, "INCIDENT_ESCALATED"), "D02");
    expect(popups).toHaveLength(1);
    expect(popups[0].severity).toBe("CRITICAL");
    expect(popupHeading(popups[0])).toBe("Escalated to you");
  });
  it("goes when an incident_updated frame says it no longer pages me", () => {
    const popups = flood([1, "CRITICAL"], [2, "HIGH"]);
    const escalated = { type: "incident_updated", incident_id: 1, status: "REASSIGNED", severity: "CRITICAL", assigned_to: "D03", paged: ["D03"] };
    expect(receiveIncidentUpdate(popups, escalated, "D02").map((p) => p.incidentId)).toEqual([2]);
    const taken = { incident_id: 2, status: "REASSIGNED", severity: "HIGH", assigned_to: "D04", paged: [] };
    expect(receiveIncidentUpdate(popups, taken, "D02").map((p) => p.incidentId)).toEqual([1]);
  });
  it("goes when a notification says it was taken or escalated away, and stays when it still pages me", () => {
    const popups = flood([1, "CRITICAL"]);
    const taken = notification(1, "CRITICAL", { reason: "TAKEN", paged: [], assigned_to: "D01" }, "INCIDENT_REASSIGNED");
    expect(receiveNotification(popups, taken, "D02")).toEqual([]);
    const raised = { incident_id: 1, status: "ASSIGNED", severity: "CRITICAL", assigned_to: "D02", paged: ["D02"] };
    expect(receiveIncidentUpdate(popups, raised, "D02")).toBe(popups);
  });
  it("from a server that does not send `paged`, follows the assignee and the unacknowledged statuses", () => {
    const old = { incident_id: 1, event_type: "INCIDENT_ASSIGNED", severity: "HIGH", data: { status: "ASSIGNED", assigned_to: "D02" } };
    expect(notificationPages(old, "D02")).toBe(true);
    expect(notificationPages({ ...old, event_type: "INCIDENT_NOTE_ADDED" }, "D02")).toBe(false);
    const popups = receiveNotification([], { ...old, id: 99 }, "D02");
    const acknowledged = { incident_id: 1, status: "ACKNOWLEDGED", severity: "HIGH", assigned_to: "D02" };
    expect(receiveIncidentUpdate(popups, acknowledged, "D02")).toEqual([]);
  });
  it("every clinician paged at the last step gets the pop-up, with words that say so", () => {
    const lastResort = notification(1, "CRITICAL", { reason: "LAST_RESORT", assigned_to: "S05", paged: ["S05", "D01", "D02"] }, "INCIDENT_ESCALATED");
    for (const me of ["D01", "D02", "S05"]) {
      const [popup] = receiveNotification([], lastResort, me);
      expect(popupHeading(popup)).toMatch(/Nobody has taken this/);
    }
    expect(receiveNotification([], lastResort, "D03")).toEqual([]);
  });
});
