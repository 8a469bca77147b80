// The scores page: "Score traces" posts a batch through the JSON API, then the batches list
// (htmx) polls itself until the batch is done. No figures are computed here.
import { api, toast } from "/static/js/app.js";

const form = document.getElementById("score-form");
const errorBox = form?.querySelector("[data-form-error]");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function batchRequest(data) {
  const body = { scorer: data.get("scorer") };
  const traceIds = data.getAll("trace_id");
  if (traceIds.length) {
    body.trace_ids = traceIds;
    return body;
  }
  const text = (data.get("filter") || "").trim();
  if (text) {
    try {
      body.filter = JSON.parse(text);
    } catch (error) {
      throw new Error(`Filter is not valid JSON: ${error.message}`);
    }
  }
  const limit = (data.get("limit") || "").trim();
  if (limit) body.limit = Number(limit);
  return body;
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const button = form.querySelector('button[type="submit"]');
  let body;
  try {
    body = batchRequest(new FormData(form));
  } catch (error) {
    showError(error.message);
    return;
  }
  button.disabled = true;
  try {
    const accepted = await api("POST", "/api/scores/batch", body);
    const skipped = accepted.unknown_count ? `, ${accepted.unknown_count} unknown trace id(s) skipped` : "";
    toast(`Batch ${accepted.batch_id.slice(0, 8)} started: ${accepted.trace_count} trace(s)${skipped}`);
    // Swap in the list at once; it keeps polling itself while the batch runs.
    window.htmx.ajax("GET", "/scores/batches?polling=1", { target: "#score-batches", swap: "outerHTML" });
  } catch (error) {
    showError(error.message);
  } finally {
    button.disabled = false;
  }
});
