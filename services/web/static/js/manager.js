/* The centre manager's page, made nicer: the day's figures and charts fetched again every few seconds.
   Without this script the page shows the figures as they were when it was loaded. */
(function () {
  "use strict";
  var section = document.getElementById("today");
  if (!section || !window.fetch || !window.DOMParser) return;
  var source = section.getAttribute("data-source");
  var busy = false;

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(source, {credentials: "same-origin", headers: {"Accept": "text/html"}, redirect: "manual"})
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("figures");
        var old = document.getElementById("figures");
        if (fresh && old) old.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () { /* try again next time */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, 10000);
  document.addEventListener("visibilitychange", refresh);
})();
