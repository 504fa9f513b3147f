// lbaas console: live refresh. Pages work without this script; with it, the
// parts marked data-live-part are fetched again every few seconds (the
// page's own URL, rendered by the server) and replaced in place, except a
// part that holds the keyboard focus.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.fetch || !window.DOMParser) return;
  var every = parseInt(main.getAttribute("data-live"), 10) || 3000;
  var url = main.getAttribute("data-live-url");
  var failed = 0;
  function refresh() {
    if (document.hidden) { return schedule(); }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html", "X-Console-Refresh": "1" } })
      .then(function (res) {
        if (res.redirected || res.status === 401) { window.location.reload(); return null; }
        return res.ok ? res.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-part]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (!fresh || old.contains(document.activeElement)) return;
          if (old.innerHTML !== fresh.innerHTML) old.innerHTML = fresh.innerHTML;
          Array.prototype.forEach.call(fresh.attributes, function (a) { old.setAttribute(a.name, a.value); });
        });
        main.setAttribute("data-refreshed", String(Date.now()));
        failed = 0;
      })
      .catch(function () { failed++; })
      .then(schedule);
  }
  function schedule() { setTimeout(refresh, every * Math.min(1 + failed, 10)); }
  // A refused form's fault takes the focus, so screen readers read it.
  var fault = document.querySelector("[data-fault]");
  if (fault) fault.focus();
  schedule();
})();
