import { useEffect, useState } from "react";

import { api } from "./api.js";

// Asked once signed in, in the page rather than the crowded header, saying why: the system
// notification is what reaches a clinician whose tab is in the background. "Not now" is kept by
// the server for the clinician (a week), so it holds in every tab and on every workstation.
export function BackgroundAlertsPrompt() {
  const [permission, setPermission] = useState(() => (typeof Notification === "undefined" ? "unsupported" : Notification.permission));
  const [show, setShow] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (permission !== "default") return undefined;
    const controller = new AbortController();
    api("/preferences/me", { signal: controller.signal })
      .then((answer) => setShow(answer.background_alerts_prompt.show))
      .catch(() => {}); // unanswered: not asked this time
    return () => controller.abort();
  }, [permission]);

  if (permission !== "default" || !show) return null;
  return (
    <div className="notice info background-alerts" role="region" aria-label="Alerts in the background">
      <p>Allow notifications so that a critical alarm for you reaches you while this tab is in the background.</p>
      <div className="notice-actions">
        <button type="button" className="primary" onClick={() => Notification.requestPermission().then(setPermission)}>
          Allow alerts in background
        </button>
        <button
          type="button"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            setShow(false);
            try {
              await api("/preferences/me/background-alerts-not-now", { method: "POST" });
            } catch {
              // Hidden in this tab anyway; asked again next time.
            } finally {
              setBusy(false);
            }
          }}
        >
          Not now
        </button>
      </div>
    </div>
  );
}
