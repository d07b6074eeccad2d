// @vitest-environment happy-dom
// usePagedList (paging.js) against a stand-in for the API at the fetch edge: Load more survives a
// live update, and a late answer for old filters never replaces the answer for the new ones.
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

let liveUpdate = null;
vi.mock("../live.jsx", () => ({
  useIncidentUpdates: (callback) => {
    liveUpdate = callback;
  },
}));

const { usePagedList } = await import("../paging.js");

const ROWS = Array.from({ length: 120 }, (_, index) => ({ incident_id: 120 - index }));

// Answers /incidents like the service: newest first, `limit` rows after `cursor`; `hold` keeps an
// answer back until the test releases it.
function serve({ hold } = {}) {
  const requests = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url) => {
      const query = new URL(url, "http://localhost").searchParams;
      requests.push(Object.fromEntries(query));
      const limit = Number(query.get("limit"));
      const after = query.get("cursor") ? Number(query.get("cursor")) : Infinity;
      const rows = ROWS.filter((row) => row.incident_id < after && (!query.get("severity") || query.get("severity") === "HIGH"));
      const page = rows.slice(0, limit);
      const body = { incidents: page, next: rows.length > limit ? String(page.at(-1).incident_id) : null };
      if (hold) await hold(query);
      return new Response(JSON.stringify(body), { status: 200 });
    }),
  );
  return requests;
}

beforeEach(() => {
  liveUpdate = null;
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("usePagedList", () => {
  it("keeps the rows Load more brought when a live update reloads the list", async () => {
    const requests = serve();
    const { result } = renderHook(() => usePagedList("/incidents", { status: "OPEN" }, "incidents", { debounceMs: 0 }));
    await waitFor(() => expect(result.current.items).toHaveLength(50));
    expect(result.current.hasMore).toBe(true);
    await act(async () => result.current.loadMore());
    await waitFor(() => expect(result.current.items).toHaveLength(100));
    await act(async () => liveUpdate());
    await waitFor(() => expect(requests).toHaveLength(3));
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.items).toHaveLength(100);
    expect(requests.at(-1).limit).toBe("100");
  });

  it("never shows a late answer for the previous filters", async () => {
    let releaseFirst;
    const first = new Promise((resolve) => {
      releaseFirst = resolve;
    });
    serve({ hold: (query) => (query.get("severity") ? null : first) });
    const { result, rerender } = renderHook(
      ({ severity }) => usePagedList("/incidents", { severity }, "incidents", { debounceMs: 0 }),
      { initialProps: { severity: "" } },
    );
    rerender({ severity: "LOW" }); // the stand-in has no LOW rows
    await waitFor(() => expect(result.current.loaded).toBe(true));
    expect(result.current.items).toHaveLength(0);
    await act(async () => releaseFirst());
    expect(result.current.items).toHaveLength(0);
  });
});
