import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// In development the Vite server stands in for nginx: the same paths are
// proxied to the services running locally (see nginx.conf for production).
const services = {
  "alert-ingestion": "http://127.0.0.1:8001",
  "incident-management": "http://127.0.0.1:8002",
  oncall: "http://127.0.0.1:8003",
  notification: "http://127.0.0.1:8004",
};

const readyProxies = Object.fromEntries(
  Object.entries(services).map(([name, target]) => [
    `/ready/${name}`,
    { target, rewrite: () => "/ready" },
  ]),
);

export default defineConfig({
  plugins: [react()],
  server: {
    port: 5173,
    proxy: {
      ...readyProxies,
      "/api/v1/alerts": services["alert-ingestion"],
      "/api/v1/alert-types": services["alert-ingestion"],
      "/api/v1/patients": services["alert-ingestion"],
      "/api/v1/devices": services["alert-ingestion"],
      "/api/v1/incidents": services["incident-management"],
      "/api/v1/care-teams": services["incident-management"],
      "/api/v1/silences": services["incident-management"],
      "/api/v1/auth": services.oncall,
      "/api/v1/oncall": services.oncall,
      "/api/v1/schedules": services.oncall,
      "/api/v1/employees": services.oncall,
      "/api/v1/notifications": services.notification,
      "/api/v1/ws-ticket": services.notification,
      "/ws": { target: services.notification, ws: true },
    },
  },
});
