/* The booking pages, made nicer: the calendar moves with the arrow keys, the details are checked as they are typed,
   a print button on the confirmation, and the first error is brought into view. Every form works without this. */
(function () {
  "use strict";

  // -- the calendar: one tab stop, arrow keys move between the days that can be chosen
  document.querySelectorAll("table.month").forEach(function (table) {
    var buttons = Array.prototype.slice.call(table.querySelectorAll(".day-button"));
    if (!buttons.length) { return; }
    var current = buttons.filter(function (b) { return b.hasAttribute("aria-current"); })[0] || buttons[0];
    buttons.forEach(function (b) { b.tabIndex = b === current ? 0 : -1; });
    var rtl = document.documentElement.dir === "rtl";
    table.addEventListener("keydown", function (event) {
      var index = buttons.indexOf(document.activeElement);
      if (index < 0) { return; }
      var step = { ArrowRight: rtl ? -1 : 1, ArrowLeft: rtl ? 1 : -1, Home: -index, End: buttons.length - 1 - index }[event.key];
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        var day = Number(buttons[index].value.slice(8, 10)) + (event.key === "ArrowDown" ? 7 : -7);
        var target = buttons.filter(function (b) { return Number(b.value.slice(8, 10)) >= day; });
        if (event.key === "ArrowUp") {
          target = buttons.filter(function (b) { return Number(b.value.slice(8, 10)) <= day; }).reverse();
        }
        step = target.length ? buttons.indexOf(target[0]) - index : 0;
      }
      if (step === undefined) { return; }
      event.preventDefault();
      var next = buttons[Math.max(0, Math.min(buttons.length - 1, index + step))];
      buttons.forEach(function (b) { b.tabIndex = -1; });
      next.tabIndex = 0;
      next.focus();
    });
  });

  // -- the details: checked when a field is left, and all at once before sending
  var checks = {
    name: function (v) { return v.trim().length > 0 && v.length <= 200; },
    cpr: function (v) { return /^[0-9]{2}(0[1-9]|1[0-2])[0-9]{5}$/.test(v.trim()); },
    mobile: function (v) { return v.trim() === "" || /^\+?[0-9]{8,15}$/.test(v.trim()); },
    email: function (v) { return v.trim() === "" || /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v.trim()); },
    reference: function (v) { return v.toUpperCase().replace(/[^0-9A-Z]/g, "").length === 8; }
  };

  function show(input, ok) {
    var id = input.id + "-error";
    var message = document.getElementById(id);
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (x) { return x && x !== id; });
    if (ok) {
      if (message) { message.remove(); }
      input.removeAttribute("aria-invalid");
    } else {
      if (!message) {
        message = document.createElement("p");
        message.className = "error";
        message.id = id;
        input.insertAdjacentElement("afterend", message);
      }
      message.textContent = input.getAttribute("data-message");
      input.setAttribute("aria-invalid", "true");
      described.push(id);
    }
    if (described.length) { input.setAttribute("aria-describedby", described.join(" ")); }
    else { input.removeAttribute("aria-describedby"); }
  }

  document.querySelectorAll("form[data-live-validation]").forEach(function (form) {
    var inputs = Array.prototype.filter.call(form.querySelectorAll("input[data-message]"), function (i) { return checks[i.name]; });
    inputs.forEach(function (input) {
      input.addEventListener("blur", function (event) {
        // leaving the field for the form's button: the submit check follows, and a message inserted now would
        // move the button from under the click
        var next = event.relatedTarget;
        if (next && next.form === form && next.type === "submit") { return; }
        if (input.value !== "" || input.hasAttribute("aria-invalid")) { show(input, checks[input.name](input.value)); }
      });
      input.addEventListener("input", function () {
        if (input.hasAttribute("aria-invalid") && checks[input.name](input.value)) { show(input, true); }
      });
    });
    form.addEventListener("submit", function (event) {
      var wrong = inputs.filter(function (input) { var ok = checks[input.name](input.value); show(input, ok); return !ok; });
      if (wrong.length) { event.preventDefault(); wrong[0].focus(); }
    });
  });

  // -- the confirmation: a print button
  document.querySelectorAll(".print-button").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  // -- a page that comes back with errors: the summary first
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
