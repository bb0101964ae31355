/* routeguard console: small progressive enhancements (the pages work without them). */
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  /* "Load from a file": read a bundle file into the upload form's text area (shown only with JavaScript). */
  document.querySelectorAll("input[type=file][data-fills]").forEach(function (input) {
    var target = document.getElementById(input.getAttribute("data-fills"));
    if (!target) { return; }
    var box = input.closest("[hidden]");
    if (box) { box.removeAttribute("hidden"); }
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) { return; }
      file.text().then(function (text) {
        target.value = text;
        target.dispatchEvent(new Event("input", { bubbles: true }));
      });
    });
  });
});
