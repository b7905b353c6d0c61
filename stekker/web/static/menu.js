/* Stekker console: on a phone the main menu folds up behind its "Menu" button (the header
   would otherwise take a screen of its own). Without this script the menu simply wraps.
   Wide screens never see the button (console.css). Plain ES5, served as is. */
(function () {
  "use strict";
  var toggle = document.querySelector(".menu-toggle");
  var menu = document.getElementById("main-menu");
  if (!toggle || !menu) {
    return;
  }
  var header = toggle.parentNode;

  function show(open) {
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      header.classList.remove("menu-closed");
    } else {
      header.classList.add("menu-closed");
    }
  }

  header.classList.add("menu-folds");
  toggle.hidden = false;
  show(false);
  toggle.addEventListener("click", function () {
    show(toggle.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true" && header.contains(document.activeElement)) {
      show(false);
      toggle.focus();
    }
  });
})();
