// Keel code completion client for the Gradio playground: ghost text from POST /api/complete (same origin,
// Streamlit session cookie). Every edit sends a request at once and aborts the previous stream; the server
// checks its cache first, then debounces (adaptive), cancels stale generations and streams tokens.
(() => {
  if (window.__keelCompletion) return;
  window.__keelCompletion = true;
  const FILES = JSON.parse(document.getElementById("keel-files-json")?.textContent || "[]");
  const API = location.pathname.split("/playground/")[0] + "/api/complete";
  const SESSION = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random())).slice(0, 32);
  const texts = Object.fromEntries(FILES.map((f) => [f.path, f.text]));
  const recent = [];
  const stats = { latencies: [], shown: 0, accepted: 0, requests: 0, server: {} };
  let active = null; // {view, path}
  let ghost = null; // {id, text, pos, path, view}
  let controller = null;
  let lastDoc = new Map();

  function viewOf(el) {
    const content = el && el.querySelector(".cm-content");
    if (!content) return null;
    const tile = content.cmTile;
    if (tile && tile.root && tile.root.view) return tile.root.view;
    const cv = content.cmView;
    return (cv && (cv.rootView || cv).view) || null;
  }
  function fileOf(el) {
    const host = el && el.closest("[id^='keel-code-']");
    if (!host) return null;
    return FILES[Number(host.id.slice("keel-code-".length))] || null;
  }
  function pct(values, p) {
    if (!values.length) return null;
    const data = [...values].sort((a, b) => a - b);
    return data[Math.min(data.length - 1, Math.round((data.length - 1) * p))];
  }
  function renderStats(status) {
    const box = document.getElementById("keel-stats-body");
    if (!box) return;
    const s = stats.server;
    const fmt = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)} ms`);
    const rate = stats.shown ? Math.round((100 * stats.accepted) / stats.shown) : 0;
    box.innerHTML = `
      <div class="keel-kpis">
        <div><b>${fmt(pct(stats.latencies, 0.5))}</b><span>latency p50</span></div>
        <div><b>${fmt(pct(stats.latencies, 0.95))}</b><span>latency p95</span></div>
        <div><b>${(s.cache_hits || 0) + (s.typed_ahead_hits || 0)}</b><span>cache hits</span></div>
        <div><b>${(s.cancelled || 0) + (s.superseded || 0)}</b><span>cancelled</span></div>
        <div><b>${rate}%</b><span>accepted (${stats.accepted}/${stats.shown})</span></div>
        <div><b>${s.model_requests || 0}</b><span>model calls / ${stats.requests} asks</span></div>
      </div>
      <div class="keel-status" id="keel-status">${status || ""}</div>`;
  }
  function clearGhost() {
    document.querySelectorAll(".keel-ghost").forEach((n) => n.remove());
    ghost = null;
  }
  function drawGhost() {
    document.querySelectorAll(".keel-ghost").forEach((n) => n.remove());
    if (!ghost || !ghost.text) return;
    const view = ghost.view;
    const coords = view.coordsAtPos(ghost.pos);
    if (!coords) return;
    const scroller = view.scrollDOM;
    const box = scroller.getBoundingClientRect();
    const contentLeft = view.contentDOM.getBoundingClientRect().left - box.left + scroller.scrollLeft;
    const lines = ghost.text.split("\n");
    const lineHeight = view.defaultLineHeight || coords.bottom - coords.top;
    lines.forEach((line, i) => {
      const span = document.createElement("div");
      span.className = "keel-ghost";
      span.setAttribute("data-testid", "keel-ghost");
      span.textContent = line || (i === 0 ? "" : " ");
      span.style.top = `${coords.top - box.top + scroller.scrollTop + i * lineHeight}px`;
      span.style.left = i === 0 ? `${coords.left - box.left + scroller.scrollLeft}px` : `${contentLeft + 6}px`;
      span.style.height = `${lineHeight}px`;
      scroller.appendChild(span);
    });
  }
  function payloadFor(path, text, cursor) {
    const others = Object.fromEntries(Object.entries(texts).filter(([p]) => p !== path));
    const debounce = document.getElementById("keel-debounce")?.value;
    const options = { max_tokens: 48 };
    if (debounce !== undefined && debounce !== "") options.debounce_ms = Number(debounce);
    const file = FILES.find((f) => f.path === path);
    return {
      path, text, cursor, session: SESSION, stream: true, files: others, open: Object.keys(others),
      recent: recent.filter((p) => p !== path).slice(0, 4), language: file ? file.language : null, options,
    };
  }
  async function ask(view, path) {
    const text = view.state.doc.toString();
    const cursor = view.state.selection.main.head;
    if (controller) controller.abort(); // the server sees the disconnect and cancels that generation
    controller = new AbortController();
    const mine = controller;
    const started = performance.now();
    stats.requests += 1;
    let shown = "";
    let seenVisible = false;
    try {
      const response = await fetch(API, {
        method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
        body: JSON.stringify(payloadFor(path, text, cursor)), signal: mine.signal,
      });
      if (!response.ok) {
        const err = await response.json().catch(() => ({}));
        renderStats(`⚠️ ${response.status}: ${err.error || "request failed"}`);
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let id = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const line = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (!line.startsWith("data: ")) continue;
          const event = JSON.parse(line.slice(6));
          if (mine !== controller) return;
          if (event.type === "start") id = event.id;
          if (event.type === "delta") {
            shown += event.text;
            if (!seenVisible && shown.trim()) {
              seenVisible = true;
              stats.latencies.push(performance.now() - started);
            }
            ghost = { id, text: shown, pos: cursor, path, view };
            drawGhost();
          }
          if (event.type === "done") {
            stats.server = event.stats || stats.server;
            if (event.status === "shown" && event.completion) {
              stats.shown += 1;
              ghost = { id: event.id, text: event.completion, pos: cursor, path, view };
              drawGhost();
            } else if (!shown) {
              clearGhost();
            }
            const how = event.cached ? `cache (${event.source})` : event.source;
            renderStats(`${event.status} · ${how} · debounce ${Math.round(event.debounce_ms)} ms · ` +
                        `${event.latency_ms === null ? "–" : Math.round(event.latency_ms) + " ms"} server-side`);
          }
        }
      }
    } catch (e) {
      if (e.name !== "AbortError") renderStats(`⚠️ ${e}`);
    }
  }
  async function accept() {
    if (!ghost || !ghost.text) return false;
    const { view, text, pos, id, path } = ghost;
    clearGhost();
    view.dispatch({ changes: { from: pos, insert: text }, selection: { anchor: pos + text.length } });
    view.focus();
    stats.accepted += 1;
    renderStats("accepted · asking for the next one (speculative)");
    // tell the server first: it starts the next suggestion speculatively, which our next request then finds
    await fetch(API, {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ accept: id, session: SESSION, text }),
    }).catch(() => {});
    onChange(view, path);
    return true;
  }
  function onChange(view, path) {
    const text = view.state.doc.toString();
    const cursor = view.state.selection.main.head;
    const key = `${path}`;
    const before = lastDoc.get(key);
    if (before && before.text === text && before.cursor === cursor) return;
    lastDoc.set(key, { text, cursor });
    if (before && before.text === text) { // only the cursor moved
      clearGhost();
      return;
    }
    texts[path] = text;
    const at = recent.indexOf(path);
    if (at >= 0) recent.splice(at, 1);
    recent.unshift(path);
    // typed-ahead: the user typed the first characters of the visible suggestion, keep the rest at once
    if (ghost && ghost.path === path && before && cursor > ghost.pos) {
      const typed = text.slice(ghost.pos, cursor);
      if (ghost.text.startsWith(typed) && ghost.text.length > typed.length &&
          text.length - before.text.length === cursor - before.cursor) {
        ghost = { ...ghost, text: ghost.text.slice(typed.length), pos: cursor };
        drawGhost();
      } else clearGhost();
    } else clearGhost();
    ask(view, path);
  }
  const warmed = new Set();
  function warm(view, path) {
    // Opening a file evaluates its prompt once, so llama.cpp holds its KV state before the first keystroke.
    if (warmed.has(path)) return;
    warmed.add(path);
    const body = payloadFor(path, view.state.doc.toString(), view.state.selection.main.head);
    body.stream = false;
    body.session = SESSION + "-warm";
    body.options = { max_tokens: 1, debounce_ms: 0, cache: false, speculate: false };
    fetch(API, { method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
                 body: JSON.stringify(body) }).catch(() => {});
  }
  document.addEventListener("focusin", (e) => {
    const editor = e.target.closest && e.target.closest(".cm-editor");
    const file = fileOf(editor);
    const view = viewOf(editor);
    if (file && view) requestAnimationFrame(() => warm(view, file.path));
  }, true);
  function schedule(target) {
    const editor = target && target.closest && target.closest(".cm-editor");
    const file = fileOf(editor);
    const view = viewOf(editor);
    if (!file || !view) return;
    active = { view, path: file.path };
    requestAnimationFrame(() => onChange(view, file.path));
  }
  // The file's own indent unit (the editor's default is 2 spaces, which breaks a 4-space Python file): a tab if
  // the file indents with tabs, else the smallest space indent its lines use, else 4 spaces.
  function indentUnit(text) {
    let smallest = 0, tabs = 0, spaces = 0;
    for (const line of text.split("\n")) {
      const m = /^([ \t]+)\S/.exec(line);
      if (!m) continue;
      if (m[1][0] === "\t") { tabs += 1; continue; }
      spaces += 1;
      if (!smallest || m[1].length < smallest) smallest = m[1].length;
    }
    if (tabs > spaces) return "\t";
    return " ".repeat(smallest >= 2 && smallest <= 8 ? smallest : 4);
  }
  function indentKey(e, view) {
    const state = view.state;
    const unit = indentUnit(state.doc.toString());
    const sel = state.selection.main;
    const line = state.doc.lineAt(sel.head);
    if (e.key === "Backspace") {  // in the leading whitespace: back to the previous indent stop
      const col = sel.head - line.from;
      const lead = /^ */.exec(line.text)[0].length;
      if (!sel.empty || unit === "\t" || col === 0 || col > lead) return false;
      const cut = col % unit.length || unit.length;
      view.dispatch({ changes: { from: sel.head - cut, to: sel.head }, userEvent: "delete" });
      return true;
    }
    if (e.key === "Enter") {  // keep the line's indent, one unit more after a block opener
      const before = line.text.slice(0, sel.head - line.from);
      let indent = /^[ \t]*/.exec(line.text)[0].slice(0, before.length);
      if (/[:{[(]\s*$/.test(before)) indent += unit;
      const insert = "\n" + indent;
      view.dispatch({ changes: { from: sel.from, to: sel.to, insert }, selection: { anchor: sel.from + insert.length },
                      scrollIntoView: true, userEvent: "input" });
      return;
    }
    const first = state.doc.lineAt(sel.from).number, last = state.doc.lineAt(sel.to).number;
    if (!e.shiftKey && sel.empty) {  // Tab: to the next indent stop
      const col = sel.head - line.from;
      const insert = unit === "\t" ? "\t" : " ".repeat(unit.length - (col % unit.length));
      view.dispatch({ changes: { from: sel.head, insert }, selection: { anchor: sel.head + insert.length },
                      userEvent: "input" });
      return;
    }
    const changes = [];
    for (let n = first; n <= last; n++) {
      const l = state.doc.line(n);
      if (!e.shiftKey) { changes.push({ from: l.from, insert: unit }); continue; }
      const lead = /^[ \t]*/.exec(l.text)[0];
      const cut = lead.startsWith("\t") ? 1 : Math.min(lead.length, unit === "\t" ? 4 : unit.length);
      if (cut) changes.push({ from: l.from, to: l.from + cut });
    }
    if (changes.length) view.dispatch({ changes, userEvent: "input" });
  }
  document.addEventListener("keydown", (e) => {
    if (!e.target.closest || !e.target.closest("[id^='keel-code-']")) return;
    if (e.key === "Tab" && !e.shiftKey && ghost && ghost.text) {
      e.preventDefault();
      e.stopPropagation();
      accept();
    } else if (e.key === "Escape" && ghost) {
      e.preventDefault();
      clearGhost();
    } else if ((e.key === "Tab" || e.key === "Backspace" || (e.key === "Enter" && !e.shiftKey)) && !e.ctrlKey
               && !e.metaKey && !e.altKey) {
      const view = viewOf(e.target.closest(".cm-editor"));
      if (!view) return;
      if (e.key === "Backspace") {
        if (!indentKey(e, view)) return;  // not in the indent: the editor deletes one character as usual
      } else {
        if (e.key === "Enter") clearGhost();
        indentKey(e, view);
      }
      e.preventDefault();
      e.stopPropagation();
      schedule(e.target);
    }
  }, true);
  for (const type of ["keyup", "input", "mouseup", "paste", "cut"]) {
    document.addEventListener(type, (e) => schedule(e.target), true);
  }
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#keel-accept")) accept();
  }, true);
  new MutationObserver(() => { if (!document.getElementById("keel-stats-body")?.children.length) renderStats(); })
    .observe(document.body, { childList: true, subtree: true });
  window.keelCompletion = { accept, stats, get ghost() { return ghost; } };
})();
