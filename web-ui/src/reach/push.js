// This device's Web Push subscription: the service worker registered at start, the permission
// asked when the clinician chooses "Enable push on this device", the subscription made with the
// server's VAPID public key (RFC 8292) and handed to the notification service, which encrypts
// each alarm for it (RFC 8291).
import { api } from "../api.js";

export function pushSupported() {
  return typeof window !== "undefined" && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

// My contact methods changed (added, verified, removed): the banner asks the server again.
export const REACH_CHANGED = "healthguard:reach-changed";

export function reachChanged() {
  window.dispatchEvent(new Event(REACH_CHANGED));
}

// The worker is registered from the built app only: the Vite dev server has no /sw.js.
export function registerServiceWorker() {
  if (!import.meta.env.PROD || typeof navigator === "undefined" || !("serviceWorker" in navigator)) return;
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
      // No worker (a private window, storage refused): the open tab still alarms as before.
    });
  });
}

// A VAPID key as PushManager.subscribe wants it: base64url text to bytes.
export function applicationServerKey(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const text = atob(padded);
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

// The subscription this browser holds now, or null.
export async function currentSubscription() {
  if (!pushSupported()) return null;
  const registration = await navigator.serviceWorker.getRegistration("/");
  return registration ? registration.pushManager.getSubscription() : null;
}

// Asks for the permission, subscribes and registers the subscription as a contact method.
// Answers the contact method the server created.
export async function enablePushOnThisDevice(label) {
  if (!pushSupported()) throw new Error("This browser cannot receive push notifications.");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error("Notifications are blocked for this site: allow them in the browser's site settings, then try again.");
  }
  const registration = await navigator.serviceWorker.ready;
  const { public_key: publicKey } = await api("/push/vapid-public-key", { authenticated: false });
  let subscription = await registration.pushManager.getSubscription();
  const key = applicationServerKey(publicKey);
  if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
    // Made for another server key (a rotated VAPID key): it would be refused; start again.
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const answer = await api("/contact-methods", {
    method: "POST",
    body: { kind: "push", label, subscription: subscription.toJSON() },
  });
  rememberThisDevice(answer.contact_method.contact_method_id, subscription.endpoint);
  return answer.contact_method;
}

// The server shows a push endpoint by its host only (the full URL is a capability): which of my
// push methods is this device is remembered here, with the endpoint it was made for.
const DEVICE_KEY = "healthguard.push-method";

function rememberThisDevice(contactMethodId, endpoint) {
  try {
    localStorage.setItem(DEVICE_KEY, JSON.stringify({ contactMethodId, endpoint }));
  } catch {
    // Storage refused: the list just cannot say which entry is this device.
  }
}

// The id of this device's push method, if its subscription is still the one registered.
export async function thisDevicesMethodId() {
  const stored = (() => {
    try {
      return JSON.parse(localStorage.getItem(DEVICE_KEY) || "null");
    } catch {
      return null;
    }
  })();
  const subscription = await currentSubscription();
  return stored && subscription && subscription.endpoint === stored.endpoint ? stored.contactMethodId : null;
}

function sameKey(held, wanted) {
  if (!held) return true; // the browser does not say: assume it is ours
  const bytes = new Uint8Array(held);
  return bytes.length === wanted.length && bytes.every((byte, index) => byte === wanted[index]);
}

// A label for this device's subscription ("Chrome on Android"), for the clinician's list.
export function deviceLabel(userAgent) {
  const browser = /Edg\//.test(userAgent)
    ? "Edge"
    : /Firefox\//.test(userAgent)
      ? "Firefox"
      : /Chrome\//.test(userAgent)
        ? "Chrome"
        : /Safari\//.test(userAgent)
          ? "Safari"
          : "Browser";
  const system = /Android/.test(userAgent)
    ? "Android"
    : /iPhone|iPad/.test(userAgent)
      ? "iOS"
      : /Windows/.test(userAgent)
        ? "Windows"
        : /Mac OS X/.test(userAgent)
          ? "macOS"
          : /Linux/.test(userAgent)
            ? "Linux"
            : null;
  return system ? `${browser} on ${system}` : browser;
}
