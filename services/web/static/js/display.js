/* The waiting-room display, live: the board from the branch's Server-Sent Events stream, a flash, a chime and a
   voice (Arabic, then English) for each new call, and a stream that comes back by itself after an outage.
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
  function draw(data) {
    document.getElementById("closed").hidden = !data.closed;

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

  // -- the stream, and coming back after an outage --------------------------------------------------------
  var source = null, lastHeard = Date.now(), retryDelay = 2000;
  var connection = document.getElementById("connection");
  function heard() { lastHeard = Date.now(); }

  function connect() {
    if (source) { source.close(); }
    heard();
    source = new EventSource(board.dataset.stream);
    source.onopen = function () { heard(); retryDelay = 2000; connection.hidden = true; };
    source.onmessage = function (message) {
      heard();
      connection.hidden = true;
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      var calls = newCalls(data);
      draw(data);
      calls.forEach(function (call, i) { setTimeout(function () { announce(call); }, i * 4500); });
    };
    source.addEventListener("ping", heard);
    source.onerror = function () {
      connection.hidden = false;
      if (source.readyState === EventSource.CLOSED) {  // the server answered but not with a stream: we retry
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }  // else the browser reconnects by itself after `retry`
    };
  }
  setInterval(function () {
    if (Date.now() - lastHeard > WATCHDOG_MS) { connection.hidden = false; connect(); }
  }, 5000);
  connect();

  // -- the clock ---------------------------------------------------------------------------------------------
  var clock = document.getElementById("clock");
  var format = new Intl.DateTimeFormat(lang === "ar" ? "ar-BH-u-nu-latn" : "en-GB",
                                       {hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "Asia/Bahrain"});
  function tick() { clock.textContent = format.format(new Date()); }
  tick();
  setInterval(tick, 1000);
})();
