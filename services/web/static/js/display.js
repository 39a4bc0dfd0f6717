/* The waiting-room display, live: the board from the branch's Server-Sent Events stream, a flash, a chime and a
   voice (Arabic, then English) for each new call, a stream that comes back by itself after an outage, and a
   check that the screen is still paired (its device token not revoked), which loads the page again when not.
   Without this script the page still shows the board it was served with (and reloads every 30 s). */
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board) { return; }
  var lang = board.dataset.lang;
  var WATCHDOG_MS = 40000;          // no message and no heartbeat for this long: the stream is dead, open another
  var FLASH_MS = 6000;
  var ANNOUNCE_AT_MOST = 3;         // after an outage, only the newest calls missed are announced
  var SAY = {                       // what the voice says, always in both languages, Arabic first
    ar: function (c) { return "التذكرة " + c.number + "، الشباك " + c.counter; },
    en: function (c) { return "Ticket " + c.number + ", counter " + c.counter; }
  };

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key]; });
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function keyOf(call) { return call.number + "|" + call.counter + "|" + call.called_at; }

  // -- the calls already shown (served with the page): never announced again -----------------------------
  var seen = {};
  Array.prototype.forEach.call(document.querySelectorAll("#last-called li[data-key]"), function (li) {
    seen[li.dataset.key] = true;
  });

  // -- drawing a board -------------------------------------------------------------------------------------
  function drawHours(data) {           // today's opening hours, and whether the centre is open now
    var state = document.getElementById("open-state");
    if (!state || !Array.isArray(data.hours)) { return; }
    state.textContent = data.open_now ? board.dataset.openNow
      : (data.hours.length ? board.dataset.closedNow : board.dataset.closedToday);
    state.classList.toggle("open", !!data.open_now);
    var times = document.getElementById("hours-times"), parts = [];
    data.hours.forEach(function (period, i) {
      if (i) { parts.push(board.dataset.listSeparator); }
      var span = el("span", "", period.opens + "\u2013" + period.closes);
      span.dir = "ltr";
      parts.push(span);
    });
    times.replaceChildren.apply(times, parts);
    document.getElementById("hours-today").hidden = data.hours.length === 0;
  }

  function draw(data) {
    document.getElementById("closed").hidden = !data.closed;
    drawHours(data);

    var serving = document.getElementById("now-serving");
    serving.replaceChildren.apply(serving, (data.now_serving || []).map(function (row) {
      var tr = el("tr");
      var number = el("td", "number"), text = el("span", "", row.number);
      text.dir = "ltr";
      number.append(text);
      tr.append(number, el("td", "counter", row.counter));
      return tr;
    }));
    var anyServing = (data.now_serving || []).length > 0;
    document.getElementById("serving-table").hidden = !anyServing;
    document.getElementById("serving-empty").hidden = anyServing;

    var calls = document.getElementById("last-called");
    calls.replaceChildren.apply(calls, (data.last_called || []).map(function (call) {
      var li = el("li");
      li.dataset.key = keyOf(call);
      var number = el("span", "number", call.number);
      number.dir = "ltr";
      var arrow = el("span", "arrow", board.dataset.arrow);
      arrow.setAttribute("aria-hidden", "true");
      li.append(number, " ", arrow, " ", el("span", "counter", fill(board.dataset.counter, call)));
      return li;
    }));
    document.getElementById("calls-empty").hidden = (data.last_called || []).length > 0;

    var waiting = document.getElementById("waiting");
    waiting.replaceChildren.apply(waiting, (data.waiting || []).map(function (line) {
      var tr = el("tr");
      var minutes = line.estimated_wait_minutes;
      tr.append(el("td", "", lang === "ar" ? line.name_ar : line.name_en), el("td", "count", String(line.count)),
                el("td", "wait", minutes ? fill(board.dataset.minutes, {minutes: minutes}) : board.dataset.noWait));
      return tr;
    }));
  }

  // -- new calls: flash, chime, voice ------------------------------------------------------------------------
  function newCalls(data) {
    var fresh = (data.last_called || []).filter(function (call) { return !seen[keyOf(call)]; });
    (data.last_called || []).forEach(function (call) { seen[keyOf(call)] = true; });
    return fresh.slice(0, ANNOUNCE_AT_MOST).reverse();  // oldest first
  }

  var flashTimer = null;
  function flash(call) {
    var box = document.getElementById("flash");
    document.getElementById("flash-number").textContent = call.number;
    document.getElementById("flash-counter").textContent = fill(board.dataset.counter, call);
    box.hidden = false;
    box.classList.remove("flashing");
    void box.offsetWidth;  // restart the animation
    box.classList.add("flashing");
    Array.prototype.forEach.call(document.querySelectorAll("#last-called li"), function (li) {
      if (li.dataset.key === keyOf(call)) { li.classList.add("new"); }
    });
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () { box.hidden = true; }, FLASH_MS);
  }

  var audio = null;
  function audioContext() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!audio && Context) { audio = new Context(); }
    return audio;
  }
  function chime() {  // two soft bell tones, generated (no sound file)
    var ctx = audioContext();
    if (!ctx || ctx.state !== "running") { return; }
    [[784, 0], [1047, 0.28]].forEach(function (tone) {
      var osc = ctx.createOscillator(), gain = ctx.createGain(), at = ctx.currentTime + tone[1];
      osc.type = "sine";
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.5, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 1.2);
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 1.3);
    });
  }
  function say(call) {
    if (!window.speechSynthesis || !window.SpeechSynthesisUtterance) { return; }
    [["ar", "ar-SA"], ["en", "en-GB"]].forEach(function (pair) {
      var utterance = new SpeechSynthesisUtterance(SAY[pair[0]](call));
      utterance.lang = pair[1];
      utterance.rate = 0.9;
      window.speechSynthesis.speak(utterance);  // queued: Arabic, then English, then the next call
    });
  }
  function announce(call) {
    flash(call);
    chime();
    document.getElementById("announcer").textContent = fill(board.dataset.call, call);
    setTimeout(function () { say(call); }, 900);  // after the chime
  }

  // Browsers start sound only after a person touched the page (a TV in kiosk mode is started with autoplay
  // allowed): until then a button offers it.
  var soundButton = document.getElementById("sound");
  function offerSound() {
    var ctx = audioContext();
    soundButton.hidden = !ctx || ctx.state === "running";
  }
  soundButton.addEventListener("click", function () {
    var ctx = audioContext();
    if (ctx) { ctx.resume().then(offerSound, offerSound); }
    if (window.speechSynthesis) { window.speechSynthesis.speak(new SpeechSynthesisUtterance("")); }
  });
  var ctx = audioContext();
  if (ctx && ctx.state !== "running") { ctx.resume().then(offerSound, offerSound); }
  offerSound();

  // -- the clock: the suite's time, never the screen's own ---------------------------------------------------
  // The page is served with the suite's time (data-server-now) and every message of the stream carries it
  // (`now`): the clock keeps the offset between that time and the browser's monotonic clock (performance.now(),
  // which a TV's wrong or jumping wall clock does not move) and ticks with it, at the suite's speed.
  var clock = document.getElementById("clock");
  var speed = parseFloat(clock.dataset.speed);
  if (!(speed > 0)) { speed = 1; }
  var anchor = null;                 // {server: the suite's time in ms, at: performance.now() when it was true}
  function sync(iso, at) {
    var server = Date.parse(iso || "");
    if (!isNaN(server)) { anchor = {server: server, at: at === undefined ? performance.now() : at}; }
  }
  function serverNow() {
    return anchor ? new Date(anchor.server + (performance.now() - anchor.at) * speed) : null;
  }
  var navigation = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
  sync(clock.dataset.serverNow, navigation && navigation.responseStart > 0 ? navigation.responseStart : undefined);
  var format = new Intl.DateTimeFormat(lang === "ar" ? "ar-BH-u-nu-latn" : "en-GB",
                                       {hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "Asia/Bahrain"});
  function tick() {
    var now = serverNow();
    if (!now) { return; }        // keep the time the page was served with until the stream says it
    var text = format.format(now);
    if (clock.textContent !== text) { clock.textContent = text; }
    clock.setAttribute("datetime", now.toISOString());
  }
  tick();
  setInterval(tick, Math.max(250, Math.min(1000, 1000 / speed)));

  // -- still paired? -----------------------------------------------------------------------------------------
  // The stream is public: only this check tells an open screen that its device token was revoked or has expired.
  // Asked every couple of minutes (data-pairing-check, in seconds) and each time the stream comes back. Refused
  // (401, 403): the page is loaded again, and says why. Anything else (503: the issuer's keys are out of reach;
  // the server down; no network): the board stays, and the next check asks again.
  var pairingUrl = board.dataset.paired;
  var pairingEvery = Math.max(2, parseInt(board.dataset.pairingCheck, 10) || 120) * 1000;
  var checking = false;
  function checkPairing() {
    if (!pairingUrl || checking || !window.fetch) { return; }
    checking = true;
    fetch(pairingUrl, {credentials: "same-origin", cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (answer) {
        if (answer.status === 401 || answer.status === 403) { window.location.reload(); }
      }, function () { /* out of reach: the stream's watchdog shows it */ })
      .then(function () { checking = false; });
  }
  setInterval(checkPairing, pairingEvery);

  // -- the stream, and coming back after an outage --------------------------------------------------------
  var source = null, lastHeard = performance.now(), retryDelay = 2000, lost = false;
  var connection = document.getElementById("connection");
  function heard() { lastHeard = performance.now(); }  // (not the wall clock: a TV's may jump)

  function connect() {
    if (source) { source.close(); }
    heard();
    source = new EventSource(board.dataset.stream);
    source.onopen = function () {
      heard();
      retryDelay = 2000;
      connection.hidden = true;
      if (lost) { lost = false; checkPairing(); }  // back after an outage: still paired?
    };
    source.onmessage = function (message) {
      heard();
      connection.hidden = true;
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data.now) { sync(data.now); tick(); }
      var calls = newCalls(data);
      draw(data);
      calls.forEach(function (call, i) { setTimeout(function () { announce(call); }, i * 4500); });
    };
    source.addEventListener("ping", function (message) {
      heard();
      try { var data = JSON.parse(message.data); if (data.now) { sync(data.now); tick(); } } catch (e) { /* a bare beat */ }
    });
    source.onerror = function () {
      lost = true;
      connection.hidden = false;
      if (source.readyState === EventSource.CLOSED) {  // the server answered but not with a stream: we retry
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }  // else the browser reconnects by itself after `retry`
    };
  }
  setInterval(function () {
    if (performance.now() - lastHeard > WATCHDOG_MS) { lost = true; connection.hidden = false; connect(); }
  }, 5000);
  connect();
})();
