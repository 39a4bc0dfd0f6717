/* The counter console, made nicer: keyboard shortcuts for every action (N call next, R recall, S served,
   X no-show, T transfer, O open, C close; by key position, so they work with an Arabic layout too) and the
   waiting lines refreshed every few seconds. Without this script every button still works as a plain form. */
(function () {
  "use strict";
  var TYPING = /^(INPUT|SELECT|TEXTAREA)$/;

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var target = event.target;
    if (target && (TYPING.test(target.tagName) || target.isContentEditable)) return;
    var button = document.querySelector('button[data-key="' + event.code + '"]');
    if (!button || button.disabled) return;
    event.preventDefault();
    if (event.code === "KeyT") {           // transfer: first choose where to, then Enter
      var select = document.getElementById("transfer-service");
      if (select) { select.focus(); return; }
    }
    button.disabled = true;                // one press, one action
    button.form.submit();
  });

  var section = document.getElementById("waiting");
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
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("waiting-lines");
        var old = document.getElementById("waiting-lines");
        if (fresh && old) old.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () { /* try again next time */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, 5000);
  document.addEventListener("visibilitychange", refresh);
})();
