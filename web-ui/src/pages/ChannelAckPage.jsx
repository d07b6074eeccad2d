import { useState } from "react";
import { Link, useParams } from "react-router";

import { api } from "../api.js";
import { StatusBadge } from "../ui.jsx";

// /ack/<token>: the one-time link of an alarm email. The token is the credential (no sign-in: the
// clinician may read the email on a phone that never signed in). The page asks for one tap rather
// than acknowledging as it loads: mail scanners open links, some run their scripts, and an alarm
// acknowledged by a scanner stops its escalation with nobody coming.
export default function ChannelAckPage() {
  const { token } = useParams();
  const [state, setState] = useState({ phase: "ready" });

  const acknowledge = async () => {
    setState({ phase: "busy" });
    try {
      const answer = await api("/channel-ack", { method: "POST", body: { token }, authenticated: false });
      setState({ phase: "done", answer });
    } catch (error) {
      setState({ phase: "failed", error });
    }
  };

  return (
    <section className="channel-ack panel" aria-labelledby="ack-title">
      <h1 id="ack-title">Acknowledge the alarm</h1>
      {(state.phase === "ready" || state.phase === "busy") && (
        <>
          <p>This acknowledges the alarm the email was about, as you: escalation to a colleague stops.</p>
          <button type="button" className="primary" disabled={state.phase === "busy"} onClick={acknowledge}>
            {state.phase === "busy" ? "Acknowledging…" : "Acknowledge"}
          </button>
        </>
      )}
      {state.phase === "done" && (
        <div className="notice success" role="status" data-testid="ack-result">
          <p>
            <strong>Acknowledged</strong> incident #{state.answer.incident_id}: it is now{" "}
            <StatusBadge status={state.answer.status} />.
          </p>
          <p>
            <Link to={`/incidents/${state.answer.incident_id}`}>Open the incident</Link> (sign-in needed).
          </p>
        </div>
      )}
      {state.phase === "failed" && (
        <div className="notice error" role="alert" data-testid="ack-result">
          <p>
            <strong>Not acknowledged:</strong>{" "}
            {state.error.status === 410
              ? "this link was used already or has expired."
              : state.error.status === 404
                ? "this link is not one HealthGuard sent."
                : state.error.message}
          </p>
          <p>
            <Link to="/incidents">Open HealthGuard</Link> to act on the alarm.
          </p>
          {/* Worth trying again only when the server could not act now (offline, 503). */}
          {![404, 409, 410].includes(state.error.status) && (
            <button type="button" onClick={acknowledge}>
              Try again
            </button>
          )}
        </div>
      )}
    </section>
  );
}
