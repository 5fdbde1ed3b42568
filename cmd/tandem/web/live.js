// Follows /events: each event is the page's live part, rendered by the
// server from the registry and the ledger. No framework, no polling.
(function () {
  "use strict";
  if (!window.EventSource) return;
  var conn = document.getElementById("conn");
  var live = document.getElementById("live");
  function state(s, text) { conn.dataset.state = s; conn.textContent = text; }
  var es = new EventSource("/events");
  es.onopen = function () { state("live", "live"); };
  es.onerror = function () { state("lost", "connection lost, retrying"); };
  es.addEventListener("status", function (e) {
    live.innerHTML = e.data;
    state("live", "live, updated " + new Date().toLocaleTimeString());
  });
  es.addEventListener("stale", function (e) {
    state("lost", e.data);
  });
})();
