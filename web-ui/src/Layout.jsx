import { useEffect, useRef, useState } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router";

import { AlarmControl } from "./alarm.jsx";
import { useAuth, useTimeZone } from "./auth.jsx";
import { BackgroundAlertsPrompt } from "./BackgroundAlertsPrompt.jsx";
import { eventName, roleName } from "./domain.js";
import { ageOf, formatTime, timeAgo } from "./format.js";
import { LiveProvider, useLive } from "./live.jsx";
import Popups from "./Popups.jsx";
import ReachBanner from "./reach/ReachBanner.jsx";
import { SeverityBadge, useNow } from "./ui.jsx";

const PAGES = [
  { to: "/", label: "Dashboard", end: true },
  { to: "/incidents", label: "Incidents" },
  { to: "/alerts", label: "Alerts" },
  { to: "/oncall", label: "On-Call" },
  { to: "/care-team", label: "Care team" },
  { to: "/metrics", label: "Metrics" },
  // Shown to whom the server answers: supervisors manage devices, privacy officers read the log.
  { to: "/devices", label: "Devices", shownTo: (employee) => employee?.is_supervisor },
  { to: "/privacy", label: "Privacy", shownTo: (employee) => employee?.is_privacy_officer },
  { to: "/notifications", label: "My notifications" },
];

const CONNECTION_LABELS = {
  live: "Live",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  offline: "Offline — retrying",
};

// Says what the page knows: Live only while the server's frames arrive; otherwise how old the
// data on screen is.
function ConnectionPill() {
  const { connection, lastDataAt } = useLive();
  const now = useNow(1000);
  const stale = connection !== "live" && connection !== "connecting" && lastDataAt;
  return (
    <span className={`connection connection-${connection}`} role="status" title="Real-time updates">
      <span className="dot" aria-hidden="true" /> {CONNECTION_LABELS[connection]}
      {stale && <span className="connection-age"> · data from {ageOf(lastDataAt, now)}</span>}
    </span>
  );
}

// Not live: a full-width banner no one can miss, saying since when alarms have not been
// received (the last frame from the server, in the hospital's time). The pages grey their lists
// meanwhile (the "offline" class on <main>).
function isCutOff(connection) {
  return connection === "offline" || connection === "reconnecting";
}

function OfflineBanner() {
  const { connection, lastDataAt } = useLive();
  const timeZone = useTimeZone();
  if (!isCutOff(connection)) return null;
  return (
    <div className="offline-banner" role="alert" data-testid="offline-banner">
      <strong>
        Not receiving alarms
        {lastDataAt ? ` since ${formatTime(lastDataAt, timeZone)}` : ""}
      </strong>
      <span>
        {" "}
        — the connection to HealthGuard Ops is lost; retrying. Alarms raised meanwhile are not shown here: use the
        phone or pager until this goes.
      </span>
    </div>
  );
}

function NotificationBell() {
  const { notifications, unreadCount, markRead, markAllRead } = useLive();
  const [open, setOpen] = useState(false);
  const [error, setError] = useState(null);
  const navigate = useNavigate();
  const panel = useRef(null);

  useEffect(() => {
    if (!open) return undefined;
    const onKey = (event) => event.key === "Escape" && setOpen(false);
    const onClick = (event) => panel.current && !panel.current.contains(event.target) && setOpen(false);
    document.addEventListener("keydown", onKey);
    document.addEventListener("mousedown", onClick);
    return () => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("mousedown", onClick);
    };
  }, [open]);

  const openNotification = async (notification) => {
    setOpen(false);
    if (!notification.read_at) markRead(notification.id).catch(setError);
    if (notification.incident_id) navigate(`/incidents/${notification.incident_id}`);
  };

  const label = unreadCount === 1 ? "Notifications, 1 unread" : `Notifications, ${unreadCount} unread`;
  return (
    <div className="bell" ref={panel}>
      <button
        type="button"
        className="bell-button"
        aria-label={label}
        aria-expanded={open}
        aria-controls="notification-panel"
        onClick={() => setOpen((value) => !value)}
      >
        <svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20">
          <path
            fill="currentColor"
            d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
          />
        </svg>
        {unreadCount > 0 && (
          <span className="bell-count" data-testid="unread-count">
            {unreadCount > 99 ? "99+" : unreadCount}
          </span>
        )}
      </button>
      {open && (
        <section id="notification-panel" className="bell-panel" aria-label="Notifications">
          <header>
            <h2>Notifications</h2>
            <button
              type="button"
              className="link-button"
              disabled={unreadCount === 0}
              onClick={() => markAllRead().catch(setError)}
            >
              Mark all read
            </button>
          </header>
          {error && (
            <p className="notice error" role="alert">
              {error.message}
            </p>
          )}
          {notifications.length === 0 ? (
            <p className="empty">No notifications yet.</p>
          ) : (
            <ul>
              {notifications.map((notification) => (
                <li key={notification.id} className={notification.read_at ? "read" : "unread"}>
                  <button type="button" onClick={() => openNotification(notification)}>
                    <span className="bell-item-head">
                      <SeverityBadge severity={notification.severity} />
                      <span className="bell-type">{eventName(notification)}</span>
                      <span className="muted">{timeAgo(notification.created_at)}</span>
                    </span>
                    <span className="bell-message">{notification.message}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
    </div>
  );
}

function UserMenu() {
  const { employee, logout } = useAuth();
  const [busy, setBusy] = useState(false);
  return (
    <div className="user">
      <span className="user-name">
        {employee?.name}
        <span className="user-role">
          {roleName(employee?.role)}
          {employee?.availability === "AWAY" && " · Away"}
        </span>
      </span>
      <button
        type="button"
        className="signout"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          logout();
        }}
      >
        Sign out
      </button>
    </div>
  );
}

function Page() {
  const { connection } = useLive();
  return (
    <main id="main" className={`content ${isCutOff(connection) ? "offline" : ""}`}>
      <BackgroundAlertsPrompt />
      <ReachBanner />
      <Outlet />
    </main>
  );
}

// The product's name and mark, linking home: the same on signed-in and public pages.
export function Brand() {
  return (
    <Link to="/" className="brand">
      <span className="brand-mark" aria-hidden="true">
        +
      </span>
      HealthGuard Ops
    </Link>
  );
}

export default function Layout() {
  // On a phone the pages and the user menu fold behind one Menu button (a header of one row).
  // Open for the page it was opened on: following a link closes it.
  const location = useLocation();
  const [menuOpenOn, setMenuOpenOn] = useState(null);
  const menuOpen = menuOpenOn === location.pathname;
  const { employee } = useAuth();
  return (
    <LiveProvider>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className={`topbar ${menuOpen ? "menu-open" : ""}`}>
        <Brand />
        <button
          type="button"
          className="menu-button"
          aria-expanded={menuOpen}
          aria-controls="main-menu"
          onClick={() => setMenuOpenOn(menuOpen ? null : location.pathname)}
        >
          Menu
        </button>
        <nav aria-label="Main" id="main-menu">
          {PAGES.filter(({ shownTo }) => !shownTo || shownTo(employee)).map(({ to, label, end }) => (
            <NavLink key={to} to={to} end={end}>
              {label}
            </NavLink>
          ))}
        </nav>
        <div className="topbar-right">
          <ConnectionPill />
          <AlarmControl />
          <NotificationBell />
          <UserMenu />
        </div>
      </header>
      <OfflineBanner />
      <Page />
      <footer className="footer">
        <Link to="/status">System status</Link>
      </footer>
      <Popups />
    </LiveProvider>
  );
}
