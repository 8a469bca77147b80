// The "Add to dataset" dialog (templates/_add_to_dataset.html), shared by the trace page, the
// traces page and the span detail: pick an existing dataset or name a new one, an optional topic,
// then POST /api/datasets/{dataset}/capture with span_ids or trace_ids.
import { api, toast } from "/static/js/app.js";

const DATASET_PAGES = 5; // up to 5 x 1000 names in the select; more is a job for /datasets
let request = null; // { kind: "span" | "trace", ids: [...], onAdded }
let wired = false;

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

async function datasetNames() {
  const names = [];
  let cursor = null;
  for (let page = 0; page < DATASET_PAGES; page += 1) {
    const query = new URLSearchParams({ limit: "1000" });
    if (cursor) query.set("cursor", cursor);
    const data = await api("GET", `/api/datasets?${query}`);
    names.push(...data.items.map((d) => d.name));
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return names;
}

function showError(form, message) {
  const alert = form.querySelector("[data-add-error]");
  alert.textContent = message;
  alert.hidden = !message;
}

function syncTarget(form) {
  const isNew = form.elements.target.value === "new";
  form.elements.dataset.disabled = isNew;
  form.elements.name.disabled = !isNew;
  form.querySelector("[data-create-dataset]").disabled = !isNew;
}

/** "Create": make the named dataset now, then offer it as the chosen existing one. */
async function createOnly(form) {
  showError(form, "");
  const name = form.elements.name.value.trim();
  if (!name) return showError(form, "Enter a name for the new dataset.");
  try {
    await api("POST", "/api/datasets", { name });
  } catch (error) {
    return showError(form, error.message);
  }
  await fillSelect(form, name);
  form.elements.name.value = "";
  toast(`Dataset ${name} created`);
}

async function fillSelect(form, choose = null) {
  const select = form.elements.dataset;
  select.replaceChildren(new Option("Loading…", ""));
  try {
    const names = await datasetNames();
    select.replaceChildren(...names.map((name) => new Option(name, name)));
    if (!names.length) {
      select.replaceChildren(new Option("No datasets yet", ""));
      form.querySelector('input[name="target"][value="existing"]').disabled = true;
      form.elements.target.value = "new";
    } else {
      form.querySelector('input[name="target"][value="existing"]').disabled = false;
      if (choose !== null) {
        select.value = choose;
        form.elements.target.value = "existing";
      }
    }
  } catch (error) {
    select.replaceChildren(new Option("Could not load datasets", ""));
    showError(form, error.message);
  }
  syncTarget(form);
}

function summary(result, dataset) {
  const what = request.kind === "trace" ? `from ${plural(request.ids.length, "trace")} ` : "";
  const parts = [`${result.captured} added ${what}to ${dataset}`];
  if (result.duplicates) parts.push(`${plural(result.duplicates, "duplicate")} already there`);
  const unknown = (result.unknown_span_ids || []).length + (result.unknown_trace_ids || []).length;
  if (unknown) parts.push(`${unknown} not found`);
  return parts.join(", ");
}

async function submit(form) {
  showError(form, "");
  const submitButton = form.querySelector("[data-add-submit]");
  let dataset;
  if (form.elements.target.value === "new") {
    dataset = form.elements.name.value.trim();
    if (!dataset) return showError(form, "Enter a name for the new dataset.");
  } else {
    dataset = form.elements.dataset.value;
    if (!dataset) return showError(form, "Choose a dataset, or create a new one.");
  }
  const body = { [request.kind === "trace" ? "trace_ids" : "span_ids"]: request.ids };
  const topic = form.elements.topic.value.trim();
  if (topic) body.topic = topic;
  submitButton.disabled = true;
  try {
    if (form.elements.target.value === "new") {
      await api("POST", "/api/datasets", { name: dataset });
    }
    const result = await api("POST", `/api/datasets/${encodeURIComponent(dataset)}/capture`, body);
    form.closest("dialog").close("added");
    toast(summary(result, dataset));
    request.onAdded?.(result, dataset);
  } catch (error) {
    showError(form, error.message);
    if (form.elements.target.value === "new" && error.status !== 409) await fillSelect(form);
  } finally {
    submitButton.disabled = false;
  }
}

function wire(dialog) {
  const form = dialog.querySelector("[data-add-form]");
  form.addEventListener("change", (event) => {
    if (event.target.name === "target") syncTarget(form);
  });
  form.querySelector("[data-create-dataset]").addEventListener("click", () => createOnly(form));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form);
  });
  wired = true;
}

/** Open the dialog for these span or trace ids; `onAdded(result, datasetName)` runs after a capture. */
export async function addToDataset({ kind, ids, onAdded }) {
  const dialog = document.getElementById("add-to-dataset");
  if (!wired) wire(dialog);
  request = { kind, ids: [...ids], onAdded };
  const form = dialog.querySelector("[data-add-form]");
  form.reset();
  showError(form, "");
  const noun = plural(ids.length, kind);
  form.querySelector("[data-add-submit]").textContent = `Add ${noun}`;
  form.querySelector("[data-add-summary]").textContent =
    kind === "trace" ? `Each trace's root span becomes a record (${plural(ids.length, "trace")}).` : `${noun} become${ids.length === 1 ? "s" : ""} records.`;
  dialog.returnValue = "";
  dialog.showModal();
  await fillSelect(form);
}
