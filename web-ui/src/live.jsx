// Real-time updates from the notification service: one WebSocket per signed-in tab.
//   {"type":"notification", id, ...}     a stored notification of mine (bell, pop-ups)
//   {"type":"incident_updated", ...}     some incident changed: lists and pages refresh
//   {"type":"ping"}                      keep-alive; answered with a pong
// After a reconnect the client sends {"type":"resume","last_id":N} and the server replays what
// was stored meanwhile, the newest page first and a {"type":"more"} frame for each older one.
// incident_updated frames are not replayed, so pages refetch on reconnect. The types are
// domain.js's WS_FRAME_* constants.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";

import { api } from "./api.js";
import { useAuth } from "./auth.jsx";
import {
  WS_CLOSE_SESSION_ENDED,
  WS_CLOSE_TOO_MANY_SOCKETS,
  WS_FRAME_INCIDENT_UPDATED,
  WS_FRAME_MORE,
  WS_FRAME_NOTIFICATION,
  WS_FRAME_PING,
  WS_FRAME_PONG,
  WS_FRAME_RESUME,
} from "./domain.js";

const LiveContext = createContext(null);

const RECONNECT_DELAYS_MS = [1000, 2000, 5000, 10000, 20000];
// The page pings the server (which answers pong) and counts any frame as a sign of life: with no
// frame for SILENCE_MS the socket is taken as dead, whatever the browser says (a socket can stay
// "open" for minutes after the network went away). Checked every WATCHDOG_MS.
const CLIENT_PING_MS = 10000;
const SILENCE_MS = 22000;
const WATCHDOG_MS = 2000;

// Full jitter around the step, so a ward's worth of tabs does not reconnect in step.
export function reconnectDelay(attempt, random = Math.random) {
  const base = RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)];
  return Math.round(base * (0.5 + random()));
}
// The watchdog's decision, every WATCHDOG_MS, from how long the socket has been quiet: give up
// on it ("lost"), ask the server for a sign of life ("ping"), or nothing.
export function watchdogStep(quietMs, open) {
  if (quietMs > SILENCE_MS) return "lost";
  if (quietMs > CLIENT_PING_MS && open) return "ping";
  return null;
}

// What the pill says once a socket is lost: Offline when the browser has no network or a retry
// has already failed, Reconnecting on the first loss.
export function stateAfterLoss({ online, attempt }) {
  return online === false || attempt > 0 ? "offline" : "reconnecting";
}

const RESUME_PAGE_MS = 1100; // the server takes a resume a second after a burst of five
const KEPT_NOTIFICATIONS = 50;

// The session token never goes in a URL (URLs end up in logs): each connection first trades the
// session (sent as a header by api()) for a one-time ticket that lives 30 s and opens one socket.
async function socketUrl() {
  const { ticket } = await api("/ws-ticket", { method: "POST" });
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws?ticket=${encodeURIComponent(ticket)}`;
}

export function LiveProvider({ children }) {
  const { token, endSession } = useAuth();
  const [connection, setConnection] = useState("connecting");
  const [notifications, setNotifications] = useState([]);
  const [unreadCount, setUnreadCount] = useState(0);
  const [lastDataAt, setLastDataAt] = useState(null); // when the socket last brought anything
  const listeners = useRef(new Set());
  const seen = useRef(new Set());
  const lastId = useRef(0);
  const emit = useCallback((event) => {
    for (const listener of listeners.current) listener(event);
  }, []);

  // A notification pushed to me: the bell, and a "notification" event for the pop-ups (which
  // decide whether it pages me, Popups.jsx).
  const receive = useCallback(
    (notification) => {
      if (seen.current.has(notification.id)) return;
      seen.current.add(notification.id);
      lastId.current = Math.max(lastId.current, notification.id);
      setNotifications((current) =>
        [notification, ...current].sort((a, b) => b.id - a.id).slice(0, KEPT_NOTIFICATIONS),
      );
      if (notification.read_at) return;
      setUnreadCount((count) => count + 1);
      emit({ type: WS_FRAME_NOTIFICATION, notification });
    },
    [emit],
  );

  // Notification history first (bell and unread count), then the socket keeps it current.
  const loadHistory = useCallback(async () => {
    const answer = await api("/notifications", { query: { limit: 20 } });
    for (const notification of answer.notifications) {
      seen.current.add(notification.id);
      lastId.current = Math.max(lastId.current, notification.id);
    }
    setNotifications((current) => {
      const byId = new Map([...answer.notifications, ...current].map((n) => [n.id, n]));
      return [...byId.values()].sort((a, b) => b.id - a.id).slice(0, KEPT_NOTIFICATIONS);
    });
    setUnreadCount(answer.unread_count);
  }, []);

  useEffect(() => {
    if (!token) return undefined;
    let socket = null;
    let timer = null;
    let attempt = 0;
    let stopped = false;
    let synced = false;
    let lastFrameAt = 0; // the age of the data shown
    let lastSign = 0; // the last frame, or when the current socket was opened for
    let pending = false; // a ticket is being fetched for the next socket
    const heard = () => {
      lastFrameAt = lastSign = Date.now();
    };
    // Gives up on the current socket (dead or the network gone) and tries again after a
    // jittered pause; offline while the browser says it has no network, reconnecting otherwise.
    const lost = () => {
      if (stopped) return;
      if (socket) {
        socket.onclose = socket.onmessage = socket.onopen = null;
        socket.close();
        socket = null;
      }
      setLastDataAt(lastFrameAt || null);
      setConnection(stateAfterLoss({ online: navigator.onLine, attempt }));
      clearTimeout(timer);
      timer = setTimeout(connect, reconnectDelay(attempt));
      attempt += 1;
    };

    const connect = async () => {
      setConnection(attempt === 0 ? "connecting" : "reconnecting");
      let url;
      pending = true;
      try {
        url = await socketUrl();
      } catch (error) {
        pending = false;
        // A 401 has already ended the session in api(); anything else is retried.
        if (!stopped && error?.status !== 401) lost();
        return;
      }
      pending = false;
      if (stopped) return;
      lastSign = Date.now();
      socket = new WebSocket(url);
      socket.onopen = () => {
        heard();
        const reconnected = attempt > 0;
        attempt = 0;
        setConnection("live");
        if (synced) {
          socket.send(JSON.stringify({ type: WS_FRAME_RESUME, last_id: lastId.current }));
        } else {
          // Registered before the history is read: nothing falls between the two.
          loadHistory()
            .then(() => {
              synced = true;
            })
            .catch(() => {});
        }
        if (reconnected) emit({ type: "reconnected" });
      };
      socket.onmessage = (message) => {
        heard();
        let frame;
        try {
          frame = JSON.parse(message.data);
        } catch {
          return;
        }
        if (frame.type === WS_FRAME_NOTIFICATION) {
          receive(frame);
          if (frame.incident_id) emit({ type: WS_FRAME_INCIDENT_UPDATED, incident_id: frame.incident_id });
        } else if (frame.type === WS_FRAME_INCIDENT_UPDATED) {
          emit(frame);
        } else if (frame.type === WS_FRAME_PING) {
          socket.send(JSON.stringify({ type: WS_FRAME_PONG }));
        } else if (frame.type === WS_FRAME_MORE) {
          // A replay brings the newest page; the older ones missed come a page at a time, paced
          // under the server's resume rate (WEBSOCKET.md, "Reconnecting").
          const current = socket;
          const page = { type: WS_FRAME_RESUME, last_id: frame.after_id, before_id: frame.before_id };
          setTimeout(() => {
            if (socket === current && current.readyState === WebSocket.OPEN) current.send(JSON.stringify(page));
          }, RESUME_PAGE_MS);
        }
      };
      socket.onclose = (event) => {
        socket = null;
        if (stopped) return;
        if (event.code === WS_CLOSE_SESSION_ENDED) {
          // Signed out elsewhere (or expired): the next API call would be refused too.
          endSession();
          return;
        }
        if (event.code === WS_CLOSE_TOO_MANY_SOCKETS && document.visibilityState === "hidden") {
          // The tabs share a session, which holds at most five sockets: a newer tab took this
          // one's. A hidden tab takes one back when it is shown (tryNow); a visible one at once.
          setLastDataAt(lastFrameAt || null);
          setConnection("offline");
          return;
        }
        lost();
      };
    };
    const watchdog = setInterval(() => {
      if (!socket) return;
      const step = watchdogStep(Date.now() - lastSign, socket.readyState === WebSocket.OPEN);
      if (step === "lost") lost();
      else if (step === "ping") socket.send(JSON.stringify({ type: WS_FRAME_PING }));
    }, WATCHDOG_MS);
    const wentOffline = () => lost();
    // Back online, or back to the tab after the phone slept: try now rather than after the pause.
    const tryNow = () => {
      if (document.visibilityState === "hidden" || stopped) return;
      if (!socket && !pending) {
        clearTimeout(timer);
        attempt = Math.min(attempt, 1);
        connect();
      } else if (socket.readyState === WebSocket.OPEN && Date.now() - lastSign > CLIENT_PING_MS) {
        socket.send(JSON.stringify({ type: WS_FRAME_PING }));
      }
    };
    window.addEventListener("offline", wentOffline);
    window.addEventListener("online", tryNow);
    document.addEventListener("visibilitychange", tryNow);
    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearInterval(watchdog);
      window.removeEventListener("offline", wentOffline);
      window.removeEventListener("online", tryNow);
      document.removeEventListener("visibilitychange", tryNow);
      if (socket) socket.close(1000, "signed out or left");
    };
  }, [token, loadHistory, receive, emit, endSession]);

  const markRead = useCallback(async (id) => {
    const answer = await api(`/notifications/${id}/read`, { method: "PATCH" });
    setNotifications((current) => current.map((n) => (n.id === id ? answer.notification : n)));
    setUnreadCount(answer.unread_count);
  }, []);

  const markAllRead = useCallback(async () => {
    const answer = await api("/notifications/read-all", { method: "POST", body: { up_to_id: lastId.current } });
    const now = new Date().toISOString();
    setNotifications((current) => current.map((n) => (n.read_at ? n : { ...n, read_at: now })));
    setUnreadCount(answer.unread_count);
  }, []);

  const subscribe = useCallback((listener) => {
    listeners.current.add(listener);
    return () => listeners.current.delete(listener);
  }, []);

  const value = useMemo(
    () => ({ connection, lastDataAt, notifications, unreadCount, markRead, markAllRead, subscribe }),
    [connection, lastDataAt, notifications, unreadCount, markRead, markAllRead, subscribe],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export function useLive() {
  return useContext(LiveContext);
}

// Calls `onChange(event)` for every incident change pushed by the server, and after a reconnect
// (when changes may have been missed). Several changes in a burst cause one call.
export function useIncidentUpdates(onChange, { incidentId = null, debounceMs = 250 } = {}) {
  const { subscribe } = useLive();
  const callback = useRef(onChange);
  useEffect(() => {
    callback.current = onChange;
  }, [onChange]);
  useEffect(() => {
    let timer = null;
    const unsubscribe = subscribe((event) => {
      if (incidentId !== null && event.type === WS_FRAME_INCIDENT_UPDATED && event.incident_id !== incidentId) return;
      clearTimeout(timer);
      timer = setTimeout(() => callback.current(event), debounceMs);
    });
    return () => {
      clearTimeout(timer);
      unsubscribe();
    };
  }, [subscribe, incidentId, debounceMs]);
}
