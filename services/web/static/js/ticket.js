// The live ticket: asks the API for the ticket every few seconds and shows its place, wait and, once called, the
// counter, with a short sound and a vibration where the browser allows them. Without this file the page's
// Refresh link (or a reload) shows the latest.
(function () {
  "use strict";
  var page = document.getElementById("live-ticket");
  if (!page || !window.fetch) return;
  var token = page.dataset.token, every = Math.max(3, Number(page.dataset.poll) || 5) * 1000;
  var status = page.dataset.status, calledAt = page.dataset.calledAt || "";
  var FINAL = ["served", "no_show", "closed_out"];
  var alerts = document.getElementById("alerts"), audio = null, wanted = false;

  document.querySelectorAll('[data-js="on"]').forEach(function (el) { el.hidden = false; });
  document.querySelectorAll('[data-js="off"]').forEach(function (el) { el.hidden = true; });

  function field(name, value) {
    page.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = value == null ? "" : value; });
  }

  function beep() {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audio = audio || new Context();
      if (audio.state === "suspended") audio.resume();
      [0, 0.35].forEach(function (offset) {
        var tone = audio.createOscillator(), gain = audio.createGain(), at = audio.currentTime + offset;
        tone.type = "sine";
        tone.frequency.setValueAtTime(880, at);
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.4, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
        tone.connect(gain).connect(audio.destination);
        tone.start(at);
        tone.stop(at + 0.32);
      });
    } catch (e) { /* no sound: the page still says it */ }
  }

  function vibrate() {
    try { if (navigator.vibrate) navigator.vibrate([300, 150, 300]); } catch (e) { /* not allowed */ }
  }

  if (alerts) {
    // browsers let a page make a sound only after a tap: this button is that tap
    alerts.hidden = false;
    alerts.addEventListener("click", function () {
      wanted = alerts.getAttribute("aria-pressed") !== "true";
      alerts.setAttribute("aria-pressed", wanted ? "true" : "false");
      if (wanted) { beep(); }
    });
  }

  function show(ticket) {
    field("position", ticket.position);
    field("estimated_wait_minutes", ticket.estimated_wait_minutes);
    var wait = (ticket.position || 1) <= 1 ? "next" : ((ticket.estimated_wait_minutes || 0) > 1 ? "minutes" : "minute");
    field("counter", ticket.counter);
    page.querySelectorAll("[data-wait]").forEach(function (el) {
      el.hidden = el.dataset.wait !== wait;
    });
    page.querySelectorAll("[data-when]").forEach(function (el) { el.hidden = el.dataset.when !== ticket.status; });
    var called = ticket.status === "called" && (status !== "called" || (ticket.called_at || "") !== calledAt);
    if (called) {
      var sentence = page.querySelector(".called");
      document.getElementById("announce").textContent = sentence ? sentence.textContent : "";
      beep();
      vibrate();
    }
    status = ticket.status;
    calledAt = ticket.called_at || "";
    page.dataset.status = status;
  }

  function poll() {
    fetch("/api/v1/tickets/by-token/" + encodeURIComponent(token), {headers: {Accept: "application/json"}, cache: "no-store"})
      .then(function (answer) {
        if (answer.status === 404) return null;  // the link is gone: stop asking
        return answer.ok ? answer.json().then(function (ticket) { show(ticket); return ticket; }) : {};
      })
      .catch(function () { return {}; })   // offline for a moment: try again
      .then(function (ticket) {
        if (ticket && FINAL.indexOf(status) < 0) setTimeout(poll, every);
      });
  }

  if (FINAL.indexOf(status) < 0) setTimeout(poll, every);
})();
