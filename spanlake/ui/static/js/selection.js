// Selection mode on the trace page (spans) and the traces page (traces): "Select" shows a checkbox
// per row ([data-select-id]), the floating bar counts them and offers "Add to dataset".
// Other modules can read the selection from the "selection:change" event's detail.ids.
import { addToDataset } from "/static/js/add_to_dataset.js";

const scope = document.querySelector("[data-selection-kind]");
const toggle = document.querySelector("[data-selection-toggle]");
const bar = document.querySelector("[data-selection-bar]");

const boxes = () => [...document.querySelectorAll("[data-select-id]")];
const selectedIds = () => boxes().filter((b) => b.checked).map((b) => b.dataset.selectId);

function update() {
  const ids = selectedIds();
  const kind = scope.dataset.selectionKind;
  bar.querySelector("[data-selection-count]").textContent = `${ids.length} ${kind}${ids.length === 1 ? "" : "s"} selected`;
  bar.querySelector("[data-selection-add]").disabled = ids.length === 0;
  const score = bar.querySelector("[data-selection-score]");
  score.hidden = kind !== "trace";
  score.disabled = ids.length === 0;
  document.dispatchEvent(new CustomEvent("selection:change", { detail: { kind, ids } }));
}

function setMode(on) {
  toggle.setAttribute("aria-pressed", String(on));
  document.body.classList.toggle("selecting", on);
  for (const box of boxes()) {
    box.hidden = !on;
    if (!on) box.checked = false;
  }
  bar.hidden = !on;
  update();
}

if (scope && toggle && bar) {
  toggle.addEventListener("click", () => setMode(toggle.getAttribute("aria-pressed") !== "true"));
  document.addEventListener("change", (event) => {
    if (event.target.matches?.("[data-select-id]")) update();
  });
  bar.querySelector("[data-selection-clear]").addEventListener("click", () => setMode(false));
  // The scores page starts a batch for traces carried in its URL.
  bar.querySelector("[data-selection-score]").addEventListener("click", () => {
    location.href = `/scores?trace_ids=${selectedIds().join(",")}`;
  });
  bar.querySelector("[data-selection-add]").addEventListener("click", () => {
    const kind = scope.dataset.selectionKind;
    addToDataset({
      kind,
      ids: selectedIds(),
      onAdded: (result, dataset) => {
        setMode(false);
        document.dispatchEvent(new CustomEvent("dataset:added", { detail: { kind, result, dataset } }));
      },
    });
  });
}
