import { StrictMode, Suspense, lazy } from "react";
import { createRoot } from "react-dom/client";
import { Outlet, createBrowserRouter, RouterProvider } from "react-router";

import { AuthProvider, RequireAuth } from "./auth.jsx";
import Layout, { Brand } from "./Layout.jsx";
import NotFound from "./NotFound.jsx";
import AlertsPage from "./pages/AlertsPage.jsx";
import CareTeamPage from "./pages/CareTeamPage.jsx";
import ChannelAckPage from "./pages/ChannelAckPage.jsx";
import DashboardPage from "./pages/DashboardPage.jsx";
import DevicesPage from "./pages/DevicesPage.jsx";
import IncidentDetailPage from "./pages/IncidentDetailPage.jsx";
import IncidentsPage from "./pages/IncidentsPage.jsx";
import LoginPage from "./pages/LoginPage.jsx";
import MyNotificationsPage from "./pages/MyNotificationsPage.jsx";
import OnCallPage from "./pages/OnCallPage.jsx";
import PatientPage from "./pages/PatientPage.jsx";
import PrivacyPage from "./pages/PrivacyPage.jsx";
import ReachabilityPage from "./pages/ReachabilityPage.jsx";
import { registerServiceWorker } from "./reach/push.js";
import StatusPage from "./StatusPage.jsx";
import { Loading } from "./ui.jsx";
import "./styles.css";
import "./reach/reach.css";

// The service status page needs no sign-in: it is what to look at when sign-in fails.
function PublicFrame() {
  return (
    <>
      <header className="topbar">
        <Brand />
      </header>
      <main className="content">
        <Outlet />
      </main>
    </>
  );
}

// The metrics page carries the charting library: loaded when first opened.
const MetricsPage = lazy(() => import("./pages/MetricsPage.jsx"));

const router = createBrowserRouter([
  {
    element: (
      <AuthProvider>
        <Outlet />
      </AuthProvider>
    ),
    children: [
      { path: "/login", element: <LoginPage /> },
      { element: <PublicFrame />, children: [
          { path: "/status", element: <StatusPage /> },
          // An alarm email's one-time link: the token is the credential, no sign-in.
          { path: "/ack/:token", element: <ChannelAckPage /> },
        ],
      },
      {
        path: "/",
        element: (
          <RequireAuth>
            <Layout />
          </RequireAuth>
        ),
        children: [
          { index: true, element: <DashboardPage /> },
          { path: "incidents", element: <IncidentsPage /> },
          { path: "incidents/:incidentId", element: <IncidentDetailPage /> },
          { path: "alerts", element: <AlertsPage /> },
          { path: "oncall", element: <OnCallPage /> },
          { path: "notifications", element: <MyNotificationsPage /> },
          { path: "reachability", element: <ReachabilityPage /> },
          { path: "care-team", element: <CareTeamPage /> },
          { path: "patients/:patientId", element: <PatientPage /> },
          { path: "devices", element: <DevicesPage /> },
          { path: "privacy", element: <PrivacyPage /> },
          {
            path: "metrics",
            element: (
              <Suspense fallback={<Loading what="Loading metrics" />}>
                <MetricsPage />
              </Suspense>
            ),
          },
          { path: "*", element: <NotFound /> },
        ],
      },
    ],
  },
]);

// The service worker: the installable app's shell cache and alarms by Web Push with no tab open.
registerServiceWorker();

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <RouterProvider router={router} />
  </StrictMode>,
);
