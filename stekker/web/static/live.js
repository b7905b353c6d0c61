/* Stekker console: live updates without a reload. One EventSource per page; each message
   names what changed ("station", "session") and is re-announced on <body> as the event
   "stekker:<kind>", which elements with hx-trigger="stekker:<kind> from:body" answer by
   reloading themselves. No build step: plain ES5, served as is. */
(function () {
  "use strict";
  var body = document.body;
  var url = body && body.getAttribute("data-live");
  if (!url || !window.EventSource) {
    return;
  }
  var source = new EventSource(url);
  source.addEventListener("open", function () {
    body.setAttribute("data-live-state", "open");
  });
  source.addEventListener("error", function () {
    body.setAttribute("data-live-state", "reconnecting");
  });
  ["station", "session"].forEach(function (kind) {
    source.addEventListener(kind, function () {
      body.dispatchEvent(new CustomEvent("stekker:" + kind));
    });
  });
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
