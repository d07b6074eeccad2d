import { useState } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router";

import { api } from "../api.js";
import { useAuth } from "../auth.jsx";

const MIN_PASSWORD = 12; // the server's first rule (POST /auth/password); it says why it refuses others

// After an account administrator's reset the one-time password signs nobody in: the clinician
// chooses their own here (the one-time password proves who they are, once, within its time),
// then is signed in with it, in every tab of this browser.
function ChangePassword({ loginId, oneTimePassword, onChanged, onCancel }) {
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const mismatch = again !== "" && next !== again;

  const submit = async (event) => {
    event.preventDefault();
    if (next !== again) return;
    setBusy(true);
    setError(null);
    try {
      await api("/auth/password", {
        method: "POST",
        body: { login: loginId, current_password: oneTimePassword, new_password: next },
        authenticated: false,
      });
      await onChanged(next);
    } catch (failure) {
      setError(failure.message || "Changing the password failed.");
      setBusy(false);
    }
  };

  return (
    <section className="login-card" aria-labelledby="change-title">
      <h1 id="change-title">Choose a new password</h1>
      <p className="muted">
        Your password was reset by an account administrator and works once only. Choose your own to continue: at
        least {MIN_PASSWORD} characters, best a phrase of several words. Common passwords, repeated characters and
        your name are refused.
      </p>
      {error && (
        <p className="notice error" role="alert">
          <strong>Changing the password failed:</strong> {error}
        </p>
      )}
      <form onSubmit={submit}>
        <label htmlFor="new-password">New password</label>
        <input
          id="new-password"
          type="password"
          autoComplete="new-password"
          autoFocus
          required
          minLength={MIN_PASSWORD}
          maxLength={256}
          value={next}
          onChange={(event) => setNext(event.target.value)}
        />
        <label htmlFor="new-password-again">New password again</label>
        <input
          id="new-password-again"
          type="password"
          autoComplete="new-password"
          required
          value={again}
          aria-invalid={mismatch}
          aria-describedby={mismatch ? "password-mismatch" : undefined}
          onChange={(event) => setAgain(event.target.value)}
        />
        {mismatch && (
          <p id="password-mismatch" className="field-error">
            The two passwords differ.
          </p>
        )}
        <button type="submit" className="primary wide" disabled={busy || mismatch || next.length < MIN_PASSWORD}>
          {busy ? "Saving…" : "Set password and sign in"}
        </button>
      </form>
      <p className="login-foot">
        <button type="button" className="link-button" onClick={onCancel}>
          Back to sign in
        </button>
      </p>
    </section>
  );
}

export default function LoginPage() {
  const { token, login, notice, clearNotice } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [loginId, setLoginId] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [mustChange, setMustChange] = useState(null); // the one-time password, once refused

  if (token) return <Navigate to="/" replace />;

  const enter = () => {
    const from = location.state?.from;
    navigate(from && from !== "/login" ? from : "/", { replace: true });
  };

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    clearNotice();
    try {
      await login(loginId.trim(), password);
      enter();
    } catch (failure) {
      if (failure.body?.password_change_required) {
        setMustChange(password);
        setBusy(false);
        return;
      }
      setError(
        failure.status === 429 ? `${failure.message} Try again later.` : failure.message || "Sign-in failed.",
      );
      setPassword("");
      setBusy(false);
    }
  };

  if (mustChange !== null)
    return (
      <main className="login-screen">
        <ChangePassword
          loginId={loginId.trim()}
          oneTimePassword={mustChange}
          onChanged={async (newPassword) => {
            await login(loginId.trim(), newPassword);
            enter();
          }}
          onCancel={() => {
            setMustChange(null);
            setPassword("");
          }}
        />
      </main>
    );

  return (
    <main className="login-screen">
      <section className="login-card" aria-labelledby="login-title">
        <p className="brand-large">
          <span className="brand-mark" aria-hidden="true">
            +
          </span>
          HealthGuard Ops
        </p>
        <h1 id="login-title">Sign in</h1>
        <p className="muted">Clinical incident response. Use your staff ID and password.</p>
        {notice && !error && (
          <p className="notice info" role="status">
            {notice}
          </p>
        )}
        {error && (
          <p className="notice error" role="alert">
            {error}
          </p>
        )}
        <form onSubmit={submit}>
          <label htmlFor="login-id">Staff ID</label>
          <input
            id="login-id"
            name="login"
            autoComplete="username"
            autoFocus
            required
            value={loginId}
            onChange={(event) => setLoginId(event.target.value)}
            placeholder="e.g. N01"
          />
          <label htmlFor="password">Password</label>
          <input
            id="password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(event) => setPassword(event.target.value)}
          />
          <button type="submit" className="primary wide" disabled={busy}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </form>
        <p className="login-foot">
          <Link to="/status">System status</Link>
        </p>
      </section>
    </main>
  );
}
