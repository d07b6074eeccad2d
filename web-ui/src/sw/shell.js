// How the service worker answers a request: the app shell is cached so the app opens on a bad
// ward Wi-Fi, but nothing of the API, the live socket or the status probes ever is (an alarm
// list from a cache is a lie), and index.html is fetched first so a new release is picked up.

export const BYPASS = "bypass"; // not answered by the worker at all: the network, as without it
export const NETWORK_FIRST = "network-first"; // the network, the cache when it is unreachable
export const CACHE_FIRST = "cache-first"; // hashed build assets: never change under one name

const NEVER_CACHED = [/^\/api(\/|$)/, /^\/ws(\/|$)/, /^\/ready(\/|$)/, /^\/health$/, /^\/sw\.js$/];

export function strategyFor(url, { method = "GET", mode = "cors", origin }) {
  if (method !== "GET") return BYPASS;
  const target = new URL(url);
  if (target.origin !== origin) return BYPASS;
  if (NEVER_CACHED.some((pattern) => pattern.test(target.pathname))) return BYPASS;
  if (mode === "navigate") return NETWORK_FIRST;
  if (target.pathname.startsWith("/assets/")) return CACHE_FIRST;
  return NETWORK_FIRST;
}

// Every client-side route is index.html: one cache entry serves them all when offline.
export function cacheKeyFor(url, mode) {
  return mode === "navigate" ? "/index.html" : url;
}
