/* The live event debugger of a source page: polling pauses while a message's payload is open, so that the
   refresh does not fold it away, and resumes when it is closed. On the created page, the write key is selected
   on focus for copying. */
(function () {
  "use strict";

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    /* Only the polling element itself pauses; the filter links inside it are elements of their own. */
    if (elt && elt.id === "source-live" && elt.querySelector("details[open]")) {
      event.preventDefault();
    }
  });

  document.addEventListener("toggle", function (event) {
    var live = document.getElementById("source-live");
    var note = live && live.querySelector("[data-paused-note]");
    if (note && live.contains(event.target)) {
      note.hidden = !live.querySelector("details[open]");
    }
  }, true);

  document.addEventListener("focusin", function (event) {
    if (event.target && event.target.hasAttribute && event.target.hasAttribute("data-select-on-focus")) {
      event.target.select();
    }
  });
})();
