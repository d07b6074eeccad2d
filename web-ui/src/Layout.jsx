import { Link, Outlet } from "react-router";

export default function Layout() {
  return (
    <>
      <header className="topbar">
        <Link to="/" className="brand">
          HealthGuard Ops
        </Link>
      </header>
      <main className="content">
        <Outlet />
      </main>
    </>
  );
}
