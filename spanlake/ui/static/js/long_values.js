// "Show all" on values cut at LONG_VALUE_CHARS (templates/_values.html): the full text waits,
// inert, in a <template> next to the cut one.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-show-all]");
  if (!button) return;
  const box = button.closest(".long-value");
  box.querySelector("[data-long-text]").textContent = box.querySelector("template").content.textContent;
  button.closest(".cut-note").remove();
});
