// The collector's page: one script, no framework and no build step, so the
// collector can embed it and a switch management network without internet
// can load it. Every value from the network reaches the document through
// textContent or setAttribute, never as HTML, because agent and interface
// names come from switches and may be hostile.
"use strict";

(function () {
  var SVG_NS = "http://www.w3.org/2000/svg";
  var main = document.getElementById("main");

  // Each route bumps `generation`; a poll or fetch that finishes after the
  // view changed sees a stale number and drops its answer.
  var generation = 0;
  var timers = [];

  // ---- building elements -------------------------------------------------

  // el("td", {"data-col": "agent"}, [text, child]) — attributes through
  // setAttribute, strings as text nodes.
  function el(tag, attrs, children) {
    return build(document.createElement(tag), attrs, children);
  }

  function svg(tag, attrs, children) {
    return build(document.createElementNS(SVG_NS, tag), attrs, children);
  }

  function build(node, attrs, children) {
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    if (children === null || children === undefined) return;
    if (!Array.isArray(children)) children = [children];
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // ---- formatting --------------------------------------------------------

  function pad(n, w) {
    var s = String(n);
    while (s.length < (w || 2)) s = "0" + s;
    return s;
  }

  // "2026-12-05 10:18:29" in the browser's zone.
  function localTime(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      " " + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  function zoneName() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
    } catch (e) {
      return "local";
    }
  }

  // A <time> showing the local time, the UTC one on hover.
  function timeEl(rfc) {
    if (!rfc) return "—";
    var d = new Date(rfc);
    if (isNaN(d.getTime())) return String(rfc);
    return el("time", { datetime: rfc, title: "UTC " + d.toISOString() }, localTime(d));
  }

  function hoverTimes(rfc) {
    var d = new Date(rfc);
    if (isNaN(d.getTime())) return String(rfc);
    return localTime(d) + " " + zoneName() + " (UTC " + d.toISOString() + ")";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    var s = Number(seconds);
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " m " + Math.round(s - m * 60) + " s";
    var h = Math.floor(m / 60);
    if (h < 48) return h + " h " + (m - h * 60) + " m";
    var d = Math.floor(h / 24);
    return d + " d " + (h - d * 24) + " h";
  }

  function percent(a) {
    if (a === null || a === undefined || isNaN(a)) return "—";
    var p = Number(a) * 100;
    if (p === 100) return "100 %";
    // Never round an outage up to a clean 100 %.
    return (p >= 99.99 ? Math.floor(p * 1000) / 1000 : Math.floor(p * 100) / 100) + " %";
  }

  function count(n) {
    return n === null || n === undefined ? "—" : String(n);
  }

  // ---- the API -----------------------------------------------------------

  function ApiError(status, message, body) {
    this.status = status;
    this.message = message;
    this.body = body;
  }

  function signinUrl() {
    return "/signin?next=" + encodeURIComponent(location.pathname + location.search);
  }

  // fetch + JSON; a 401 sends the page to sign-in, any other failure is an
  // ApiError whose message is the server's `error`.
  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET" && method !== "HEAD") opts.headers["X-Hopwatch-Csrf"] = "1";
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (res) {
      if (res.status === 401 && path !== "/api/v1/session") {
        location.assign(signinUrl());
        return new Promise(function () {});
      }
      if (res.status === 204) return null;
      return res.text().then(function (text) {
        var json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch (e) {
          json = null;
        }
        if (!res.ok) {
          var msg = json && json.error ? json.error : res.status + " " + (res.statusText || "error");
          throw new ApiError(res.status, msg, json);
        }
        return json;
      });
    }, function () {
      throw new ApiError(0, "the collector cannot be reached", null);
    });
  }

  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v === null || v === undefined || v === "") return;
      parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(v));
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  function params() {
    var out = {};
    new URLSearchParams(location.search).forEach(function (v, k) {
      out[k] = v;
    });
    return out;
  }

  // ---- routing -----------------------------------------------------------

  var routes = {
    "/signin": { view: viewSignin, title: "Sign in" },
    "/fleet": { view: viewFleet, nav: "fleet", title: "Fleet" },
    "/alerts": { view: viewAlerts, nav: "alerts", title: "Alerts" },
    "/links": { view: viewChanges, nav: "links", title: "Link changes" },
    "/links/timeline": { view: viewTimeline, nav: "links", title: "Link timeline" },
    "/links/worst": { view: viewWorst, nav: "worst", title: "Worst interfaces" },
    "/trace": { view: viewTrace, nav: "trace", title: "Trace" }
  };

  // Changes the view; `focus` names the control that keeps the keyboard's
  // place in the new view (the old one is gone).
  function go(url, replace, focus) {
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    route();
    var target = focus ? document.querySelector(focus) : null;
    if (target) target.focus();
  }

  function route() {
    generation++;
    timers.forEach(clearTimeout);
    timers = [];
    var path = location.pathname.replace(/\/+$/, "") || "/fleet";
    var r = routes[path];
    var signedIn = path !== "/signin";
    document.getElementById("nav").hidden = !signedIn;
    document.getElementById("signout").hidden = !signedIn;
    document.querySelectorAll("a[data-nav]").forEach(function (a) {
      if (r && a.getAttribute("data-nav") === r.nav) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    clear(main);
    document.title = (r ? r.title : "Not found") + " · hopwatch";
    if (!r) {
      main.appendChild(el("h1", null, "Not found"));
      main.appendChild(el("p", null, [el("a", { href: "/fleet" }, "Go to the fleet")]));
      return;
    }
    r.view(params(), generation);
  }

  function current(gen) {
    return gen === generation;
  }

  function later(gen, fn, ms) {
    if (!current(gen)) return;
    var id = setTimeout(function () {
      timers = timers.filter(function (t) {
        return t !== id;
      });
      if (current(gen)) fn();
    }, ms);
    timers.push(id);
  }

  // Same-origin links without modifiers stay in the page.
  document.addEventListener("click", function (e) {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    var a = e.target.closest ? e.target.closest("a[href]") : null;
    if (!a || a.target || a.hasAttribute("download")) return;
    var url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.indexOf("/api/") === 0) return;
    if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
    e.preventDefault();
    go(url.pathname + url.search);
    main.focus();
  });

  window.addEventListener("popstate", route);

  document.getElementById("signout").addEventListener("click", function () {
    api("DELETE", "/api/v1/session").then(null, function () {}).then(function () {
      location.assign("/signin");
    });
  });

  function checkSession() {
    api("GET", "/api/v1/session").then(function (s) {
      var banners = document.getElementById("banners");
      var old = document.getElementById("insecure-banner");
      if (s && s.insecure && !old) {
        banners.appendChild(el("div", { id: "insecure-banner", class: "banner warn", role: "alert" },
          "This page is served over plain HTTP on a network address: the token and the session cookie cross the network in clear. Set [http] tls_cert and tls_key."));
      } else if (s && !s.insecure && old) {
        old.remove();
      }
    }, function (err) {
      if (err.status === 401) location.assign(signinUrl());
    });
  }

  // ---- shared pieces -----------------------------------------------------

  function heading(text, extra) {
    return el("div", { class: "page-head" }, [el("h1", null, text)].concat(extra || []));
  }

  function errorBox(id) {
    return el("p", { id: id, class: "error", role: "alert", hidden: true });
  }

  function showError(node, err) {
    node.textContent = err && err.message ? err.message : String(err);
    node.hidden = false;
  }

  function hideError(node) {
    node.textContent = "";
    node.hidden = true;
  }

  function table(id, columns) {
    var thead = el("thead", null, el("tr", null, columns.map(function (c) {
      return el("th", { scope: "col" }, c);
    })));
    var tbody = el("tbody");
    var t = el("table", { id: id }, [thead, tbody]);
    return { wrap: el("div", { class: "table-wrap" }, t), table: t, body: tbody, columns: columns };
  }

  // Each cell names its column, so a phone can show a row as a labelled card.
  function labelled(row, columns) {
    Array.prototype.forEach.call(row.children, function (c, i) {
      if (columns[i]) c.setAttribute("data-label", columns[i]);
    });
    return row;
  }

  function cell(col, content, cls) {
    return el("td", { "data-col": col, class: cls || null }, content);
  }

  function emptyRow(tbody, span, text) {
    tbody.appendChild(el("tr", { class: "empty" }, el("td", { colspan: span }, text)));
  }

  function field(label, input) {
    return el("label", { class: "field" }, [el("span", null, label), input]);
  }

  function timelineHref(agent, iface, windowName) {
    return "/links/timeline" + query({ agent: agent, interface: iface, window: windowName || "24h" });
  }

  // ---- sign-in -----------------------------------------------------------

  function safeNext(next) {
    if (!next || next.charAt(0) !== "/" || next.charAt(1) === "/" || next.charAt(1) === "\\") return "/fleet";
    if (next.indexOf("/signin") === 0) return "/fleet";
    return next;
  }

  function viewSignin(p) {
    var token = el("input", { id: "signin-token", name: "token", type: "password", autocomplete: "current-password", required: true });
    var error = errorBox("signin-error");
    var submit = el("button", { id: "signin-submit", type: "submit" }, "Sign in");
    // POST, so even a submit the script does not catch keeps the token out of the URL.
    var form = el("form", { id: "signin-form", class: "card signin", method: "post" }, [
      el("h1", null, "Sign in"),
      el("p", null, "Use the collector's API token (in <data_dir>/api-token, or the config's api_tokens)."),
      field("API token", token),
      error,
      submit
    ]);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      hideError(error);
      submit.disabled = true;
      api("POST", "/api/v1/session", { token: token.value }).then(function () {
        location.assign(safeNext(p.next));
      }, function (err) {
        submit.disabled = false;
        showError(error, err.status === 401 ? "That token is not accepted: " + err.message : err);
        token.select();
      });
    });
    main.appendChild(form);
    token.focus();
  }

  // ---- fleet -------------------------------------------------------------

  function viewFleet(p, gen) {
    var updated = el("span", { id: "fleet-updated", class: "muted", "aria-live": "off" }, "loading…");
    var totals = el("p", { class: "totals" });
    var error = errorBox("fleet-error");
    var t = table("fleet-table", ["Agent", "State", "Version", "Last seen", "Firing", "Links down", "Links"]);
    main.appendChild(heading("Fleet", [updated]));
    main.appendChild(totals);
    main.appendChild(error);
    main.appendChild(t.wrap);
    var rows = Object.create(null);

    function render(f) {
      hideError(error);
      totals.textContent = "";
      append(totals, [
        String((f.agents || []).length) + " agents · ",
        el("a", { href: "/alerts?state=firing", class: f.firing ? "bad" : null }, count(f.firing) + " alerts firing"),
        " · ",
        el("a", { href: "/links?minutes=60", class: f.links_down ? "bad" : null }, count(f.links_down) + " links down")
      ]);
      var seen = Object.create(null);
      (f.agents || []).forEach(function (a, i) {
        seen[a.agent] = true;
        var row = rows[a.agent];
        if (!row) {
          row = el("tr", { "data-agent": a.agent });
          rows[a.agent] = row;
        }
        // A cell is redrawn only when its value changed, so a focused link
        // keeps its focus through the polls.
        var cells = [
          ["agent", a.agent, function () {
            return el("a", { href: "/alerts?agent=" + encodeURIComponent(a.agent) }, a.agent);
          }],
          ["state", a.state, function () {
            return el("span", { class: "pill state-" + a.state }, a.state);
          }, null],
          ["version", a.version || "—"],
          ["last_seen", a.last_seen, function () {
            return timeEl(a.last_seen);
          }],
          ["firing", count(a.firing), null, a.firing ? "num bad" : "num"],
          ["links_down", count(a.links_down), null, a.links_down ? "num bad" : "num"],
          ["links_total", count(a.links_total), null, "num"]
        ];
        cells.forEach(function (c, j) {
          var td = row.children[j];
          if (!td) {
            td = el("td", { "data-col": c[0], "data-label": t.columns[j] });
            row.appendChild(td);
          }
          var value = String(c[1]);
          if (td.getAttribute("data-value") === value && td.className === (c[3] || "")) return;
          td.setAttribute("data-value", value);
          td.className = c[3] || "";
          clear(td);
          append(td, c[2] ? c[2]() : value);
        });
        if (t.body.children[i] !== row) t.body.insertBefore(row, t.body.children[i] || null);
      });
      Object.keys(rows).forEach(function (name) {
        if (!seen[name]) {
          rows[name].remove();
          delete rows[name];
        }
      });
      var empty = t.body.querySelector("tr.empty");
      if ((f.agents || []).length === 0 && !empty) emptyRow(t.body, 7, "No agent has reported to this collector yet.");
      if ((f.agents || []).length > 0 && empty) empty.remove();
      updated.textContent = "updated " + localTime(new Date());
      updated.setAttribute("title", "UTC " + new Date().toISOString() + (f.now ? " · collector clock " + f.now : ""));
    }

    function poll() {
      api("GET", "/api/v1/fleet").then(function (f) {
        if (!current(gen)) return;
        render(f || {});
        later(gen, poll, 1000);
      }, function (err) {
        if (!current(gen)) return;
        showError(error, err);
        later(gen, poll, 2000);
      });
    }
    poll();
  }

  // ---- alerts ------------------------------------------------------------

  // A rule's labels as text, one `name=value` after another.
  function labelsEl(labels) {
    var names = Object.keys(labels || {}).sort();
    if (!names.length) return null;
    return el("div", { class: "labels muted" }, names.map(function (k) { return k + "=" + labels[k]; }).join(" \u00b7 "));
  }

  function viewAlerts(p, gen) {
    var form = el("form", { id: "alerts-filter", class: "filters" });
    var inputs = {
      agent: el("input", { name: "agent", type: "text", value: p.agent || "" }),
      interface: el("input", { name: "interface", type: "text", value: p.interface || "" }),
      rule: el("input", { name: "rule", type: "text", value: p.rule || "" }),
      severity: select("severity", [["", "any"], ["info", "info"], ["warning", "warning"], ["critical", "critical"]], p.severity || ""),
      since: el("input", { name: "since", type: "text", value: p.since || "", placeholder: "24h", title: "A duration back from now (10m, 24h, 30d) or an RFC 3339 time" }),
      state: select("state", [["all", "firing and resolved"], ["firing", "firing"], ["resolved", "resolved"]], p.state || "all")
    };
    append(form, [
      field("Agent", inputs.agent), field("Interface", inputs.interface), field("Rule", inputs.rule),
      field("Severity", inputs.severity), field("Since", inputs.since), field("State", inputs.state),
      el("button", { type: "submit" }, "Filter"),
      el("a", { href: "/alerts", class: "button-link" }, "Clear")
    ]);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var q = {};
      Object.keys(inputs).forEach(function (k) {
        q[k] = inputs[k].value.trim();
      });
      if (q.state === "all") q.state = "";
      go("/alerts" + query(q), false, "#alerts-filter button[type=submit]");
    });
    var error = errorBox("alerts-error");
    var status = el("p", { class: "muted", id: "alerts-status" });
    var t = table("alerts-table", ["Agent", "Interface", "Rule", "Severity", "Fired", "Cleared", "Duration", "Message"]);
    main.appendChild(heading("Alerts"));
    main.appendChild(form);
    main.appendChild(error);
    main.appendChild(status);
    main.appendChild(t.wrap);

    var state = p.state || "all";
    var url = "/api/v1/alerts" + query({
      state: state, since: p.since || (state === "firing" ? "" : "24h"), agent: p.agent, interface: p.interface, rule: p.rule, limit: 1000
    });

    var lastKey = null, statusBase = "";

    // A list unchanged since the last poll only moves its firing durations
    // on, so the keyboard's focus in the table survives the refresh.
    function render(list) {
      var now = Date.now();
      var key = JSON.stringify(list);
      if (key === lastKey) {
        t.body.querySelectorAll("tr[data-state=firing]").forEach(function (row) {
          var fired = Date.parse(row.getAttribute("data-fired"));
          if (!isNaN(fired)) row.querySelector("td[data-col=duration]").textContent = duration(Math.max(0, (now - fired) / 1000)) + " so far";
        });
        return;
      }
      lastKey = key;
      var shown = (list || []).filter(function (a) {
        return !p.severity || a.severity === p.severity;
      });
      // Firing first, each group newest first as the API orders them.
      shown = shown.filter(function (a) { return a.state === "firing"; })
        .concat(shown.filter(function (a) { return a.state !== "firing"; }));
      clear(t.body);
      shown.forEach(function (a, i) {
        var fired = a.fired_at ? Date.parse(a.fired_at) : NaN;
        var cleared = a.resolved_at ? Date.parse(a.resolved_at) : NaN;
        var dur = isNaN(fired) ? null : ((isNaN(cleared) ? now : cleared) - fired) / 1000;
        var row = el("tr", { "data-alert": String(i), "data-state": a.state, "data-fired": a.fired_at, class: "alert-" + a.state }, [
          cell("agent", a.agent),
          cell("interface", el("a", { href: timelineHref(a.agent, a.interface) }, a.interface)),
          cell("rule", [a.rule, a.silenced ? " " : null,
            a.silenced ? el("span", { class: "pill silenced", "data-silence": a.silence || "", title: "Silenced by " + (a.silence || "a silence") + ": the agent sent it here, not to syslog" }, "silenced") : null,
            labelsEl(a.labels)]),
          cell("severity", el("span", { class: "pill sev-" + a.severity }, a.severity)),
          cell("fired", timeEl(a.fired_at)),
          cell("cleared", a.state === "firing" ? el("span", { class: "muted" }, "still firing") : timeEl(a.resolved_at)),
          cell("duration", dur === null ? "—" : duration(Math.max(0, dur)) + (a.state === "firing" ? " so far" : "")),
          cell("message", a.state === "firing" ? a.message : (a.resolved_message || a.message), "message")
        ]);
        t.body.appendChild(labelled(row, t.columns));
      });
      if (!shown.length) emptyRow(t.body, 8, "No alerts match.");
      var firing = shown.filter(function (a) { return a.state === "firing"; }).length;
      statusBase = firing + " firing, " + (shown.length - firing) + " resolved";
    }

    function poll() {
      api("GET", url).then(function (list) {
        if (!current(gen)) return;
        hideError(error);
        render(list);
        status.textContent = statusBase + " · updated " + localTime(new Date());
        later(gen, poll, 5000);
      }, function (err) {
        if (!current(gen)) return;
        showError(error, err);
        if (err.status !== 400) later(gen, poll, 5000);
      });
    }
    poll();
  }

  function select(name, options, value) {
    var s = el("select", { name: name });
    options.forEach(function (o) {
      var opt = el("option", { value: o[0] }, o[1]);
      if (o[0] === value) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }

  // ---- links: recent changes ----------------------------------------------

  function viewChanges(p, gen) {
    var minutes = /^\d+$/.test(p.minutes || "") && Number(p.minutes) > 0 ? Number(p.minutes) : 60;
    var input = el("input", { name: "minutes", type: "number", min: "1", max: "525600", value: String(minutes) });
    var agent = el("input", { name: "agent", type: "text", value: p.agent || "" });
    var form = el("form", { id: "changes-filter", class: "filters" }, [
      field("Last minutes", input), field("Agent", agent), el("button", { type: "submit" }, "Show")
    ]);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      go("/links" + query({ minutes: input.value.trim(), agent: agent.value.trim() }), false, "#changes-filter button[type=submit]");
    });
    var error = errorBox("changes-error");
    var status = el("p", { class: "muted", id: "changes-status" });
    var t = table("changes-table", ["When", "Agent", "Interface", "Change", "Down for"]);
    main.appendChild(heading("Link changes", [el("a", { href: "/links/worst?window=30d" }, "Worst interfaces")]));
    main.appendChild(form);
    main.appendChild(error);
    main.appendChild(status);
    main.appendChild(t.wrap);
    var url = "/api/v1/links/changes" + query({ since: minutes + "m", agent: p.agent });

    var lastKey = null, statusBase = "";

    function render(c) {
      var key = JSON.stringify(c);
      if (key === lastKey) return;
      lastKey = key;
      var list = [];
      (c.went_down || []).forEach(function (d) {
        list.push({ kind: "went_down", at: d.at, agent: d.agent, interface: d.interface, state: d.state });
      });
      (c.came_up || []).forEach(function (u) {
        list.push({ kind: "came_up", at: u.at, agent: u.agent, interface: u.interface, down: u.down_seconds });
      });
      list.sort(function (a, b) {
        return Date.parse(b.at) - Date.parse(a.at);
      });
      clear(t.body);
      list.forEach(function (ch, i) {
        var what = ch.kind === "came_up" ? "came up" : ch.state === "admin_down" ? "shut down (admin)" : "went down";
        t.body.appendChild(labelled(el("tr", { "data-change": String(i), "data-kind": ch.kind }, [
          cell("at", timeEl(ch.at)),
          cell("agent", ch.agent),
          cell("interface", el("a", { href: timelineHref(ch.agent, ch.interface) }, ch.interface)),
          cell("change", el("span", { class: "pill kind-" + ch.kind + (ch.state === "admin_down" ? " state-admin_down" : "") }, what)),
          cell("down", ch.kind === "came_up" ? duration(ch.down) : "", "num")
        ]), t.columns));
      });
      if (!list.length) emptyRow(t.body, 5, "No link went down or came up in the last " + minutes + " minutes.");
      statusBase = list.length + " changes in the last " + minutes + " minutes";
    }

    function poll() {
      api("GET", url).then(function (c) {
        if (!current(gen)) return;
        hideError(error);
        render(c || {});
        status.textContent = statusBase + " · updated " + localTime(new Date());
        later(gen, poll, 2000);
      }, function (err) {
        if (!current(gen)) return;
        showError(error, err);
        if (err.status !== 400) later(gen, poll, 5000);
      });
    }
    poll();
  }

  // ---- links: one interface's timeline ------------------------------------

  var WINDOWS = ["1h", "24h", "7d", "30d"];

  // "2026-12-05T10:00" for a datetime-local input, in the browser's zone.
  function localInput(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function windowButtons(active, onPick) {
    return el("div", { class: "windows", role: "group", "aria-label": "Window" }, WINDOWS.map(function (w) {
      var b = el("button", { type: "button", "data-window": w, "aria-pressed": w === active ? "true" : "false" }, w);
      b.addEventListener("click", function () {
        onPick(w, 'button[data-window="' + w + '"]');
      });
      return b;
    }));
  }

  function viewTimeline(p, gen) {
    var custom = !!(p.since || p.until);
    var win = custom ? null : (WINDOWS.indexOf(p.window) >= 0 ? p.window : "24h");
    var base = { agent: p.agent, interface: p.interface };
    var title = el("h1", null, ["Timeline ", el("span", { class: "subject" }, (p.agent || "?") + " " + (p.interface || "?"))]);
    main.appendChild(el("div", { class: "page-head" }, [title, el("a", { href: "/links?minutes=60" }, "Recent changes")]));
    if (!p.agent || !p.interface) {
      main.appendChild(el("p", { class: "error" }, "Pick an interface from Link changes, Worst or Alerts: this view needs agent and interface in its address."));
      return;
    }
    var buttons = windowButtons(win, function (w, focus) {
      go("/links/timeline" + query({ agent: p.agent, interface: p.interface, window: w }), false, focus);
    });
    var sinceIn = el("input", { name: "since", type: "datetime-local", required: true });
    var untilIn = el("input", { name: "until", type: "datetime-local" });
    if (p.since && !isNaN(Date.parse(p.since))) sinceIn.value = localInput(new Date(p.since));
    if (p.until && !isNaN(Date.parse(p.until))) untilIn.value = localInput(new Date(p.until));
    var customForm = el("form", { id: "timeline-custom", class: "inline-form" }, [
      field("From (" + zoneName() + ")", sinceIn), field("Until (empty: now)", untilIn),
      el("button", { type: "submit" }, "Show")
    ]);
    customForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var since = new Date(sinceIn.value);
      var until = untilIn.value ? new Date(untilIn.value) : null;
      if (isNaN(since.getTime())) return;
      go("/links/timeline" + query({
        agent: p.agent, interface: p.interface, since: since.toISOString(), until: until && !isNaN(until.getTime()) ? until.toISOString() : ""
      }), false, "#timeline-custom button[type=submit]");
    });
    var error = errorBox("timeline-error");
    var box = el("div", { id: "timeline", class: "timeline" });
    var detail = el("p", { id: "timeline-detail", class: "detail", "aria-live": "polite" }, "Hover or focus (Tab) a segment for its exact times.");
    var show = function (e) {
      var r = e.target;
      if (r && r.getAttribute && r.hasAttribute("data-state")) {
        var t = r.querySelector("title");
        detail.textContent = t ? t.textContent : "";
      }
    };
    box.addEventListener("mouseover", show);
    box.addEventListener("focusin", show);
    var stats = el("dl", { id: "timeline-stats", class: "stats" });
    main.appendChild(el("div", { class: "controls" }, [buttons, customForm]));
    main.appendChild(error);
    main.appendChild(box);
    main.appendChild(detail);
    main.appendChild(stats);
    main.appendChild(el("p", { class: "legend" }, ["up", "down", "admin_down", "unknown", "mixed"].map(function (s) {
      return el("span", { class: "key" }, [el("span", { class: "swatch seg-" + s }), s === "mixed" ? "many short changes" : s.replace("_", " ")]);
    })));

    var width = Math.max(200, Math.min(4000, Math.round(box.clientWidth || 1000)));
    var url = "/api/v1/links/timeline" + query({
      agent: base.agent, interface: base.interface, since: custom ? p.since : win, until: custom ? p.until : "", width: width
    });
    api("GET", url).then(function (tl) {
      if (!current(gen)) return;
      drawTimeline(box, tl);
      fillStats(stats, tl);
    }, function (err) {
      if (current(gen)) showError(error, err);
    });
  }

  function segmentTitle(seg) {
    var from = Date.parse(seg.from), to = Date.parse(seg.to);
    var lines = [
      (seg.state === "mixed" ? "many short changes" : seg.state.replace("_", " ")) + " for " + duration((to - from) / 1000) +
        (seg.state === "mixed" ? " (down " + duration(seg.down_seconds || 0) + ", unknown " + duration(seg.unknown_seconds || 0) + ")" : ""),
      "from " + hoverTimes(seg.from),
      "to   " + hoverTimes(seg.to)
    ];
    if (seg.carried) lines.push("began before this window: the state carried in");
    return lines.join("\n");
  }

  // Positions are percentages of the drawing's width, with no viewBox, so
  // the bar follows the page's width without stretching its labels.
  function drawTimeline(box, tl) {
    clear(box);
    var since = Date.parse(tl.since), until = Date.parse(tl.until);
    var span = Math.max(1, until - since);
    var barY = 8, barH = 44, H = 84;
    var pct = function (ms) {
      return Math.max(0, Math.min(100, (ms - since) / span * 100));
    };
    var root = svg("svg", { width: "100%", height: H, role: "img",
      "aria-label": "Link states of " + tl.agent + " " + tl.interface + " from " + hoverTimes(tl.since) + " to " + hoverTimes(tl.until) });
    root.appendChild(svg("rect", { x: 0, y: barY, width: "100%", height: barH, class: "seg-none" }, svg("title", null, "no state known")));
    (tl.segments || []).forEach(function (seg) {
      var x0 = pct(Date.parse(seg.from)), x1 = pct(Date.parse(seg.to));
      root.appendChild(svg("rect", {
        x: x0.toFixed(3) + "%", y: barY, width: Math.max(0.05, x1 - x0).toFixed(3) + "%", height: barH,
        class: "seg seg-" + seg.state + (seg.carried ? " carried" : ""),
        "data-state": seg.state, "data-from": seg.from, "data-to": seg.to, "data-carried": seg.carried ? "true" : null,
        tabindex: "0"
      }, svg("title", null, segmentTitle(seg))));
      if (seg.carried) {
        root.appendChild(svg("path", { d: "M0 " + barY + " l10 " + barH / 2 + " l-10 " + barH / 2 + " z", class: "carried-mark" },
          svg("title", null, "the state began before " + hoverTimes(tl.since))));
      }
    });
    // Five ticks in local time; UTC on hover.
    for (var i = 0; i <= 4; i++) {
      var d = new Date(since + span * i / 4);
      var tx = (i * 25) + "%";
      root.appendChild(svg("line", { x1: tx, x2: tx, y1: barY + barH, y2: barY + barH + 6, class: "tick" }));
      root.appendChild(svg("text", { x: tx, y: H - 6, class: "tick-label" + (i === 1 || i === 3 ? " minor" : ""), "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" },
        [span > 2 * 86400e3 ? localTime(d).slice(0, 16) : localTime(d).slice(5, 16), svg("title", null, "UTC " + d.toISOString())]));
    }
    box.appendChild(root);
    box.appendChild(el("p", { class: "muted range" }, ["From ", timeEl(tl.since), " to ", timeEl(tl.until), " (" + zoneName() + ")"]));
  }

  function fillStats(dl, tl) {
    clear(dl);
    var last = tl.last_outage;
    var lastText = "none";
    if (last) {
      lastText = el("span", null, [timeEl(last.from), last.to ? " for " + duration(last.seconds) : " — still down (" + duration(last.seconds) + " so far)"]);
    }
    var items = [
      ["availability", "Availability", percent(tl.availability)],
      ["outages", "Outages", count(tl.outages)],
      ["mttr", "MTTR", duration(tl.mttr_seconds)],
      ["longest", "Longest outage", duration(tl.longest_outage_seconds)],
      ["last_outage", "Last outage", lastText],
      ["down", "Down", duration(tl.down_seconds)],
      ["unknown", "Unknown (agent silent)", duration(tl.unknown_seconds)],
      ["admin_down", "Shut down (admin)", duration(tl.admin_down_seconds)]
    ];
    items.forEach(function (it) {
      dl.appendChild(el("div", { class: "stat", "data-stat": it[0] }, [el("dt", null, it[1]), el("dd", null, it[2])]));
    });
  }

  // ---- links: the worst interfaces -----------------------------------------

  function viewWorst(p, gen) {
    var win = WINDOWS.indexOf(p.window) >= 0 ? p.window : "30d";
    main.appendChild(heading("Worst interfaces", [el("a", { href: "/links?minutes=60" }, "Recent changes")]));
    main.appendChild(el("div", { class: "controls" }, windowButtons(win, function (w, focus) {
      go("/links/worst" + query({ window: w }), false, focus);
    })));
    var error = errorBox("worst-error");
    var status = el("p", { class: "muted" }, "loading…");
    var t = table("worst-table", ["Agent", "Interface", "Now", "Availability", "Outages", "Down", "MTTR", "Longest"]);
    main.appendChild(error);
    main.appendChild(status);
    main.appendChild(t.wrap);
    api("GET", "/api/v1/links/worst" + query({ since: win, limit: 100 })).then(function (w) {
      if (!current(gen)) return;
      var list = (w && w.interfaces) || [];
      list.forEach(function (it) {
        t.body.appendChild(labelled(el("tr", { "data-interface": it.interface, "data-agent": it.agent }, [
          cell("agent", it.agent),
          cell("interface", el("a", { href: timelineHref(it.agent, it.interface, win) }, it.interface)),
          cell("state", el("span", { class: "pill state-" + it.state }, String(it.state).replace("_", " "))),
          cell("availability", percent(it.availability), "num"),
          cell("outages", count(it.outages), "num"),
          cell("down", duration(it.down_seconds), "num"),
          cell("mttr", duration(it.mttr_seconds), "num"),
          cell("longest", duration(it.longest_outage_seconds), "num")
        ]), t.columns));
      });
      if (!list.length) emptyRow(t.body, 8, "No interface has a known state in this window.");
      status.textContent = "The least available first, over the last " + win + " (" + list.length + " shown).";
    }, function (err) {
      if (current(gen)) {
        status.textContent = "";
        showError(error, err);
      }
    });
  }

  // ---- trace -------------------------------------------------------------

  var TRACE_FIELDS = ["src", "dst", "proto", "sport", "dport", "vrf", "from", "sport_range"];

  function viewTrace(p, gen) {
    var inputs = {};
    var hints = {
      src: "10.1.0.10", dst: "10.2.0.10", proto: "tcp", sport: "40000", dport: "443",
      vrf: "default", from: "optional", sport_range: "40000-40999"
    };
    var labels = {
      src: "Source", dst: "Destination", proto: "Protocol", sport: "Source port", dport: "Destination port",
      vrf: "VRF", from: "From agent", sport_range: "Source port range"
    };
    var titles = {
      proto: "A name (tcp, udp, icmp, ipv6-icmp) or a protocol number",
      from: "The agent of the first switch; empty: the switch the source is attached to",
      sport_range: "With Every ECMP path: count how many source ports of this range take each path (at most 4096)"
    };
    TRACE_FIELDS.forEach(function (k) {
      inputs[k] = el("input", { name: k, type: "text", value: p[k] || "", placeholder: hints[k], title: titles[k] || null, required: k === "src" || k === "dst",
        inputmode: k === "sport" || k === "dport" ? "numeric" : null, spellcheck: "false", autocapitalize: "off" });
    });
    var reverse = el("input", { name: "reverse", type: "checkbox", value: "1" });
    var allPaths = el("input", { name: "all_paths", type: "checkbox", value: "1" });
    reverse.checked = p.reverse === "1" || p.reverse === "true";
    allPaths.checked = p.all_paths === "1" || p.all_paths === "true";
    var submit = el("button", { type: "submit" }, "Trace");
    var form = el("form", { id: "trace-form", class: "filters trace-form" },
      TRACE_FIELDS.map(function (k) {
        return field(labels[k], inputs[k]);
      }).concat([
        el("label", { class: "check" }, [reverse, "Return flow too"]),
        el("label", { class: "check" }, [allPaths, "Every ECMP path"]),
        submit
      ]));
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var q = {};
      TRACE_FIELDS.forEach(function (k) {
        q[k] = inputs[k].value.trim();
      });
      q.reverse = reverse.checked ? "1" : "";
      q.all_paths = allPaths.checked ? "1" : "";
      var url = "/trace" + query(q);
      go(url, url === location.pathname + location.search, "#trace-form button[type=submit]");
    });
    var error = errorBox("trace-error");
    var status = el("p", { class: "muted", id: "trace-status" });
    var result = el("div", { id: "trace-result" });
    main.appendChild(heading("Trace a flow across the fabric"));
    main.appendChild(form);
    main.appendChild(error);
    main.appendChild(status);
    main.appendChild(result);
    if (!p.src || !p.dst) {
      status.textContent = "Give a source and a destination; each switch's agent answers where the flow leaves it.";
      return;
    }

    var multi = allPaths.checked;
    var body = {};
    ["src", "dst", "vrf", "from"].forEach(function (k) {
      if (p[k]) body[k] = p[k];
    });
    if (p.proto) body.proto = /^\d+$/.test(p.proto) ? Number(p.proto) : p.proto;
    ["sport", "dport"].forEach(function (k) {
      if (p[k]) body[k] = /^\d+$/.test(p[k]) ? Number(p[k]) : p[k];
    });
    if (multi && p.sport_range) body.sport_range = p.sport_range;
    if (!multi && reverse.checked) body.reverse = true;
    var notes = [];
    if (multi && reverse.checked) notes.push("The return flow is traced for a single path only: untick Every ECMP path to see it.");
    if (!multi && p.sport_range) notes.push("A source port range counts flows per path: tick Every ECMP path to use it.");
    submit.disabled = true;
    status.textContent = "Asking the switches…";
    api("POST", multi ? "/api/v1/trace/multi-path" : "/api/v1/trace/flow", body).then(function (answer) {
      if (!current(gen)) return;
      submit.disabled = false;
      status.textContent = notes.join(" ");
      drawAnswer(result, answer, multi);
    }, function (err) {
      if (!current(gen)) return;
      submit.disabled = false;
      status.textContent = "";
      var msg = err.message;
      if (err.body && err.body.field) msg = err.body.field + ": " + msg;
      showError(error, msg);
      if (err.body && err.body.field && inputs[err.body.field]) inputs[err.body.field].focus();
    });
  }

  function drawAnswer(box, answer, multi) {
    clear(box);
    box.appendChild(el("p", { class: "summary " + (answer.reaches_destination ? "good" : "bad") }, answer.summary || ""));
    if (multi) {
      box.appendChild(drawTree(treeOfBranch(answer.tree), answer.request, "All paths"));
      if (answer.cut && answer.cut.length) box.appendChild(el("p", { class: "error" }, "Cut short: " + answer.cut.join("; ")));
      box.appendChild(pathsTable(answer));
    } else {
      box.appendChild(drawTree(treeOfHops(answer.hops || [], answer.outcome), answer.request, "Flow"));
      if (answer.reverse) {
        box.appendChild(el("h2", null, "Return flow"));
        box.appendChild(el("p", { class: "summary " + (answer.reverse.reaches_destination ? "good" : "bad") }, answer.reverse.summary || ""));
        box.appendChild(drawTree(treeOfHops(answer.reverse.hops || [], answer.reverse.outcome), answer.reverse.request, "Return flow"));
      }
      if (answer.symmetry) {
        box.appendChild(el("p", { class: answer.symmetry.symmetric ? "good" : "bad" }, answer.symmetry.description || ""));
      }
    }
    var pre = el("pre", { id: "trace-json", tabindex: "0" }, JSON.stringify(answer, null, 2));
    var copy = el("button", { id: "trace-copy", type: "button" }, "Copy JSON");
    var copied = el("span", { class: "muted", role: "status" });
    copy.addEventListener("click", function () {
      copyText(pre).then(function () {
        copied.textContent = "Copied.";
      }, function () {
        copied.textContent = "The JSON is selected: press Ctrl+C to copy it.";
      });
    });
    box.appendChild(el("div", { class: "json-head" }, [el("h2", null, "JSON"), copy, copied]));
    box.appendChild(pre);
  }

  // The clipboard API wants a secure context and the page's focus; where it
  // refuses, the text is selected so Ctrl+C copies it.
  function copyText(pre) {
    var select = function () {
      var range = document.createRange();
      range.selectNodeContents(pre);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      if (!ok) throw new Error("copy refused");
    };
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(pre.textContent).then(null, select);
    }
    return new Promise(function (resolve) {
      select();
      resolve();
    });
  }

  // The flow's hops as a chain, the shape of a multi-path tree.
  function treeOfHops(hops, outcome) {
    var root = null, parent = null;
    hops.forEach(function (h, i) {
      var node = { hop: h, member: null, children: [], outcome: i === hops.length - 1 ? outcome : null };
      if (parent) parent.children.push(node);
      else root = node;
      parent = node;
    });
    return root;
  }

  function treeOfBranch(b) {
    if (!b) return null;
    return { hop: b.hop, member: b.member, outcome: b.outcome || null, children: (b.children || []).map(treeOfBranch) };
  }

  function thousands(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function outcomeText(o) {
    if (!o) return "";
    switch (o.result) {
      case "delivered": return o.local ? "delivered to the switch" : "delivered" + (o.interface ? " on " + o.interface : "");
      case "dropped": return "dropped: " + String(o.reason).replace(/_/g, " ");
      case "unmanaged": return "leaves the managed fabric at " + o.address;
      case "no_answer": return "no answer: " + o.why;
      case "loop": return "loops";
      case "hop_limit": return "hop limit " + o.limit + " reached";
      default: return String(o.result);
    }
  }

  function clip(text, n) {
    text = String(text);
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  // The lines drawn in a hop's box, each [text, class].
  function hopLines(node) {
    var h = node.hop, lines = [];
    var leaf = !node.children.length;
    if (h.type === "unmanaged") {
      lines.push(["not watched by hopwatch", "status"]);
    } else if (h.type === "no_answer") {
      lines.push(["no answer", "status bad"]);
    } else if (h.action === "drop") {
      lines.push([node.outcome && node.outcome.result === "dropped" ? outcomeText(node.outcome) : "drops", "status bad"]);
    } else if (leaf && node.outcome) {
      lines.push([outcomeText(node.outcome), node.outcome.result === "delivered" ? "status good" : "status bad"]);
    } else {
      var fan = node.children.length > 1 ? "forwards over " + node.children.length + " ECMP members" : null;
      lines.push([fan || (h.action === "forward" ? "forwards" + (h.next_hop ? " via " + h.next_hop : "") : h.action), "status"]);
    }
    if (!leaf && node.outcome) lines.push(["also " + outcomeText(node.outcome), "status bad"]);
    var eg = h.egress;
    if (eg) {
      lines.push(["out " + eg.name + " " + (eg.admin_up === false ? "admin down" : eg.oper_state), eg.oper_state === "down" || eg.admin_up === false ? "bad" : ""]);
      if (eg.counters) {
        lines.push(["tx " + thousands(eg.counters.tx_packets) + " pk, " + thousands(eg.counters.tx_errors) + " err, " + thousands(eg.counters.tx_dropped) + " drop",
          eg.counters.tx_errors || eg.counters.tx_dropped ? "warn" : ""]);
      }
    }
    var k = h.known;
    if (k) {
      (k.firing || []).slice(0, 2).forEach(function (a) {
        lines.push(["\u26a0 " + a.rule + " (" + a.severity + ")", "alert"]);
      });
      if ((k.firing || []).length > 2) lines.push(["+" + (k.firing.length - 2) + " more alerts", "alert"]);
      if (k.down_s_24h > 0) lines.push(["down " + duration(k.down_s_24h) + " in 24 h", "warn"]);
    }
    return lines;
  }

  function hopTitle(node) {
    var h = node.hop, t = [h.agent + " — hop " + h.index + " (" + h.type + ", " + h.action + ")", h.description];
    if (h.ingress) t.push("in: " + h.ingress);
    if (h.route) t.push("route: " + h.route.prefix + " (" + h.route.protocol + ")" + (h.route.members && h.route.members.length > 1 ? ", " + h.route.members.length + " ECMP members" : ""));
    if (h.next_hop) t.push("next hop: " + h.next_hop);
    var eg = h.egress;
    if (eg) {
      t.push("out: " + eg.name + " " + eg.oper_state + (eg.mtu ? " mtu " + eg.mtu : "") + (eg.speed_mbps ? " " + eg.speed_mbps + " Mb/s" : ""));
      var c = eg.counters;
      if (c) {
        t.push("rx " + thousands(c.rx_packets) + " packets " + thousands(c.rx_bytes) + " bytes, " + c.rx_errors + " errors, " + c.rx_dropped + " dropped");
        t.push("tx " + thousands(c.tx_packets) + " packets " + thousands(c.tx_bytes) + " bytes, " + c.tx_errors + " errors, " + c.tx_dropped + " dropped");
      }
    }
    if (node.outcome) t.push("outcome: " + (node.outcome.description || outcomeText(node.outcome)));
    var k = h.known;
    if (k) {
      (k.firing || []).forEach(function (a) {
        t.push("firing " + a.rule + " (" + a.severity + ") since " + hoverTimes(a.since) + ": " + a.message);
      });
      (k.changes || []).forEach(function (ch) {
        t.push(ch.state + " at " + hoverTimes(ch.at));
      });
      t.push("down " + duration(k.down_s_24h) + ", unknown " + duration(k.unknown_s_24h) + " in the last 24 h (" + k.interface + ")");
    }
    return t.join("\n");
  }

  var BOX_W = 250, GAP_X = 36, GAP_Y = 74, LINE_H = 17, PAD = 10, MARGIN = 16, END_H = 30;

  // One box per hop, parents above children, leaves side by side: an ECMP
  // fan-out reads as a tree, a single flow as a column that fits a phone.
  function drawTree(root, request, label) {
    var wrap = el("div", { class: "trace-drawing" });
    if (!root) {
      wrap.appendChild(el("p", { class: "muted" }, "No switch answered for this flow."));
      return wrap;
    }
    var rows = [], leaves = 0;
    (function place(n, depth) {
      n.depth = depth;
      n.lines = hopLines(n);
      rows[depth] = Math.max(rows[depth] || 0, n.lines.length);
      if (!n.children.length) {
        n.x = leaves++ * (BOX_W + GAP_X);
      } else {
        n.children.forEach(function (c) {
          place(c, depth + 1);
        });
        n.x = (n.children[0].x + n.children[n.children.length - 1].x) / 2;
      }
    })(root, 0);
    var rowY = [], y = MARGIN + END_H + GAP_Y;
    rows.forEach(function (lines, d) {
      rowY[d] = y;
      y += PAD * 2 + LINE_H * (lines + 1) + GAP_Y;
    });
    var width = MARGIN * 2 + leaves * (BOX_W + GAP_X) - GAP_X;
    var height = y + END_H;
    var root_ = svg("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": label + " from " + (request ? request.src : "") + " to " + (request ? request.dst : "") });
    var linksG = svg("g", { class: "links" }), boxesG = svg("g", { class: "boxes" });
    root_.appendChild(linksG);
    root_.appendChild(boxesG);
    var boxH = function (n) {
      return PAD * 2 + LINE_H * (rows[n.depth] + 1);
    };
    var cx = function (n) {
      return MARGIN + n.x + BOX_W / 2;
    };

    // Where the flow enters: the source, then the first switch's ingress.
    if (request) {
      var sy = MARGIN;
      linksG.appendChild(endpoint(cx(root), sy, "from " + request.src));
      link(linksG, cx(root), sy + END_H, cx(root), rowY[0], null, root.hop.ingress, "");
    }

    var bottom = 0;
    (function drawNode(n) {
      var x = MARGIN + n.x, top = rowY[n.depth], h = boxH(n);
      bottom = Math.max(bottom, top + h);
      var kind = n.hop.type, action = n.hop.action;
      var g = svg("g", {
        "data-hop": String(n.hop.index), "data-agent": n.hop.agent, "data-kind": kind, "data-action": action,
        class: "hop kind-" + kind + " action-" + action + (action === "drop" ? " dropped" : ""), tabindex: "0"
      }, [svg("title", null, hopTitle(n)), svg("rect", { x: x, y: top, width: BOX_W, height: h, rx: 8, class: "box" })]);
      g.appendChild(svg("text", { x: x + PAD, y: top + PAD + 13, class: "agent" }, clip(n.hop.agent, 28)));
      n.lines.forEach(function (line, i) {
        g.appendChild(svg("text", { x: x + PAD, y: top + PAD + 13 + LINE_H * (i + 1), class: "line " + line[1] }, clip(line[0], 34)));
      });
      boxesG.appendChild(g);
      n.children.forEach(function (c) {
        var member = c.member !== null && c.member !== undefined && n.hop.route && n.hop.route.members ? n.hop.route.members[c.member] : null;
        var egress = member && member.interface ? member.interface : (n.hop.egress ? n.hop.egress.name : null);
        var look = c.hop.action === "drop" ? "bad" : c.hop.type !== "switch" ? "faded" : "";
        link(linksG, cx(n), top + h, cx(c), rowY[c.depth], egress, c.hop.ingress, look);
        drawNode(c);
      });
      // Where the flow leaves the last switch: to the host beside it, or
      // towards an egress it is dropped at.
      var delivered = n.outcome && n.outcome.result === "delivered";
      var out = n.hop.egress ? n.hop.egress.name : delivered ? n.outcome.interface : null;
      if (!n.children.length && out && !(delivered && n.outcome.local)) {
        var ey = top + h + GAP_Y;
        link(linksG, cx(n), top + h, cx(n), ey, out, null, delivered ? "" : "bad");
        linksG.appendChild(endpoint(cx(n), ey, delivered ? "to " + (request ? request.dst : "destination") : outcomeText(n.outcome) || n.hop.action, delivered ? "" : "bad"));
        bottom = Math.max(bottom, ey + END_H);
      }
    })(root);
    height = bottom + MARGIN;
    root_.setAttribute("height", height);
    root_.setAttribute("viewBox", "0 0 " + width + " " + height);
    wrap.appendChild(root_);
    return wrap;
  }

  function endpoint(x, y, text, look) {
    var w = Math.max(90, text.length * 8.2 + 24);
    return svg("g", { class: "endpoint" + (look ? " " + look : "") }, [
      svg("rect", { x: x - w / 2, y: y, width: w, height: END_H, rx: 15 }),
      svg("text", { x: x, y: y + 20, "text-anchor": "middle" }, text)
    ]);
  }

  // A link between two boxes, its egress name near the upper end and the
  // ingress name near the lower one.
  function link(g, x1, y1, x2, y2, egress, ingress, look) {
    g.appendChild(svg("line", { x1: x1, y1: y1, x2: x2, y2: y2, class: "link" + (look ? " " + look : "") }));
    if (egress) {
      g.appendChild(svg("text", { x: x1 + (x2 - x1) * 0.22, y: y1 + (y2 - y1) * 0.22 + 4, "text-anchor": "middle", class: "if-label", "data-egress": egress }, egress));
    }
    if (ingress) {
      g.appendChild(svg("text", { x: x1 + (x2 - x1) * 0.78, y: y1 + (y2 - y1) * 0.78 + 4, "text-anchor": "middle", class: "if-label in", "data-ingress": ingress }, ingress));
    }
  }

  function pathsTable(answer) {
    var t = table("trace-paths", ["Path", "Switches (in → out)", "Result", "Flows"]);
    (answer.paths || []).forEach(function (path) {
      var steps = (path.hops || []).map(function (s) {
        return s.agent + (s.ingress || s.egress ? " (" + (s.ingress || "·") + " → " + (s.egress || "·") + ")" : "");
      }).join("  ›  ");
      t.body.appendChild(labelled(el("tr", { "data-path": String(path.id), class: path.reaches_destination ? null : "bad-row" }, [
        cell("id", String(path.id)),
        cell("hops", steps),
        cell("result", el("span", { class: "pill " + (path.reaches_destination ? "state-up" : "state-down") }, outcomeText(path.outcome)), null),
        cell("flows", path.flows === undefined ? "—" : thousands(path.flows), "num")
      ]), t.columns));
    });
    var wrap = el("div", null, [el("h2", null, "Paths")]);
    if (answer.flows) {
      wrap.appendChild(el("p", { class: "muted" }, thousands(answer.flows.flows) + " flows of source ports " + answer.flows.first + "-" + answer.flows.last +
        (answer.flows.unfollowed ? ", " + answer.flows.unfollowed + " not followed to their end" : "")));
    }
    wrap.appendChild(t.wrap);
    return wrap;
  }

  // ---- start -------------------------------------------------------------

  if (location.pathname === "/" || location.pathname === "") history.replaceState(null, "", "/fleet");
  if (location.pathname !== "/signin") checkSession();
  route();
})();
