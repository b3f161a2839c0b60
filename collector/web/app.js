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

  function go(url, replace) {
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    route();
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
    timers.push(setTimeout(function () {
      if (current(gen)) fn();
    }, ms));
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
    return { wrap: el("div", { class: "table-wrap" }, t), table: t, body: tbody };
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
    var form = el("form", { id: "signin-form", class: "card signin" }, [
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
    var t = table("fleet-table", ["Agent", "State", "Version", "Last seen", "Firing", "Links down"]);
    main.appendChild(heading("Fleet", [updated]));
    main.appendChild(totals);
    main.appendChild(error);
    main.appendChild(t.wrap);
    var rows = {};

    function render(f) {
      hideError(error);
      totals.textContent = "";
      append(totals, [
        String((f.agents || []).length) + " agents · ",
        el("a", { href: "/alerts?state=firing", class: f.firing ? "bad" : null }, count(f.firing) + " alerts firing"),
        " · ",
        el("a", { href: "/links?minutes=60", class: f.links_down ? "bad" : null }, count(f.links_down) + " links down")
      ]);
      var seen = {};
      (f.agents || []).forEach(function (a, i) {
        seen[a.agent] = true;
        var row = rows[a.agent];
        if (!row) {
          row = el("tr", { "data-agent": a.agent });
          rows[a.agent] = row;
        }
        var cells = [
          el("th", { scope: "row", "data-col": "agent" }, el("a", { href: "/alerts?agent=" + encodeURIComponent(a.agent) }, a.agent)),
          cell("state", el("span", { class: "pill state-" + a.state }, a.state)),
          cell("version", a.version || "—"),
          cell("last_seen", timeEl(a.last_seen)),
          cell("firing", count(a.firing), a.firing ? "num bad" : "num"),
          cell("links_down", count(a.links_down) + (a.links_total !== undefined ? " / " + a.links_total : ""), a.links_down ? "num bad" : "num")
        ];
        clear(row);
        append(row, cells);
        if (t.body.children[i] !== row) t.body.insertBefore(row, t.body.children[i] || null);
      });
      Object.keys(rows).forEach(function (name) {
        if (!seen[name]) {
          rows[name].remove();
          delete rows[name];
        }
      });
      var empty = t.body.querySelector("tr.empty");
      if ((f.agents || []).length === 0 && !empty) emptyRow(t.body, 6, "No agent has reported to this collector yet.");
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
      go("/alerts" + query(q));
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
      state: state, since: p.since || "24h", agent: p.agent, interface: p.interface, rule: p.rule, limit: 1000
    });

    function render(list) {
      var now = Date.now();
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
        var row = el("tr", { "data-alert": String(i), "data-state": a.state, class: "alert-" + a.state }, [
          cell("agent", a.agent),
          cell("interface", el("a", { href: timelineHref(a.agent, a.interface) }, a.interface)),
          cell("rule", a.rule),
          cell("severity", el("span", { class: "pill sev-" + a.severity }, a.severity)),
          cell("fired", timeEl(a.fired_at)),
          cell("cleared", a.state === "firing" ? el("span", { class: "pill state-firing" }, "firing") : timeEl(a.resolved_at)),
          cell("duration", dur === null ? "—" : duration(Math.max(0, dur)) + (a.state === "firing" ? " so far" : "")),
          cell("message", a.state === "firing" ? a.message : (a.resolved_message || a.message), "message")
        ]);
        t.body.appendChild(row);
      });
      if (!shown.length) emptyRow(t.body, 8, "No alerts match.");
      var firing = shown.filter(function (a) { return a.state === "firing"; }).length;
      status.textContent = firing + " firing, " + (shown.length - firing) + " resolved · updated " + localTime(new Date());
    }

    function poll() {
      api("GET", url).then(function (list) {
        if (!current(gen)) return;
        hideError(error);
        render(list);
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

  function viewChanges() {
    main.appendChild(heading("Link changes"));
  }

  function viewTimeline() {
    main.appendChild(heading("Link timeline"));
  }

  function viewWorst() {
    main.appendChild(heading("Worst interfaces"));
  }

  function viewTrace() {
    main.appendChild(heading("Trace"));
  }

  // ---- start -------------------------------------------------------------

  if (location.pathname === "/" || location.pathname === "") history.replaceState(null, "", "/fleet");
  if (location.pathname !== "/signin") checkSession();
  route();
})();
