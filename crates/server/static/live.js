// calsync live pages: a progressive enhancement, the pages work without it.
// - Listens to /api/calendar/events/stream/ (Server-Sent Events) and, when the
//   user's events or sync status change, fetches the page again and swaps its
//   live region (#live), keeping focus and open <details> where they were.
// - Shows "Live" / "Offline" in the navigation; reconnects with backoff.
// - Calendar switches and colours save at once with fetch (X-CSRF-Token).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  var live = document.getElementById("live");
  var indicator = document.getElementById("live-status");
  var flash = document.getElementById("flash");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  // The outcome of a connect round trip (?connected=, ?error=) is shown once:
  // a reload or a bookmark must not repeat it.
  if (/[?&](connected|error)=/.test(location.search) && window.history.replaceState) {
    history.replaceState(null, "", location.pathname + location.hash);
  }

  function say(text, ok) {
    if (!flash) return;
    var p = document.createElement("p");
    p.className = "notice " + (ok ? "ok" : "error");
    p.setAttribute("role", ok ? "status" : "alert");
    p.textContent = text;
    flash.replaceChildren(p);
  }

  function setIndicator(state) {
    if (!indicator) return;
    indicator.hidden = false;
    indicator.className = "live-status " + (state === "on" ? "on" : "off");
    indicator.textContent = state === "on" ? "Live" : "Offline, reconnecting…";
  }

  // ---- Refreshing the live region -------------------------------------
  var timer = null;
  var running = false;
  var again = false;

  function schedule(delay) {
    if (!live) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, delay === undefined ? 25 : delay);
  }

  function busyEditing() {
    var el = document.activeElement;
    // A colour picker or text field being edited inside the region would
    // lose its state if swapped now: try again shortly.
    return el && live.contains(el) && el.tagName === "INPUT" &&
      (el.type === "color" || el.type === "text");
  }

  function refresh() {
    if (running) { again = true; return; }
    if (busyEditing()) { schedule(1000); return; }
    running = true;
    fetch(location.pathname + location.search, {
      credentials: "same-origin",
      headers: { "Accept": "text/html" },
      cache: "no-store"
    }).then(function (response) {
      if (response.redirected && /\/login/.test(response.url)) {
        location.assign(response.url);
        return null;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      if (html === null) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("live");
      if (!fresh) return;
      swap(fresh);
    }).catch(function () {
      setIndicator("off");
    }).then(function () {
      running = false;
      if (again) { again = false; schedule(); }
    });
  }

  function swap(fresh) {
    var active = document.activeElement;
    var focusId = active && live.contains(active) ? active.id : "";
    var open = [];
    live.querySelectorAll("details[open][id]").forEach(function (d) { open.push(d.id); });
    live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes));
    open.forEach(function (id) {
      var d = document.getElementById(id);
      if (d) d.open = true;
    });
    if (focusId) {
      var el = document.getElementById(focusId);
      if (el) el.focus({ preventScroll: true });
    }
    live.dispatchEvent(new CustomEvent("calsync:updated", { bubbles: true }));
  }

  // ---- The event stream -------------------------------------------------
  var backoff = 1000;
  var source = null;
  function connect() {
    if (!live || !window.EventSource || source) return;
    source = new EventSource("/api/calendar/events/stream/");
    source.addEventListener("ready", function () {
      backoff = 1000;
      setIndicator("on");
      // Changes made while we were not listening are caught up here.
      schedule(0);
    });
    source.addEventListener("change", function () { schedule(); });
    source.addEventListener("resync", function () { schedule(0); });
    source.onerror = function () {
      setIndicator("off");
      if (source && source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. the server answered an error): retry
        // ourselves, waiting longer each time.
        source = null;
        // A refresh tells an ended session (it lands on the login form) from
        // a server that is away (it fails and the indicator stays offline).
        schedule(0);
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 60000);
      }
    };
  }
  function disconnect() {
    if (source) { source.close(); source = null; }
  }
  connect();
  // A page kept in the back/forward cache must not hold its stream open:
  // browsers allow few connections per host, and a held one stalls the
  // next pages. Reopen (and catch up) when the page is shown again.
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) connect();
  });
  if (live && live.getAttribute("data-live") === "settings") {
    // Keeps "synced N minutes ago" true while the page stays open.
    setInterval(function () { if (!document.hidden) schedule(); }, 60000);
  }

  // ---- Calendar switches and colours ------------------------------------
  function saveCalendar(form, body) {
    var id = form.getAttribute("data-calendar-id");
    return fetch("/api/calendar/calendars/" + encodeURIComponent(id) + "/", {
      method: "PATCH",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          var message = json && json.error && json.error.message;
          throw new Error(message || "saving failed (HTTP " + response.status + ")");
        }
        return json;
      });
    }).then(function (calendar) {
      var item = form.closest(".calendar");
      if (item) item.setAttribute("data-enabled", String(calendar.enabled));
      say(calendar.name + (calendar.enabled ? " is shown" : " is hidden") + " on the Dashboard.", true);
      schedule();
    }).catch(function (err) {
      say("Could not save: " + err.message + ". Reload the page and try again.", false);
      schedule(0);
    });
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    var form = input.closest && input.closest("form.calendar-form");
    if (!form) return;
    if (input.name === "enabled") saveCalendar(form, { enabled: input.checked });
    else if (input.name === "color") saveCalendar(form, { color: input.value });
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("calendar-form")) return;
    event.preventDefault();
    saveCalendar(form, {
      enabled: form.elements.enabled.checked,
      color: form.elements.color.value
    });
  });
})();
