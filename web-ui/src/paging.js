// One behaviour for every list a clinician pages through ("Load more") while live updates keep
// it current (the incidents and alerts lists). Every fetch asks for the first `wanted` rows (a
// page more with each Load more) and the newest fetch wins, so a live update never undoes Load
// more and a late answer never overwrites a newer one. Changing the filters starts again at one
// page.
import { useCallback, useEffect, useRef, useState } from "react";

import { api } from "./api.js";
import { useIncidentUpdates } from "./live.jsx";

export const PAGE = 50;
const MAX_LIMIT = 500; // the API's largest page

export function usePagedList(path, query, key, { debounceMs = 250 } = {}) {
  const [state, setState] = useState({ items: [], next: null, error: null, loading: true, loaded: false });
  const wanted = useRef(PAGE);
  const controller = useRef(null);
  const queryKey = JSON.stringify(query);

  const fetchRows = useCallback(async () => {
    controller.current?.abort();
    const current = new AbortController();
    controller.current = current;
    const filters = JSON.parse(queryKey);
    setState((previous) => ({ ...previous, loading: true }));
    try {
      let items = [];
      let next = null;
      do {
        const limit = Math.min(MAX_LIMIT, wanted.current - items.length);
        const page = await api(path, { query: { ...filters, limit, cursor: next }, signal: current.signal });
        items = [...items, ...page[key]];
        next = page.next;
      } while (next && items.length < wanted.current);
      if (!current.signal.aborted) setState({ items, next, error: null, loading: false, loaded: true });
    } catch (error) {
      if (error.name === "AbortError" || current.signal.aborted) return;
      setState((previous) => ({ ...previous, error, loading: false }));
    }
  }, [path, key, queryKey]);

  useEffect(() => {
    wanted.current = PAGE;
    fetchRows();
    return () => controller.current?.abort();
  }, [fetchRows]);
  useIncidentUpdates(fetchRows, { debounceMs });

  const shown = state.items.length;
  const loadMore = useCallback(() => {
    wanted.current = shown + PAGE;
    fetchRows();
  }, [shown, fetchRows]);

  return { ...state, hasMore: Boolean(state.next), loadMore, reload: fetchRows };
}
