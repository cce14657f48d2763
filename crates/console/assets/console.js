// Postwerk console: progressive enhancement only. Every page works without it.
// - Copy buttons (hidden until this script runs) copy an element's text.
// - Buttons marked data-confirm ask before a destructive action.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    var label = button.firstChild ? button.firstChild.textContent : "";
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.firstChild.textContent = button.getAttribute("data-copied") || "✓";
        setTimeout(function () { button.firstChild.textContent = label; }, 1500);
      });
    });
  });
  document.querySelectorAll("form button[data-confirm]").forEach(function (button) {
    button.form.addEventListener("submit", function (event) {
      if (event.submitter === button && !window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });
});
