import { describe, expect, it } from "vitest";

import { applyIncidentFrame, applyIncidentRow, incidentMap } from "../incidentCache.js";

const row = {
  incident_id: 7,
  status: "ASSIGNED",
  severity: "HIGH",
  title: "HIGH: Tachycardia",
  assigned_to: "D01",
  patient_name: "Margaret Ellison",
  allowed_actions: ["acknowledge", "decline", "note"],
};

describe("applyIncidentFrame", () => {
  it("updates a known row in place and keeps what the frame does not carry", () => {
    const { incidents, fetch } = applyIncidentFrame(incidentMap([row]), { incident_id: 7, status: "ASSIGNED", severity: "CRITICAL", assigned_to: "D01" });
    expect(incidents.get(7)).toMatchObject({ severity: "CRITICAL", patient_name: "Margaret Ellison", allowed_actions: row.allowed_actions });
    expect(fetch).toBe(false);
  });

  it("offers no action on a row whose status changed until the server says what the user may do", () => {
    const { incidents, fetch } = applyIncidentFrame(incidentMap([row]), { incident_id: 7, status: "ACKNOWLEDGED", assigned_to: "D01" });
    expect(incidents.get(7)).toMatchObject({ status: "ACKNOWLEDGED", patient_name: "Margaret Ellison", allowed_actions: [] });
    expect(fetch).toBe(true);
  });

  it("adds an unknown incident provisionally and asks for it", () => {
    const { incidents, fetch } = applyIncidentFrame(new Map(), { incident_id: 9, status: "OPEN", title: "CRITICAL: Cardiac arrest", occurred_at: "2026-01-01T00:00:00Z" });
    expect(incidents.get(9)).toMatchObject({ provisional: true, status: "OPEN", created_at: "2026-01-01T00:00:00Z" });
    expect(fetch).toBe(true);
  });

  it("marks a held alarm silenced from its frame, and unmarks it when the silence ends", () => {
    const held = applyIncidentFrame(new Map(), { incident_id: 9, status: "OPEN", silenced_by: 3, paged: [] }).incidents;
    expect(held.get(9)).toMatchObject({ silenced_by: 3, paged: [] });
    expect(applyIncidentFrame(held, { incident_id: 9, status: "OPEN", silenced_by: null, paged: [] }).incidents.get(9).silenced_by).toBeNull();
  });

  it("drops a resolved incident", () => {
    const { incidents } = applyIncidentFrame(incidentMap([row]), { incident_id: 7, status: "RESOLVED" });
    expect(incidents.has(7)).toBe(false);
  });

  it("asks for the row when the assignee changed (the name is not in the frame)", () => {
    expect(applyIncidentFrame(incidentMap([row]), { incident_id: 7, status: "REASSIGNED", assigned_to: "D02" }).fetch).toBe(true);
  });

  it("fetches for a notification that names only the incident, changing nothing", () => {
    const before = incidentMap([row]);
    const { incidents, fetch } = applyIncidentFrame(before, { type: "incident_updated", incident_id: 7 });
    expect(incidents).toBe(before);
    expect(fetch).toBe(true);
  });
});

describe("applyIncidentRow", () => {
  it("replaces the provisional row, or removes a resolved one", () => {
    const provisional = applyIncidentFrame(new Map(), { incident_id: 9, status: "OPEN" }).incidents;
    expect(applyIncidentRow(provisional, { incident_id: 9, status: "ASSIGNED" }).get(9).provisional).toBeUndefined();
    expect(applyIncidentRow(provisional, { incident_id: 9, status: "RESOLVED" }).has(9)).toBe(false);
  });
});
