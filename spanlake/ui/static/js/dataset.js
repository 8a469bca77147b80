// One dataset's page: selection and bulk actions, inline topic edit, the JSON editor, delete and
// import. Every change goes through the JSON API; the page only shows what the API answers.
import { api, confirmAction, openDialog, toast } from "/static/js/app.js";
import { jsonError } from "/static/js/json_check.js";

const root = document.getElementById("dataset-page");
const name = root?.dataset.name;
const itemsUrl = () => `/api/datasets/${encodeURIComponent(name)}/items`;
const EDITABLE = ["input", "expected_output", "metadata"];

/** Reload the first page of the current view (a cursor pins an instant older than our change). */
function reloadWith(message) {
  const params = new URLSearchParams(location.search);
  params.delete("cursor");
  params.set("toast", message);
  location.assign(`${location.pathname}?${params}`);
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// Sort by: a change applies at once (the Apply button stays for keyboards and no-JS).
document.querySelector("select[data-autosubmit]")?.addEventListener("change", (event) => {
  const form = event.target.form;
  form.querySelector("input[name=order]")?.remove();
  form.requestSubmit();
});

// --- selection -----------------------------------------------------------------------------
const boxes = () => [...document.querySelectorAll("input[data-select]")];
const selectedIds = () => boxes().filter((b) => b.checked).map((b) => b.closest("tr").dataset.id);
const selectAll = document.querySelector("input[data-select-all]");
const bar = document.getElementById("selection-bar");

function updateSelection() {
  if (!bar) return;
  const n = selectedIds().length;
  bar.hidden = n === 0;
  bar.querySelector("[data-selected-count]").textContent = `${n} selected`;
  if (selectAll) {
    selectAll.checked = n > 0 && n === boxes().length;
    selectAll.indeterminate = n > 0 && n < boxes().length;
  }
}

selectAll?.addEventListener("change", () => {
  boxes().forEach((b) => { b.checked = selectAll.checked; });
  updateSelection();
});
document.addEventListener("change", (event) => {
  if (event.target.matches("input[data-select]")) updateSelection();
});

bar?.querySelector("[data-bulk-delete]").addEventListener("click", async () => {
  const ids = selectedIds();
  if (!(await confirmAction(`Delete ${plural(ids.length, "record")}? Past versions stay readable with “As of”.`, "Delete"))) return;
  try {
    const result = await api("POST", `${itemsUrl()}/bulk`, { ids, delete: true });
    reloadWith(`Deleted ${plural(result.deleted, "record")}`);
  } catch (error) {
    toast(error.message, "error");
  }
});

bar?.querySelector("[data-bulk-topic]").addEventListener("click", () => {
  const dialog = document.getElementById("topic-dialog");
  const form = dialog.querySelector("form");
  const ids = selectedIds();
  dialog.querySelector("[data-topic-count]").textContent = plural(ids.length, "record");
  form.elements.topic.value = "";
  form.querySelector("[role=alert]").hidden = true;
  form.onsubmit = async (event) => {
    event.preventDefault();
    const topic = form.elements.topic.value.trim();
    try {
      const result = await api("POST", `${itemsUrl()}/bulk`, { ids, set: { topic: topic || null } });
      reloadWith(`Set the topic of ${plural(result.updated, "record")}`);
    } catch (error) {
      const alert = form.querySelector("[role=alert]");
      alert.textContent = error.message;
      alert.hidden = false;
    }
  };
  openDialog("topic-dialog");
});

// --- one record: delete, topic, data ------------------------------------------------------------
document.addEventListener("click", async (event) => {
  const trash = event.target.closest("button.trash");
  if (trash) {
    const row = trash.closest("tr");
    if (!(await confirmAction(`Delete record ${row.dataset.id}? Past versions stay readable with “As of”.`, "Delete"))) return;
    try {
      await api("DELETE", `${itemsUrl()}/${encodeURIComponent(row.dataset.id)}`);
      row.remove();
      updateSelection();
      toast("Record deleted");
    } catch (error) {
      toast(error.message, "error");
    }
    return;
  }
  const topic = event.target.closest("button.topic-edit");
  if (topic) {
    editTopic(topic);
    return;
  }
  const data = event.target.closest("button.data-preview");
  if (data) openEditor(data.closest("tr").dataset.id);
});

function editTopic(button) {
  const id = button.closest("tr").dataset.id;
  const input = document.createElement("input");
  input.type = "text";
  input.maxLength = 200;
  input.value = button.dataset.topic;
  input.setAttribute("aria-label", "Topic");
  input.className = "topic-input";
  button.hidden = true;
  button.after(input);
  input.focus();
  input.select();
  let done = false;
  const finish = () => {
    done = true;
    input.remove();
    button.hidden = false;
  };
  input.addEventListener("keydown", async (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      finish();
      button.focus();
    } else if (event.key === "Enter") {
      event.preventDefault();
      const value = input.value.trim();
      input.disabled = true;
      try {
        const item = await api("PATCH", `${itemsUrl()}/${encodeURIComponent(id)}`, { topic: value || null });
        button.dataset.topic = item.topic ?? "";
        button.textContent = item.topic || "Add topic";
        button.classList.toggle("unset", !item.topic);
        finish();
        button.focus();
        toast(item.topic ? `Topic set to ${item.topic}` : "Topic cleared");
      } catch (error) {
        input.disabled = false;
        toast(error.message, "error");
      }
    }
  });
  input.addEventListener("blur", () => { if (!done && !input.disabled) finish(); });
}

// --- the JSON editor ------------------------------------------------------------------------
const editor = document.getElementById("editor-dialog");
const textarea = editor?.querySelector("textarea");
const errorBox = editor?.querySelector("[data-json-error]");
const saveButton = editor?.querySelector("button[type=submit]");

/** What is wrong with the editor's text (syntax with line and column, or shape), or null. */
function problem(text) {
  const syntax = jsonError(text);
  if (syntax) return `Line ${syntax.line}, column ${syntax.column}: ${syntax.message}`;
  const value = JSON.parse(text);
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "The record must be a JSON object with input, expected_output and metadata.";
  const extra = Object.keys(value).filter((k) => !EDITABLE.includes(k));
  if (extra.length) return `${extra[0]} cannot be edited here; use input, expected_output and metadata.`;
  if (value.input === undefined || value.input === null) return "input is required and cannot be null.";
  if (value.metadata !== undefined && (value.metadata === null || typeof value.metadata !== "object" || Array.isArray(value.metadata))) return "metadata must be an object.";
  return null;
}

function check() {
  const message = problem(textarea.value);
  errorBox.textContent = message ?? "";
  errorBox.hidden = message === null;
  saveButton.disabled = message !== null;
  textarea.setAttribute("aria-invalid", String(message !== null));
}

// Big records (prompts can be megabytes) are checked when typing pauses, small ones at once.
let pending;
textarea?.addEventListener("input", () => {
  clearTimeout(pending);
  if (textarea.value.length > 100_000) pending = setTimeout(check, 200);
  else check();
});

async function openEditor(id) {
  let item;
  try {
    item = await api("GET", `${itemsUrl()}/${encodeURIComponent(id)}`);
  } catch (error) {
    toast(error.message, "error");
    return;
  }
  editor.querySelector("[data-editor-id]").textContent = id;
  const record = { input: item.input, expected_output: item.expected_output, metadata: item.metadata };
  textarea.value = JSON.stringify(record, null, 2);
  check();
  const form = editor.querySelector("form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    if (problem(textarea.value)) return;
    saveButton.disabled = true;
    const value = JSON.parse(textarea.value);
    const body = { input: value.input, expected_output: value.expected_output ?? null, metadata: value.metadata ?? {} };
    try {
      await api("PATCH", `${itemsUrl()}/${encodeURIComponent(id)}`, body);
      reloadWith("Record saved");
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
      saveButton.disabled = false;
    }
  };
  openDialog("editor-dialog");
  textarea.focus();
}

// --- import ---------------------------------------------------------------------------------
const TYPES = { json: "application/json", jsonl: "application/x-ndjson", ndjson: "application/x-ndjson", csv: "text/csv" };

document.querySelector("[data-open-import]")?.addEventListener("click", () => {
  const form = document.querySelector("#import-dialog form");
  const errors = form.querySelector("[data-import-errors]");
  form.reset();
  errors.hidden = true;
  form.onsubmit = async (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    const type = TYPES[(file?.name.split(".").pop() || "").toLowerCase()];
    errors.replaceChildren();
    if (!type) {
      errors.textContent = "Choose a .json, .jsonl or .csv file.";
      errors.hidden = false;
      return;
    }
    try {
      const result = await api("POST", `/api/datasets/${encodeURIComponent(name)}/import`, file, { raw: true, headers: { "Content-Type": type } });
      reloadWith(`Imported ${plural(result.imported, "record")}`);
    } catch (error) {
      const summary = document.createElement("p");
      summary.textContent = error.message;
      errors.append(summary);
      const rows = error.body?.error?.rows ?? [];
      if (rows.length) {
        const list = document.createElement("ul");
        for (const row of rows) {
          const li = document.createElement("li");
          li.textContent = `Row ${row.row}: ${row.reason}`;
          list.append(li);
        }
        errors.append(list);
      }
      errors.hidden = false;
    }
  };
  openDialog("import-dialog");
});
