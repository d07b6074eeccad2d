// ESLint (flat config): the recommended JavaScript rules, React's hooks rules (dependencies,
// rules of hooks and the React Compiler's checks) and React Refresh's export rule. `npm run lint`
// fails on any warning; `make test` runs it.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import reactRefresh from "eslint-plugin-react-refresh";
import globals from "globals";

export default [
  { ignores: ["dist/", "node_modules/", "screenshots/"] },
  js.configs.recommended,
  reactHooks.configs.flat.recommended,
  reactRefresh.configs.vite,
  {
    files: ["**/*.{js,jsx}"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      globals: { ...globals.browser },
      parserOptions: { ecmaFeatures: { jsx: true } },
    },
    rules: {
      // Hooks and small helpers live next to the provider or components they belong to.
      "react-refresh/only-export-components": [
        "error",
        { allowExportNames: ["useAuth", "useLive", "useIncidentUpdates", "reconnectDelay", "watchdogStep", "stateAfterLoss", "useResource", "useRequest", "useNow", "useTimeZone", "useMediaQuery"] },
      ],
      "no-unused-vars": ["error", { varsIgnorePattern: "^[A-Z_]", argsIgnorePattern: "^_" }],
    },
  },
  // The entry point renders the app; it exports nothing.
  { files: ["src/main.jsx"], rules: { "react-refresh/only-export-components": "off" } },
  {
    files: ["vite.config.js", "eslint.config.js", "scripts/**/*.mjs"],
    languageOptions: { globals: { ...globals.node } },
  },
  // The service worker runs in a worker's scope (self, clients, registration), not a window's.
  { files: ["src/sw/**/*.js"], languageOptions: { globals: { ...globals.serviceworker } } },
];
