// runner dashboard: refresh the open page in place, and ask before destructive actions. No libraries.
(function () {
  "use strict";
  var main = document.getElementById("content");

  // a form marked data-confirm asks first (the server still wants its CSRF token; this only prevents slips)
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  if (!main || !main.hasAttribute("data-refresh")) return;
  var every = Math.max(parseFloat(main.getAttribute("data-refresh")) || 5, 1) * 1000;
  var busy = false;

  function typing() {
    var active = document.activeElement;
    return active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function refresh() {
    if (busy || document.hidden || typing()) return;
    busy = true;
    fetch(window.location.href, { headers: { "X-Runner-Partial": "1" }, credentials: "same-origin" })
      .then(function (response) {
        // an error page (Redis down, a job gone) is shown too: it says what happened and keeps trying
        return response.text();
      })
      .then(function (html) {
        var open = Array.prototype.map.call(main.querySelectorAll("details[open][id]"), function (d) { return d.id; });
        main.innerHTML = html;
        open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
        var stamp = document.querySelector("[data-stamp]");
        if (stamp) stamp.textContent = new Date().toISOString().slice(0, 19).replace("T", " ");
        document.body.classList.remove("stale");
      })
      .catch(function () { document.body.classList.add("stale"); })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
