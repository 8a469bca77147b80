// Shared helpers for every page: JSON calls to /api with the CSRF token, toasts, dialogs.
// Pages import what they need: `import { api, toast } from "/static/js/app.js";`

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Call the JSON API as this page's user; throws ApiError with the server's message. */
export async function api(method, url, body, { raw = false, headers = {} } = {}) {
  const init = { method, headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    if (raw) {
      init.body = body;
    } else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const error = data && data.error ? data.error : { code: String(response.status), message: text || response.statusText };
    throw new ApiError(response.status, error.code, error.message, data);
  }
  return data;
}

/** A short message in the page's status region (role=status, read by screen readers). */
export function toast(message, kind = "info", ms = 5000) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const item = document.createElement("div");
  item.className = `toast ${kind}`;
  item.textContent = message;
  region.append(item);
  setTimeout(() => item.remove(), ms);
}

/** Open a <dialog> by id; resolves with its returnValue when it closes. */
export function openDialog(id) {
  const dialog = document.getElementById(id);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** Ask before something that cannot be undone; uses the page's #confirm-dialog when present. */
export async function confirmAction(message, confirmLabel = "Delete") {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog) return window.confirm(message);
  dialog.querySelector("[data-confirm-message]").textContent = message;
  dialog.querySelector("[data-confirm-button]").textContent = confirmLabel;
  return (await openDialog("confirm-dialog")) === "confirm";
}

// Buttons with data-close-dialog close their dialog without submitting anything.
document.addEventListener("click", (event) => {
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) closer.closest("dialog")?.close("cancel");
});

// Toasts a page asked for across a redirect (?toast=...) show once, then leave the URL.
const params = new URLSearchParams(location.search);
if (params.has("toast")) {
  toast(params.get("toast"));
  params.delete("toast");
  history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : "") + location.hash);
}
