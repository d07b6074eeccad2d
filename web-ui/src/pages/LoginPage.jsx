import { useState } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router";

import { useAuth } from "../auth.jsx";

export default function LoginPage() {
  const { token, login, notice, clearNotice } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [loginId, setLoginId] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  if (token) return <Navigate to="/" replace />;

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    clearNotice();
    try {
      await login(loginId.trim(), password);
      const from = location.state?.from;
      navigate(from && from !== "/login" ? from : "/", { replace: true });
    } catch (failure) {
      setError(
        failure.status === 429 ? `${failure.message} Try again later.` : failure.message || "Sign-in failed.",
      );
      setPassword("");
      setBusy(false);
    }
  };

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
