/* Staff pages, made nicer: a part of the page fetched again every few seconds. The element names its source
   (data-refresh-source), the part of it to take (data-refresh-part, an id) and how often (data-refresh-every, ms).
   Without this script the page shows things as they were when it was loaded. */
(function () {
  "use strict";
  if (!window.fetch || !window.DOMParser) return;
  document.querySelectorAll("[data-refresh-source]").forEach(function (section) {
    var source = section.getAttribute("data-refresh-source");
    var part = section.getAttribute("data-refresh-part");
    var busy = false;

    function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(source, {credentials: "same-origin", headers: {"Accept": "text/html"}, redirect: "manual"})
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(part);
          var old = document.getElementById(part);
          if (fresh && old) old.replaceWith(document.importNode(fresh, true));
        })
        .catch(function () { /* try again next time */ })
        .then(function () { busy = false; });
    }
    window.setInterval(refresh, Number(section.getAttribute("data-refresh-every")) || 5000);
    document.addEventListener("visibilitychange", refresh);
  });
})();
