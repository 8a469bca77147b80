// The datasets page: expand a row (htmx loads its first records), the row menu, and the
// create / rename / delete / export dialogs. Every change goes through the JSON API.
import { api, confirmAction, openDialog, toast } from "/static/js/app.js";

const datasetUrl = (name) => `/api/datasets/${encodeURIComponent(name)}`;
const reloadWith = (message) => {
  const params = new URLSearchParams(location.search);
  params.delete("cursor");
  params.set("toast", message);
  location.assign(`/datasets?${params}`);
};

function closeMenus(except) {
  document.querySelectorAll(".row-menu .menu:not([hidden])").forEach((menu) => {
    if (menu === except) return;
    menu.hidden = true;
    menu.parentElement.querySelector(".menu-button").setAttribute("aria-expanded", "false");
  });
}

function showError(form, message) {
  const alert = form.querySelector("[role=alert]");
  alert.textContent = message;
  alert.hidden = false;
}

/** Open a name dialog; `submit(name)` runs the API call and may throw its ApiError, shown inline. */
async function nameDialog(id, initial, submit) {
  const dialog = document.getElementById(id);
  const form = dialog.querySelector("form");
  const input = form.elements.name;
  input.value = initial;
  form.querySelector("[role=alert]").hidden = true;
  form.onsubmit = async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await submit(input.value.trim());
    } catch (error) {
      showError(form, error.message);
      button.disabled = false;
    }
  };
  openDialog(id);
  input.select();
}

document.addEventListener("click", async (event) => {
  const opener = event.target.closest("[data-open]");
  if (opener && opener.dataset.open === "new-dataset-dialog") {
    nameDialog("new-dataset-dialog", "", async (name) => {
      await api("POST", "/api/datasets", { name });
      reloadWith(`Created dataset ${name}`);
    });
    return;
  }

  // A click anywhere on a row's free space expands it too, like its name.
  const bare = event.target.closest(".dataset-row");
  if (bare && !event.target.closest("button, a, .row-menu")) {
    bare.querySelector("button.disclosure").click();
    return;
  }

  const disclosure = event.target.closest("button.disclosure");
  if (disclosure) {
    const region = document.getElementById(disclosure.getAttribute("aria-controls"));
    const open = disclosure.getAttribute("aria-expanded") !== "true";
    disclosure.setAttribute("aria-expanded", String(open));
    region.hidden = !open;
    return;
  }

  const menuButton = event.target.closest(".menu-button");
  if (menuButton) {
    const menu = menuButton.parentElement.querySelector(".menu");
    closeMenus(menu);
    menu.hidden = !menu.hidden;
    menuButton.setAttribute("aria-expanded", String(!menu.hidden));
    if (!menu.hidden) menu.querySelector("button").focus();
    return;
  }

  const action = event.target.closest(".menu [data-action]");
  if (!action) {
    if (!event.target.closest(".menu")) closeMenus();
    return;
  }
  closeMenus();
  const row = action.closest("li.dataset");
  const name = row.dataset.name;
  if (action.dataset.action === "rename") {
    nameDialog("rename-dialog", name, async (newName) => {
      await api("PATCH", datasetUrl(name), { name: newName });
      reloadWith(`Renamed ${name} to ${newName}`);
    });
  } else if (action.dataset.action === "delete") {
    const count = Number(row.dataset.count);
    const ok = await confirmAction(`Delete dataset “${name}” and its ${count} record${count === 1 ? "" : "s"}? Its history stays readable through the API's as_of.`, "Delete");
    if (!ok) return;
    try {
      await api("DELETE", datasetUrl(name));
      reloadWith(`Deleted dataset ${name}`);
    } catch (error) {
      toast(error.message, "error");
    }
  } else if (action.dataset.action === "export") {
    const dialog = document.getElementById("export-dialog");
    dialog.querySelector("[data-export-name]").textContent = name;
    dialog.querySelectorAll("a[data-format]").forEach((link) => {
      link.href = `${datasetUrl(name)}/export?format=${link.dataset.format}`;
    });
    openDialog("export-dialog");
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = document.querySelector(".row-menu .menu:not([hidden])");
  if (open) {
    closeMenus();
    open.parentElement.querySelector(".menu-button").focus();
  }
});

// htmx leaves an error answer unswapped: say so in the expanded row instead of spinning forever.
function previewFailed(event) {
  const target = event.detail.target;
  if (!target?.classList.contains("preview")) return;
  const alert = document.createElement("p");
  alert.className = "alert";
  alert.setAttribute("role", "alert");
  const status = event.detail.xhr?.status;
  alert.textContent = status ? `Could not load the records (HTTP ${status}). Reload the page to try again.` : "Could not reach the server. Reload the page to try again.";
  target.replaceChildren(alert);
}
document.body.addEventListener("htmx:responseError", previewFailed);
document.body.addEventListener("htmx:sendError", previewFailed);
