// The kiosk, made nicer: an on-screen keypad that types into the field last chosen, a scanner's Enter that moves
// on to the CPR, the ticket's print button, and a return to the first screen when the kiosk is left alone.
// Every form works without this file.
(function () {
  "use strict";
  var IDLE_SECONDS = 60;

  function keypad(form) {
    var pad = form.querySelector(".keypad");
    var fields = form.querySelectorAll("input[data-keypad]");
    if (!pad || !fields.length) return;
    var target = form.querySelector("input[data-keypad][autofocus]") || fields[0];

    function choose(field) {
      target = field;
      fields.forEach(function (f) { f.classList.toggle("keypad-target", f === field); });
      pad.classList.toggle("for-digits", field.dataset.keypad === "digits");
    }
    fields.forEach(function (field) {
      field.addEventListener("focus", function () { choose(field); });
    });
    pad.hidden = false;
    choose(target);

    // a tap on a key leaves the focus (and the caret) in the field; a keyboard user's focus stays on the key
    pad.addEventListener("pointerdown", function (event) {
      if (event.target.closest(".key") && document.activeElement === target) event.preventDefault();
    });
    pad.addEventListener("click", function (event) {
      var key = event.target.closest(".key");
      if (!key) return;
      var value = target.value;
      if (key.dataset.key === "delete") value = value.slice(0, -1);
      else if (key.dataset.key === "clear") value = "";
      else if (target.dataset.keypad === "digits" && !/^\d$/.test(key.dataset.key)) return;
      else if (!target.maxLength || target.maxLength < 0 || value.length < target.maxLength) {
        value += key.dataset.key;
        if (target.dataset.keypad === "reference" && value.replace(/[^A-Za-z0-9]/g, "").length === 4 &&
            value.indexOf("-") < 0) value += "-";
      }
      target.value = value;
      target.dispatchEvent(new Event("input", {bubbles: true}));
      if (target.dataset.keypad === "reference" && value.replace(/[^A-Za-z0-9]/g, "").length === 8) {
        var next = form.querySelector('input[data-keypad="digits"]');
        if (next) { choose(next); if (document.activeElement && document.activeElement.closest(".keypad") === null) next.focus(); }
      }
    });
  }

  function scanner(form) {
    // a QR scanner types the reference and presses Enter: ask for the CPR before sending
    var reference = form.querySelector("#reference"), cpr = form.querySelector("#cpr");
    if (!reference || !cpr) return;
    reference.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && reference.value.trim() && !cpr.value.trim()) {
        event.preventDefault();
        cpr.focus();
      }
    });
  }

  function printing() {
    var button = document.getElementById("print-ticket");
    if (!button || typeof window.print !== "function") return;
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  }

  function idle() {
    var header = document.querySelector("header[data-home]");
    if (!header) return;
    var home = header.dataset.home, timer = null;
    function restart() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        // back to the first screen: a new person must not find the last one's answers
        window.location.assign(home);
      }, IDLE_SECONDS * 1000);
    }
    ["pointerdown", "keydown", "input"].forEach(function (type) { document.addEventListener(type, restart, true); });
    restart();
  }

  document.querySelectorAll("form.check-in, form.walk-in").forEach(function (form) { keypad(form); scanner(form); });
  printing();
  idle();
})();
