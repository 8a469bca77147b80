// The trace page: arrow keys through the span tree, the detail panel swapped by htmx (the URL
// keeps ?span=), "Add a score" and "Add to dataset" from the detail, then the panel refreshed.
import { api, toast } from "/static/js/app.js";
import { addToDataset } from "/static/js/add_to_dataset.js";
import "/static/js/long_values.js";
import "/static/js/selection.js";

const tree = document.querySelector("[data-span-tree]");
const links = () => [...tree.querySelectorAll(".span-link")];
const panel = () => document.getElementById("span-detail");

tree?.addEventListener("keydown", (event) => {
  const all = links();
  const at = all.indexOf(document.activeElement);
  if (at < 0) return;
  const next = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: all.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  all[Math.max(0, Math.min(all.length - 1, next))].focus();
});

// Mark the row the panel now shows (after an htmx swap, or a history restore).
function markSelected() {
  const current = panel()?.dataset.spanId;
  for (const row of tree?.querySelectorAll(".span-row") ?? []) {
    const on = row.dataset.spanId === current;
    row.classList.toggle("selected", on);
    const link = row.querySelector(".span-link");
    if (on) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
}

document.body.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target?.id !== "span-detail" && event.detail.elt?.id !== "span-detail") return;
  markSelected();
  if (window.matchMedia("(max-width: 1000px)").matches && event.detail.requestConfig?.elt?.classList.contains("span-link")) {
    panel().scrollIntoView({ block: "start" });
  }
});
document.body.addEventListener("htmx:historyRestore", markSelected);

function refreshPanel() {
  const p = panel();
  const url = `/traces/${p.dataset.traceId}` + (p.dataset.spanId ? `?span=${p.dataset.spanId}` : "");
  return window.htmx.ajax("GET", url, { target: "#span-detail", swap: "outerHTML" });
}

document.addEventListener("dataset:added", () => refreshPanel());

// Score dialog: an annotation on the shown span, written through POST /api/scores.
const scoreDialog = document.getElementById("score-dialog");
const scoreForm = scoreDialog?.querySelector("[data-score-form]");

function scoreError(message) {
  const alert = scoreForm.querySelector("[data-score-error]");
  alert.textContent = message;
  alert.hidden = !message;
}

scoreForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  scoreError("");
  const f = scoreForm.elements;
  const name = f.name.value.trim();
  if (!name) return scoreError("Give the score a name.");
  const body = { trace_id: panel().dataset.traceId, span_id: panel().dataset.spanId, name, source: "annotation" };
  if (f.value.value.trim() !== "") body.value = Number(f.value.value);
  if (f.label.value.trim()) body.label = f.label.value.trim();
  if (f.explanation.value.trim()) body.explanation = f.explanation.value.trim();
  try {
    await api("POST", "/api/scores", body);
  } catch (error) {
    return scoreError(error.message);
  }
  scoreDialog.close("saved");
  toast(`Score “${name}” saved`);
  refreshPanel();
});

document.addEventListener("click", (event) => {
  const addSpan = event.target.closest("[data-add-span]");
  if (addSpan) {
    addToDataset({ kind: "span", ids: [addSpan.dataset.addSpan], onAdded: () => refreshPanel() });
    return;
  }
  if (event.target.closest("[data-add-score]")) {
    scoreForm.reset();
    scoreError("");
    scoreForm.querySelector("[data-score-span]").textContent = panel().dataset.spanId;
    scoreDialog.showModal();
  }
});
