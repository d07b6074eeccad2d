import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The service worker (src/sw/sw.js) is a second entry built to /sw.js (no hash: its URL is its
// identity, and nginx serves it uncached). Once the bundle is known, its placeholders become the
// list of the build's files to cache as the app shell and a version derived from them, so each
// release installs a new worker with a new cache.
const SERVICE_WORKER = "sw.js";

function shellFiles() {
  return {
    name: "healthguard-shell-files",
    generateBundle(_options, bundle) {
      const files = Object.keys(bundle)
        .filter((name) => name !== SERVICE_WORKER && !name.endsWith(".map") && name !== "index.html")
        .sort()
        .map((name) => `/${name}`);
      const version = createHash("sha256").update(files.join("\n")).digest("hex").slice(0, 12);
      const worker = bundle[SERVICE_WORKER];
      if (!worker || !worker.code.includes("__SHELL_FILES__")) {
        this.error("the service worker's __SHELL_FILES__ placeholder is missing from the bundle");
      }
      worker.code = worker.code
        .replaceAll("__SHELL_FILES__", JSON.stringify(files))
        .replaceAll("__SHELL_VERSION__", JSON.stringify(version));
      if (/^\s*import[\s{*"']/m.test(worker.code)) {
        this.error("sw.js imports a shared chunk: a classic service worker cannot load it");
      }
    },
  };
}

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
  plugins: [react(), shellFiles()],
  build: {
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL("index.html", import.meta.url)),
        sw: fileURLToPath(new URL("src/sw/sw.js", import.meta.url)),
      },
      output: {
        entryFileNames: (chunk) => (chunk.name === "sw" ? SERVICE_WORKER : "assets/[name]-[hash].js"),
      },
    },
  },
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
      "/api/v1/preferences": services.notification,
      "/api/v1/contact-methods": services.notification,
      "/api/v1/notification-rules": services.notification,
      "/api/v1/deliveries": services.notification,
      "/api/v1/reachability": services.notification,
      "/api/v1/push": services.notification,
      "/api/v1/channel-ack": services.notification,
      "/api/v1/wctp": services.notification,
      "/api/v1/twilio": services.notification,
      "/ws": { target: services.notification, ws: true },
    },
  },
});
