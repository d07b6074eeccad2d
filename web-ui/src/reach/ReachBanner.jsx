import { useEffect, useState } from "react";
import { Link, useLocation } from "react-router";

import { api } from "../api.js";
import { REACH_CHANGED } from "./push.js";

const RECHECK_MS = 5 * 60 * 1000;

// On call with no working off-tab method (GET /api/v1/reachability/me: the server decides):
// once this tab closes, alarms for them reach nobody until escalation. Said on every page, with
// the way to fix it. Checked again on each page change, when my methods change and every few
// minutes.
export default function ReachBanner() {
  const [show, setShow] = useState(false);
  const { pathname } = useLocation();
  useEffect(() => {
    const controller = new AbortController();
    const check = () =>
      api("/reachability/me", { signal: controller.signal })
        .then((answer) => setShow(Boolean(answer.show_banner)))
        .catch(() => {}); // unanswered: the banner keeps what it last knew
    check();
    const timer = setInterval(check, RECHECK_MS);
    window.addEventListener(REACH_CHANGED, check);
    return () => {
      controller.abort();
      clearInterval(timer);
      window.removeEventListener(REACH_CHANGED, check);
    };
  }, [pathname]);
  if (!show) return null;
  return (
    // A region, not an alert: it stands on every page while it holds, and an alert would be
    // announced again at each page change; the pages' own alerts (failures) stay the only ones.
    <div className="notice warning reach-banner" role="region" aria-label="Off-tab alarms" data-testid="reach-banner">
      {/* On a phone one short line: the alarms' own banners below must stay above the pop-up bar. */}
      <p>
        <strong className="reach-banner-long">You are on call, but alarms cannot reach you when this tab is closed.</strong>
        <strong className="reach-banner-short">On call: alarms cannot reach you with this tab closed.</strong>{" "}
        {pathname === "/notifications" ? (
          "Enable push on this device or add a verified email below."
        ) : (
          <Link to="/notifications">Enable push or add an email</Link>
        )}
      </p>
    </div>
  );
}
