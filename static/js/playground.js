/* Playground: live answer streams (SSE), Stop, diff and highlight, copy, Ctrl/Cmd+Enter.
 *
 * Model output is untrusted: it only ever reaches the page through textContent or
 * createTextNode, never innerHTML. Server fragments (htmx) are escaped by Django's templates.
 */
(function () {
  "use strict";

  var openStreams = new Map(); // run id -> Set<EventSource>

  function csrfToken() {
    try {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      if (headers["X-CSRFToken"]) return headers["X-CSRFToken"];
    } catch (e) { /* fall through to the cookie */ }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function field(root, name) {
    return root.querySelector('[data-field="' + name + '"]');
  }

  function setText(el, value) {
    if (el) el.textContent = value == null ? "" : String(value);
  }

  function fmtMs(value) {
    if (value == null || value === "") return "—";
    var n = Number(value);
    return n >= 1000 ? (n / 1000).toFixed(2) + " s" : Math.round(n) + " ms";
  }

  function fmtUsd(value) {
    if (value == null || value === "") return "—";
    var n = Number(value);
    if (n === 0) return "$0";
    if (n < 0.01) return "$" + n.toFixed(6).replace(/0+$/, "");
    return "$" + n.toFixed(4);
  }

  // What an answer cost; one that was cancelled or failed still billed the tokens it used.
  var PARTIAL = { cancelled: "partial: cancelled", error: "partial: failed" };
  function fmtBilled(value, status) {
    var text = fmtUsd(value);
    return value == null || value === "" || !PARTIAL[status] ? text : text + " (" + PARTIAL[status] + ")";
  }

  var STATUS_LABELS = { pending: "Waiting", streaming: "Streaming", ok: "Done", error: "Error", cancelled: "Cancelled" };

  function setStatus(col, status) {
    col.dataset.status = status;
    var badge = field(col, "status");
    if (badge) {
      badge.textContent = STATUS_LABELS[status] || status;
      badge.className = "badge pg-status status-" + status;
    }
  }

  function isFinished(status) {
    return status === "ok" || status === "error" || status === "cancelled";
  }

  // A model the engine passed over (its key is missing, it is disabled, its circuit is open).
  function skipText(a) {
    return (a.model || "a model") + " skipped: " + (a.reason || "");
  }

  function addSkips(col, skips) {
    var path = field(col, "path");
    if (!path || !skips || !skips.length) return;
    skips.forEach(function (a) {
      var li = document.createElement("li");
      li.className = "attempt-skipped";
      li.textContent = skipText(a);
      path.appendChild(li);
    });
    path.hidden = false;
  }

  function addPath(col, info, failed) {
    var path = field(col, "path");
    if (!path) return;
    var li = document.createElement("li");
    li.className = failed ? "attempt-error" : "attempt-started";
    var label = (info.model || "attempt") + (info.attempt ? " #" + info.attempt : "");
    li.textContent = failed
      ? label + ": failed — " + (info.error_class || "") + " " + (info.error || "")
      : label + ": started";
    path.appendChild(li);
    path.hidden = false;
  }

  function renderPath(col, attempts) {
    var path = field(col, "path");
    if (!path || !attempts || !attempts.length) return;
    path.textContent = "";
    attempts.forEach(function (a) {
      var li = document.createElement("li");
      li.className = "attempt-" + (a.status || "ok");
      var label = (a.model || "attempt") + (a.attempt ? " #" + a.attempt : "");
      li.textContent = a.status === "skipped"
        ? skipText(a)
        : label + ": " + (a.status || "") + (a.error ? " — " + (a.error_class || "") + " " + a.error : "");
      path.appendChild(li);
    });
    path.hidden = false;
  }

  function isBlind(el) {
    return !!el.closest("[data-blind]");
  }

  function fillStats(col, data) {
    if (isBlind(col)) return; // nothing that tells the models apart until the vote
    if (data.model) {
      var answered = field(col, "answered");
      setText(field(col, "model"), data.model);
      if (answered && data.model !== col.dataset.label) answered.hidden = false;
    }
    setText(field(col, "ttft"), fmtMs(data.ttft_ms));
    setText(field(col, "latency"), fmtMs(data.latency_ms));
    if (data.input_tokens != null) setText(field(col, "tokens"), data.input_tokens + " / " + data.output_tokens);
    setText(field(col, "cost"), fmtBilled(data.cost_usd, data.status));
    if (data.attempts && data.attempts.length) renderPath(col, data.attempts);
  }

  // The tool calls an answer made: name and arguments (pretty JSON when they parse), as text.
  function renderToolCalls(col, calls) {
    var box = field(col, "tool_calls");
    if (!box || isBlind(col)) return;
    box.textContent = "";
    (calls || []).forEach(function (call) {
      var fn = call.function || {};
      var item = document.createElement("div");
      item.className = "pg-tool-call";
      var label = document.createElement("span");
      label.className = "muted";
      label.textContent = "tool call";
      var name = document.createElement("strong");
      name.className = "pg-tool-name";
      name.textContent = fn.name || "";
      var args = document.createElement("pre");
      args.className = "pg-tool-args";
      var text = fn.arguments == null ? "" : String(fn.arguments);
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* shown as it came */ }
      args.textContent = text;
      item.appendChild(label);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(name);
      item.appendChild(args);
      box.appendChild(item);
    });
    box.hidden = !(calls && calls.length);
  }

  function showError(col, message) {
    var el = field(col, "error");
    if (!el) return;
    el.textContent = message || "";
    el.hidden = !message;
  }

  function runOf(el) {
    return el.closest(".pg-run");
  }

  function track(run, source) {
    var id = run.dataset.run;
    if (!openStreams.has(id)) openStreams.set(id, new Set());
    openStreams.get(id).add(source);
  }

  function untrack(run, source) {
    var set = openStreams.get(run.dataset.run);
    if (set) set.delete(source);
    updateRun(run);
  }

  function updateRun(run) {
    var cols = run.querySelectorAll(".pg-col");
    var finished = Array.prototype.every.call(cols, function (c) { return isFinished(c.dataset.status); });
    var consensus = run.querySelector(".pg-consensus");
    if (consensus && !isFinished(consensus.dataset.status)) finished = false;
    var stop = run.querySelector('[data-action="stop"]');
    if (stop) stop.disabled = finished;
    if (finished) {
      run.dataset.roundDone = ""; // a blind round shows both answers together, now
      if (run.dataset.started) {
        setText(field(run, "wall"), "wall time " + fmtMs(performance.now() - Number(run.dataset.started)));
      }
      var round = run.closest(".pg-round");
      if (round) {
        // A failed answer cannot be rated: only a round where both answered takes a vote.
        var answered = Array.prototype.every.call(cols, function (c) { return c.dataset.status === "ok"; });
        round.querySelectorAll("[data-arena-vote] button").forEach(function (b) { b.disabled = !answered; });
        var failed = round.querySelector("[data-arena-failed]");
        if (failed) failed.hidden = answered;
      }
      run.dispatchEvent(new CustomEvent("pg:finished", { bubbles: true }));
      if (run.querySelector('[data-action="highlight"]:checked')) highlight(run, true);
    }
  }

  function startColumn(col) {
    var url = col.dataset.streamUrl;
    if (!url || col.dataset.streaming) return;
    col.dataset.streaming = "1";
    var run = runOf(col);
    if (!run.dataset.started) run.dataset.started = String(performance.now());
    var stopButton = run.querySelector('[data-action="stop"]');
    if (stopButton) stopButton.disabled = false;
    var textEl = field(col, "text");
    var started = performance.now();
    var firstToken = null;
    var source = new EventSource(url);
    track(run, source);
    var ticker = window.setInterval(function () {
      if (!isFinished(col.dataset.status)) setText(field(col, "latency"), fmtMs(performance.now() - started) + "…");
    }, 100); // (a blind column has no latency field: the ticker writes nothing)

    function finish() {
      window.clearInterval(ticker);
      source.close();
      delete col.dataset.streaming;
      col.removeAttribute("data-stream-url");
      untrack(run, source);
    }

    source.addEventListener("status", function (e) {
      setStatus(col, JSON.parse(e.data).status);
    });
    source.addEventListener("attempt", function (e) {
      var info = JSON.parse(e.data);
      setStatus(col, "streaming");
      addSkips(col, info.skipped);
      if (run.dataset.mode === "route" || run.dataset.mode === "chain") addPath(col, info, false);
    });
    source.addEventListener("attempt_failed", function (e) {
      addPath(col, JSON.parse(e.data), true);
      textEl.textContent = "";
      liveCalls = [];
      renderToolCalls(col, liveCalls);
    });
    // Tool calls as they stream: the first piece of call `index` names it, later pieces add
    // argument text; "done" replaces them with the calls whole.
    var liveCalls = [];
    source.addEventListener("tool_call", function (e) {
      var piece = JSON.parse(e.data);
      if (firstToken === null) {
        firstToken = performance.now() - started;
        setText(field(col, "ttft"), fmtMs(firstToken));
      }
      var call = liveCalls[piece.index] || (liveCalls[piece.index] = { "function": { name: "", arguments: "" } });
      if (piece.name) call["function"].name = piece.name;
      call["function"].arguments += piece.arguments || "";
      renderToolCalls(col, liveCalls.filter(Boolean));
    });
    source.addEventListener("delta", function (e) {
      if (firstToken === null) {
        firstToken = performance.now() - started;
        setText(field(col, "ttft"), fmtMs(firstToken));
      }
      textEl.appendChild(document.createTextNode(JSON.parse(e.data).text));
    });
    source.addEventListener("done", function (e) {
      var data = JSON.parse(e.data);
      window.clearInterval(ticker);
      if (typeof data.text === "string") textEl.textContent = data.text; // after the route's post-processor
      renderToolCalls(col, data.tool_calls);
      fillStats(col, data);
      setStatus(col, "ok");
    });
    source.addEventListener("error", function (e) {
      if (!e.data) { // the connection itself failed (not our "error" event)
        if (!isFinished(col.dataset.status)) {
          setStatus(col, "error");
          showError(col, "The connection to the server was lost.");
        }
        finish();
        return;
      }
      var data = JSON.parse(e.data);
      window.clearInterval(ticker);
      fillStats(col, data);
      showError(col, data.error);
      setStatus(col, "error");
    });
    source.addEventListener("snapshot", function (e) {
      var data = JSON.parse(e.data);
      textEl.textContent = data.text || "";
      renderToolCalls(col, data.tool_calls);
      fillStats(col, data);
      showError(col, data.error);
      setStatus(col, data.status);
    });
    source.addEventListener("end", finish);
  }

  function startConsensus(panel) {
    var url = panel.dataset.consensusUrl;
    if (!url || panel.dataset.streaming) return;
    panel.dataset.streaming = "1";
    var run = runOf(panel);
    run.dataset.started = String(performance.now());
    var started = performance.now();
    run.querySelectorAll(".pg-col").forEach(function (c) { setStatus(c, "streaming"); });
    setStatus(panel, "streaming");
    var source = new EventSource(url);
    track(run, source);
    var ticker = window.setInterval(function () {
      var elapsed = fmtMs(performance.now() - started) + "…";
      run.querySelectorAll('.pg-col[data-status="streaming"]').forEach(function (c) { setText(field(c, "latency"), elapsed); });
      setText(field(panel, "wall"), elapsed);
    }, 100);

    function finish() {
      window.clearInterval(ticker);
      source.close();
      panel.removeAttribute("data-consensus-url");
      untrack(run, source);
    }

    var firstTokens = {};
    function memberCol(position) {
      return run.querySelector('.pg-col[data-position="' + position + '"]');
    }
    source.addEventListener("member_delta", function (e) {
      var d = JSON.parse(e.data);
      var col = memberCol(d.position);
      if (!col) return;
      if (!(d.position in firstTokens)) {
        firstTokens[d.position] = performance.now() - started;
        setText(field(col, "ttft"), fmtMs(firstTokens[d.position]));
      }
      field(col, "text").appendChild(document.createTextNode(d.text));
    });
    source.addEventListener("member_attempt_failed", function (e) {
      var d = JSON.parse(e.data);
      var col = memberCol(d.position);
      if (!col) return;
      addPath(col, d, true);
      field(col, "text").textContent = "";
    });
    source.addEventListener("member", function (e) {
      var m = JSON.parse(e.data);
      var col = memberCol(m.position);
      if (!col) return;
      if (typeof m.text === "string" && (m.status === "ok" || m.text)) setText(field(col, "text"), m.text);
      fillStats(col, m);
      showError(col, m.error);
      setStatus(col, m.status === "ok" ? "ok" : (m.status === "cancelled" ? "cancelled" : "error"));
    });
    source.addEventListener("judging", function (e) {
      var d = JSON.parse(e.data);
      setText(field(panel, "explanation"), "The judge " + d.model + " is reading the answers…");
    });
    source.addEventListener("consensus", function (e) {
      var data = JSON.parse(e.data);
      window.clearInterval(ticker);
      setText(field(panel, "text"), data.text || "");
      var winner = field(panel, "winner");
      if (winner) {
        winner.textContent = "";
        if (data.model) {
          winner.appendChild(document.createTextNode("Winner: "));
          var strong = document.createElement("strong");
          strong.textContent = data.model;
          winner.appendChild(strong);
        }
      }
      setText(field(panel, "explanation"), data.explanation || "");
      var votes = field(panel, "votes");
      if (votes && data.groups && data.groups.length) {
        var body = votes.querySelector("tbody");
        body.textContent = "";
        data.groups.forEach(function (g) {
          var tr = document.createElement("tr");
          [g.models.join(", "), String(g.votes), g.text.length > 90 ? g.text.slice(0, 89) + "…" : g.text].forEach(function (value, i) {
            var td = document.createElement("td");
            if (i === 1) td.className = "num";
            if (i === 2) td.className = "muted";
            td.textContent = value;
            tr.appendChild(td);
          });
          body.appendChild(tr);
        });
        votes.hidden = false;
      }
      var judge = field(panel, "judge");
      if (judge && data.judge) {
        setText(field(panel, "judge-model"), data.judge.model);
        setText(field(panel, "judge-text"), data.judge.text);
        judge.hidden = false;
      }
      setText(field(panel, "wall"), fmtMs(data.wall_ms));
      setText(field(panel, "cost"), fmtBilled(data.cost_usd, data.status));
      showError(panel, data.error);
      setStatus(panel, data.status || "ok");
      run.querySelectorAll('.pg-col[data-status="streaming"]').forEach(function (c) { setStatus(c, data.status || "error"); });
    });
    source.addEventListener("error", function (e) {
      if (!e.data && !isFinished(panel.dataset.status)) {
        setStatus(panel, "error");
        showError(panel, "The connection to the server was lost.");
      }
      finish();
    });
    source.addEventListener("end", finish);
  }

  function stopRun(run) {
    var set = openStreams.get(run.dataset.run);
    if (set) {
      set.forEach(function (s) { s.close(); });
      set.clear();
    }
    var stopped = [];
    run.querySelectorAll(".pg-col, .pg-consensus").forEach(function (c) {
      if (!isFinished(c.dataset.status)) {
        if (c.matches(".pg-col")) stopped.push(c);
        setStatus(c, "cancelled");
        showError(c, "Stopped.");
        c.removeAttribute("data-stream-url");
        c.removeAttribute("data-consensus-url");
        delete c.dataset.streaming;
      }
    });
    updateRun(run);
    return fetch(run.dataset.stopUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
      credentials: "same-origin",
    }).then(function () {
      stopped.forEach(function (c) { settle(c, 40); });
    });
  }

  // A stopped column's figures (what the cancelled call billed) are saved by the server once
  // it has closed the call: fetch the saved column until it says so (bounded), then show it.
  function settle(col, triesLeft) {
    var url = col.dataset.columnUrl;
    if (!url || triesLeft <= 0 || !document.body.contains(col)) return;
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html; // our own template's fragment (escaped by Django)
        var fresh = holder.querySelector(".pg-col");
        if (fresh && fresh.hasAttribute("data-settled")) {
          col.replaceWith(fresh);
          updateRun(runOf(fresh));
        } else {
          window.setTimeout(function () { settle(col, triesLeft - 1); }, 250);
        }
      }, function () { /* the server is gone: keep what the page shows */ });
  }

  /* ---- Word diff (LCS over words and whitespace) ---- */

  function tokens(text) {
    return (text || "").split(/(\s+)/).filter(function (t) { return t !== ""; });
  }

  var MAX_DIFF_TOKENS = 3000;

  function diffTokens(a, b) {
    // Returns [{op: "same"|"del"|"ins", text}]; falls back to whole-text replace when huge.
    if (a.length > MAX_DIFF_TOKENS || b.length > MAX_DIFF_TOKENS) {
      return [{ op: "del", text: a.join("") }, { op: "ins", text: b.join("") }];
    }
    var n = a.length, m = b.length;
    var width = m + 1;
    var table = new Uint16Array((n + 1) * width);
    for (var i = n - 1; i >= 0; i--) {
      for (var j = m - 1; j >= 0; j--) {
        table[i * width + j] = a[i] === b[j]
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    var out = [];
    i = 0; j = 0;
    function push(op, text) {
      var last = out[out.length - 1];
      if (last && last.op === op) last.text += text; else out.push({ op: op, text: text });
    }
    while (i < n && j < m) {
      if (a[i] === b[j]) { push("same", a[i]); i++; j++; }
      else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) { push("del", a[i]); i++; }
      else { push("ins", b[j]); j++; }
    }
    while (i < n) push("del", a[i++]);
    while (j < m) push("ins", b[j++]);
    return out;
  }

  function columnText(run, position) {
    var col = run.querySelector('.pg-col[data-position="' + position + '"]');
    if (!col) return "";
    var text = field(col, "text");
    return col.dataset.plain != null ? col.dataset.plain : (text ? text.textContent : "");
  }

  function showDiff(run) {
    var left = run.querySelector('[data-diff="left"]').value;
    var right = run.querySelector('[data-diff="right"]').value;
    var box = field(run, "diff");
    box.textContent = "";
    var title = document.createElement("p");
    title.className = "muted";
    var leftCol = run.querySelector('.pg-col[data-position="' + left + '"]');
    var rightCol = run.querySelector('.pg-col[data-position="' + right + '"]');
    title.textContent = "Word diff: " + (leftCol ? leftCol.dataset.label : left) + " → " + (rightCol ? rightCol.dataset.label : right) +
      " (struck: only on the left; underlined: only on the right)";
    var pre = document.createElement("pre");
    pre.className = "pg-text pg-diff-text";
    diffTokens(tokens(columnText(run, left)), tokens(columnText(run, right))).forEach(function (part) {
      if (part.op === "same") { pre.appendChild(document.createTextNode(part.text)); return; }
      var el = document.createElement(part.op === "del" ? "del" : "ins");
      el.textContent = part.text;
      pre.appendChild(el);
    });
    var close = document.createElement("button");
    close.type = "button";
    close.className = "pg-mini";
    close.textContent = "Close diff";
    close.addEventListener("click", function () { box.hidden = true; });
    box.appendChild(title);
    box.appendChild(pre);
    box.appendChild(close);
    box.hidden = false;
  }

  function highlight(run, on) {
    var cols = Array.prototype.slice.call(run.querySelectorAll(".pg-col"));
    if (cols.length < 2) return;
    cols.forEach(function (col) {
      var text = field(col, "text");
      if (col.dataset.plain == null) col.dataset.plain = text.textContent;
      text.textContent = "";
      if (!on) {
        text.textContent = col.dataset.plain;
        delete col.dataset.plain;
      }
    });
    if (!on) return;
    // Each column against the first: words the reference does not have are marked
    // (and, in the first column, words no other column has).
    var ref = tokens(cols[0].dataset.plain);
    var sharedInRef = new Array(ref.length).fill(false);
    cols.forEach(function (col, index) {
      var text = field(col, "text");
      var mine = tokens(col.dataset.plain);
      if (index === 0) return;
      var parts = diffTokens(ref, mine);
      var r = 0;
      parts.forEach(function (part) {
        var count = tokens(part.text).length;
        if (part.op === "same") {
          for (var k = 0; k < count; k++) sharedInRef[r + k] = true;
          r += count;
          text.appendChild(document.createTextNode(part.text));
        } else if (part.op === "del") {
          r += count;
        } else {
          var mark = document.createElement("mark");
          mark.textContent = part.text;
          text.appendChild(mark);
        }
      });
    });
    var refText = field(cols[0], "text");
    ref.forEach(function (tok, i) {
      if (sharedInRef[i] || /^\s+$/.test(tok)) refText.appendChild(document.createTextNode(tok));
      else {
        var mark = document.createElement("mark");
        mark.textContent = tok;
        refText.appendChild(mark);
      }
    });
  }

  function copyText(text, button) {
    function done() {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1200);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
    document.body.removeChild(area);
  }

  /* ---- Wiring ---- */

  // The system prompt box is shared by every mode; a prompt that came from the chosen task
  // route belongs to that route only. Leaving route mode takes it out of the box (so a chain
  // or model call never sends it) and coming back puts it in again, unless it was edited.
  function syncRoutePrompt(form, mode) {
    var box = form.querySelector("#id_system_prompt");
    if (!box || box.dataset.routePrompt == null) return;
    var note = form.querySelector("[data-route-note]");
    if (mode === "route") {
      if (box.dataset.stashed === "1" && box.value === "") box.value = box.dataset.routePrompt;
      delete box.dataset.stashed;
      if (note) note.hidden = box.value !== box.dataset.routePrompt;
    } else if (box.value === box.dataset.routePrompt) {
      box.value = "";
      box.dataset.stashed = "1";
      if (note) note.hidden = true;
    }
  }

  function currentMode(form) {
    var checked = form.querySelector('input[name="mode"]:checked');
    return checked ? checked.value : "models";
  }

  function syncModes(form) {
    var mode = currentMode(form);
    form.querySelectorAll("[data-modes]").forEach(function (fs) {
      var show = fs.dataset.modes.split(" ").indexOf(mode) !== -1;
      fs.hidden = !show;
      fs.disabled = !show; // hidden inputs are not sent
    });
    syncRoutePrompt(form, mode);
  }

  function syncCount(form) {
    var counter = form.querySelector("[data-model-count]");
    if (!counter) return;
    var checked = form.querySelectorAll('input[name="models"]:checked');
    var n = checked.length;
    var max = Number(form.dataset.maxModels || 0);
    counter.textContent = "(" + n + " selected, up to " + max + ")";
    counter.classList.toggle("pg-over", max > 0 && n > max);
    var chips = form.querySelector("[data-chips]");
    if (!chips) return;
    chips.textContent = "";
    checked.forEach(function (input) {
      var chip = document.createElement("span");
      chip.className = "pg-chip";
      chip.dataset.chip = input.value;
      chip.appendChild(document.createTextNode(input.value));
      var remove = document.createElement("button");
      remove.type = "button";
      remove.dataset.unchip = input.value;
      remove.setAttribute("aria-label", "Remove " + input.value);
      remove.textContent = "×";
      chip.appendChild(remove);
      chips.appendChild(chip);
    });
    var hint = form.querySelector("[data-picker-hint]");
    setText(hint, n ? "change" : "choose models");
  }

  // An attached image: checked for size here (the server checks again), shown as a thumbnail.
  function initImage(form) {
    var input = form.querySelector("[data-image-input]");
    if (!input) return;
    var thumb = form.querySelector("[data-image-thumb]");
    var note = form.querySelector("[data-image-note]");
    var clear = form.querySelector('[data-action="image-clear"]');
    var hint = note ? note.textContent : "";
    var max = Number(input.dataset.imageMax || 0);
    function reset(message) {
      input.value = "";
      if (thumb) { thumb.hidden = true; thumb.removeAttribute("src"); }
      if (clear) clear.hidden = true;
      if (note) {
        note.textContent = message || hint;
        note.classList.toggle("pg-over", !!message);
      }
    }
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) { reset(); return; }
      if (max && file.size > max) {
        reset("The image is " + (file.size / 1048576).toFixed(1) + " MB; the limit is " +
          Math.round(max / 1048576) + " MB. Attach a smaller one.");
        return;
      }
      if (note) { note.textContent = file.name + " · " + Math.max(1, Math.round(file.size / 1024)) + " KB"; note.classList.remove("pg-over"); }
      if (clear) clear.hidden = false;
      var reader = new FileReader();
      reader.onload = function () { if (thumb) { thumb.src = String(reader.result); thumb.hidden = false; } };
      reader.readAsDataURL(file);
    });
    if (clear) clear.addEventListener("click", function () { reset(); });
  }

  function initForm(form) {
    if (form.dataset.pgReady) return;
    form.dataset.pgReady = "1";
    initImage(form);
    form.addEventListener("change", function (e) {
      if (e.target.name === "mode") syncModes(form);
      if (e.target.name === "models") syncCount(form);
    });
    form.addEventListener("click", function (e) {
      var remove = e.target.closest && e.target.closest("[data-unchip]");
      if (!remove) return;
      e.preventDefault(); // inside the picker's summary: do not fold or unfold it
      form.querySelectorAll('input[name="models"]').forEach(function (input) {
        if (input.value === remove.dataset.unchip) input.checked = false;
      });
      syncCount(form);
    });
    // A new route prompt arrives by htmx: it is the box's content for route mode.
    form.addEventListener("htmx:afterSwap", function () { syncRoutePrompt(form, currentMode(form)); });
    // Once a run is on its way the picker folds to its chips, so the answers start on screen.
    form.addEventListener("htmx:afterRequest", function (e) {
      if (e.detail.elt !== form || !e.detail.successful) return;
      var picker = form.querySelector("[data-picker]");
      if (picker && form.querySelectorAll('input[name="models"]:checked').length) picker.open = false;
    });
    form.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
      }
    });
    syncModes(form);
    syncCount(form);
  }

  function init(root) {
    root.querySelectorAll("form[data-pg-form]").forEach(initForm);
    if (root.matches && root.matches("form[data-pg-form]")) initForm(root);
    var scope = root.querySelectorAll ? root : document;
    var cols = Array.prototype.slice.call(scope.querySelectorAll(".pg-col[data-stream-url]"));
    if (root.matches && root.matches(".pg-col[data-stream-url]")) cols.push(root);
    cols.forEach(startColumn);
    var panels = Array.prototype.slice.call(scope.querySelectorAll(".pg-consensus[data-consensus-url]"));
    panels.forEach(startConsensus);
    scope.querySelectorAll(".pg-run").forEach(function (run) {
      if (!run.querySelector("[data-stream-url], [data-consensus-url]")) updateRun(run);
    });
  }

  document.addEventListener("click", function (e) {
    var target = e.target.closest("[data-action]");
    if (!target) return;
    var run = runOf(target);
    var action = target.dataset.action;
    if (action === "stop" && run) { stopRun(run); return; }
    if (action === "diff" && run) { showDiff(run); return; }
    if (action === "copy") {
      var holder = target.closest(".pg-col, .pg-consensus");
      var col = target.closest(".pg-col");
      copyText(col && col.dataset.plain != null ? col.dataset.plain : field(holder, "text").textContent, target);
      return;
    }
    if (action === "markdown") {
      var c = target.closest(".pg-col");
      var md = field(c, "markdown");
      if (!md) {
        // Streamed live: fetch the saved column (rendered and sanitised on the server).
        if (window.htmx && c.dataset.columnUrl && isFinished(c.dataset.status)) {
          window.htmx.ajax("GET", c.dataset.columnUrl, { target: c, swap: "outerHTML" }).then(function () {
            var fresh = document.getElementById(c.id);
            var m = fresh && field(fresh, "markdown");
            if (m) { m.hidden = false; field(fresh, "text").hidden = true; }
          });
        }
        return;
      }
      var showing = !md.hidden;
      md.hidden = showing;
      field(c, "text").hidden = !showing;
    }
  });

  document.addEventListener("change", function (e) {
    if (e.target.matches('[data-action="highlight"]')) highlight(runOf(e.target), e.target.checked);
  });

  // A re-run replaces its column: forget the old highlight state for that run.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var run = e.detail.target && e.detail.target.closest && e.detail.target.closest(".pg-run");
    if (run) {
      var box = run.querySelector('[data-action="highlight"]');
      if (box && box.checked) { highlight(run, false); box.checked = false; }
    }
  });

  // An arena vote refused with 400 comes with a fragment saying why: show it
  // (htmx does not swap 4xx responses by default).
  document.addEventListener("htmx:beforeSwap", function (e) {
    var source = (e.detail.requestConfig && e.detail.requestConfig.elt) || e.detail.elt;
    var form = source && source.closest && source.closest("[data-arena-vote]");
    if (form && e.detail.xhr && e.detail.xhr.status === 400) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });

  // A new send clears the previous send's inline error.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("form[data-pg-form]");
    if (form && e.detail.elt === form) {
      var errors = form.querySelector("#pg-errors");
      if (errors) errors.textContent = "";
    }
  });

  // Leaving the page closes every stream (the server cancels the upstream calls).
  window.addEventListener("pagehide", function () {
    openStreams.forEach(function (set) { set.forEach(function (s) { s.close(); }); });
  });

  if (window.htmx) {
    window.htmx.onLoad(init);
  } else {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  }
})();
