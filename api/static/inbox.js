// inbox.js - the approver's web inbox: sign in with a token (kept in
// sessionStorage, so it leaves with the tab), my tasks, and an instance
// page with its history, diagram and the transitions I may fire.
// Every value from the server goes into the page as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "docket-token";
const SVGNS = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}

function say(text, error) {
  const m = $("message");
  m.textContent = text || "";
  m.hidden = !text;
  m.className = error ? "error" : "";
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || "HTTP " + status);
    this.status = status;
  }
}

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + sessionStorage.getItem(KEY) }, opts.headers || {});
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
  if (r.status === 401) {
    sessionStorage.removeItem(KEY);
    show("signin");
    throw new ApiError(401, body);
  }
  if (!r.ok) throw new ApiError(r.status, body);
  return { body, etag: r.headers.get("ETag") };
}

function show(section) {
  for (const s of ["signin", "inbox", "instance"]) $(s).hidden = s !== section;
  $("signout").hidden = section === "signin";
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

// ---- the inbox --------------------------------------------------------------

async function renderInbox() {
  const { body: tasks } = await api("/api/inbox");
  const tb = $("tasks");
  tb.replaceChildren();
  for (const t of tasks) {
    const link = el("a", { href: "/inbox/instances/" + encodeURIComponent(t.instance), "data-nav": "" }, t.title || t.flow);
    const due = el("td", {}, fmtTime(t.due_at));
    if (t.overdue) due.append(" ", el("span", { class: "badge overdue" }, "逾期 / overdue"));
    if (t.for) due.append(" ", el("span", { class: "badge" }, "代 / for " + t.for));
    tb.append(el("tr", { class: t.overdue ? "overdue" : "" },
      el("td", {}, t.instance), el("td", {}, t.flow), el("td", {}, link), el("td", {}, t.state), due));
  }
  $("empty").hidden = tasks.length > 0;
  show("inbox");
}

// ---- one instance -----------------------------------------------------------

let current = null; // {id, etag, flow model, instance}

async function renderInstance(id) {
  const [{ body: inst, etag }, { body: log }, { body: evidence }] = await Promise.all([
    api("/api/instances/" + encodeURIComponent(id)),
    api("/api/instances/" + encodeURIComponent(id) + "/log"),
    api("/api/instances/" + encodeURIComponent(id) + "/evidence"),
  ]);
  const { body: flow } = await api("/api/flows/" + encodeURIComponent(inst.flow) + "?version=" + inst.flow_version);
  current = { id, etag, inst, flow };
  $("i-title").textContent = "#" + inst.id + " " + (inst.title || inst.flow);
  $("i-meta").textContent = [flow.title, "环节 / state: " + inst.state, "状态 / status: " + inst.status,
    "发起人 / by: " + inst.initiator, "版本 / version: " + inst.version].join(" · ");

  const acts = $("actions");
  acts.replaceChildren();
  // Only the moves this user may make (the API computes them with the
  // engine's rules): another person's task or a role they lack shows none.
  for (const t of inst.available_transitions || []) {
    const b = el("button", { type: "button" }, t);
    b.addEventListener("click", () => askComment(t));
    acts.append(b);
  }
  $("act-form").hidden = true;

  const ev = $("evidence");
  ev.replaceChildren();
  for (const e of evidence) {
    const b = el("button", { type: "button" }, "下载 / download");
    b.addEventListener("click", () => download(e).catch((x) => say(x.message, true)));
    ev.append(el("li", {}, e.kind + ": " + e.name + " (" + e.size + " B) ", e.late ? el("span", { class: "badge overdue" }, "迟交 / late") : "", " ", b));
  }
  const kinds = $("upload-kind");
  kinds.replaceChildren(...(flow.evidence || []).map((k) => el("option", { value: k.id }, k.title || k.id)));
  $("upload-form").hidden = !(flow.evidence || []).length || inst.status !== "active";

  const vars = $("vars");
  vars.replaceChildren();
  for (const [k, v] of Object.entries(inst.vars || {}))
    vars.append(el("tr", {}, el("td", {}, k), el("td", {}, typeof v === "string" ? v : JSON.stringify(v))));

  const ol = $("log");
  ol.replaceChildren();
  for (const e of log) {
    const what = e.transition ? e.type + " " + e.transition + (e.from ? " (" + e.from + " → " + e.to + ")" : "") : e.type;
    const li = el("li", {}, el("span", { class: "when" }, fmtTime(e.at)), " ", e.actor || "system",
      e.on_behalf_of ? " (代 / for " + e.on_behalf_of + ")" : "", ": ", what);
    if (e.comment) li.append(el("div", {}, "“" + e.comment + "”"));
    if (e.note) li.append(el("div", { class: "when" }, e.note));
    ol.append(li);
  }
  const svg = drawFlow(flow, inst.states || [inst.state]);
  $("diagram").replaceChildren(svg);
  show("instance");
  spreadLabels(svg); // measures the text: only once it is displayed
}

function transitionModel(name) {
  for (const s of current.flow.states)
    if ((current.inst.states || []).includes(s.id))
      for (const t of s.transitions) if (t.id === name) return t;
  return null;
}

function askComment(name) {
  const t = transitionModel(name);
  const needed = t && t.comment_required;
  $("comment-label").textContent = needed ? "意见（必填）/ Comment (required)" : "意见（可选）/ Comment (optional)";
  $("comment").required = !!needed;
  $("comment").value = "";
  $("act-go").textContent = name;
  $("act-form").dataset.transition = name;
  $("act-form").hidden = false;
  $("comment").focus();
}

async function act(ev) {
  ev.preventDefault();
  const name = $("act-form").dataset.transition;
  const comment = $("comment").value.trim();
  const body = comment ? { comment } : {};
  try {
    await api("/api/instances/" + encodeURIComponent(current.id) + "/transitions/" + encodeURIComponent(name), {
      method: "POST",
      headers: { "Content-Type": "application/json", "If-Match": current.etag || "", "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random() },
      body: JSON.stringify(body),
    });
    say("已完成 / done: " + name);
  } catch (e) {
    say(e.status === 412 ? "此事项已被他人处理，已刷新 / Someone acted first; reloaded." : e.message, true);
  }
  await renderInstance(current.id).catch((e) => say(e.message, true));
}

// Downloads need the token, so they go through fetch and a blob URL.
async function download(e) {
  const r = await fetch("/api/instances/" + encodeURIComponent(current.id) + "/evidence/" +
    encodeURIComponent(e.kind) + "/" + encodeURIComponent(e.name),
    { headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) } });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
  const url = URL.createObjectURL(await r.blob());
  const a = el("a", { href: url, download: e.name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  try {
    await api("/api/instances/" + encodeURIComponent(current.id) + "/evidence/" +
      encodeURIComponent($("upload-kind").value) + "?name=" + encodeURIComponent(file.name),
      { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file });
    say("已上传 / uploaded: " + file.name);
  } catch (e) {
    say(e.message, true);
  }
  $("upload-file").value = "";
  await renderInstance(current.id).catch((e) => say(e.message, true));
}

// ---- the diagram: states in layers by distance from the initial state ------

function drawFlow(flow, currentStates) {
  const byId = new Map(flow.states.map((s) => [s.id, s]));
  const depth = new Map();
  const start = flow.states.filter((s) => s.initial && !s.region).map((s) => s.id);
  const queue = start.length ? [...start] : [flow.states[0].id];
  for (const q of queue) depth.set(q, 0);
  while (queue.length) {
    const id = queue.shift();
    const s = byId.get(id);
    const next = (s ? s.transitions.map((t) => t.to) : []).concat(
      flow.states.filter((r) => r.parallel === id && r.initial).map((r) => r.id));
    for (const to of next)
      if (byId.has(to) && !depth.has(to)) { depth.set(to, depth.get(id) + 1); queue.push(to); }
  }
  let maxDepth = Math.max(0, ...depth.values());
  for (const s of flow.states) if (!depth.has(s.id)) depth.set(s.id, ++maxDepth);
  const layers = [];
  for (const s of flow.states) (layers[depth.get(s.id)] ||= []).push(s);
  const W = 170, H = 44, GX = 40, GY = 60;
  const pos = new Map();
  const widest = Math.max(...layers.map((l) => (l ? l.length : 0)));
  layers.forEach((layer, d) => (layer || []).forEach((s, i) => {
    const off = ((widest - layer.length) * (W + GX)) / 2;
    pos.set(s.id, { x: 20 + off + i * (W + GX), y: 20 + d * (H + GY) });
  }));
  const svg = document.createElementNS(SVGNS, "svg");
  const width = 40 + widest * (W + GX), height = 40 + layers.length * (H + GY);
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("width", width);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", flow.title);
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  };
  const defs = mk("defs", {});
  const marker = mk("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(mk("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#6b7a90" }));
  defs.append(marker);
  svg.append(defs);
  for (const s of flow.states) for (const t of s.transitions) {
    const a = pos.get(s.id), b = pos.get(t.to);
    if (!a || !b) continue;
    let d;
    if (a === b) {
      d = `M ${a.x + W} ${a.y + 12} c 30 -10 30 30 0 20`;
    } else if (b.y > a.y) {
      d = `M ${a.x + W / 2} ${a.y + H} L ${b.x + W / 2} ${b.y}`;
    } else {
      d = `M ${a.x + W / 2 + 20} ${a.y} C ${a.x + W + 60} ${a.y - 30}, ${b.x + W + 60} ${b.y + H + 30}, ${b.x + W / 2 + 20} ${b.y + H}`;
    }
    svg.append(mk("path", { d, class: "edge", "marker-end": "url(#arrow)" }));
    const lx = a === b ? a.x + W + 30 : (a.x + b.x) / 2 + W / 2 + 6, ly = a === b ? a.y + 18 : (a.y + H + b.y) / 2 + (b.y > a.y ? 0 : -6);
    svg.append(mk("text", { x: lx, y: ly, class: "edge-label" }, t.id));
  }
  for (const s of flow.states) {
    const p = pos.get(s.id);
    const g = mk("g", { class: "state" + (currentStates.includes(s.id) ? " current" : "") + (s.final ? " final" : "") });
    g.append(mk("rect", { x: p.x, y: p.y, width: W, height: H, rx: 8 }));
    g.append(mk("text", { x: p.x + 8, y: p.y + 18 }, s.id));
    if (s.title) g.append(mk("text", { x: p.x + 8, y: p.y + 34 }, s.title.length > 24 ? s.title.slice(0, 23) + "…" : s.title));
    svg.append(g);
  }
  return svg;
}

// Edge labels sit at their edge's middle, so the labels of edges that run
// side by side (two moves to the same state, a move and its way back)
// land on one another. Once laid out (getBBox needs the page), each label
// that overlaps a state or an earlier label moves along its edge's normal,
// down and up in turn, to the first free place; the drawing grows to fit.
function spreadLabels(svg) {
  const hit = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  const taken = [...svg.querySelectorAll("g.state rect")].map((r) => r.getBBox());
  let bottom = 0;
  for (const t of svg.querySelectorAll("text.edge-label")) {
    const y0 = +t.getAttribute("y");
    let box = t.getBBox();
    const step = box.height + 2;
    for (let k = 1; k < 40 && taken.some((b) => hit(b, box)); k++) {
      const dy = Math.ceil(k / 2) * step * (k % 2 ? 1 : -1);
      t.setAttribute("y", y0 + dy);
      box = t.getBBox();
    }
    taken.push(box);
    bottom = Math.max(bottom, box.y + box.height);
  }
  const vb = svg.viewBox.baseVal;
  if (bottom + 10 > vb.height) svg.setAttribute("viewBox", "0 0 " + vb.width + " " + (bottom + 10));
}

// ---- navigation -----------------------------------------------------------

async function route() {
  say("");
  if (!sessionStorage.getItem(KEY)) { show("signin"); return; }
  try {
    const { body: me } = await api("/api/me");
    $("who").textContent = (me.name || me.user) + " (" + me.user + ")";
    const m = location.pathname.match(/^\/inbox\/instances\/([^/]+)$/);
    if (m) await renderInstance(decodeURIComponent(m[1]));
    else await renderInbox();
  } catch (e) {
    if (e.status !== 401) say(e.message, true);
    else say("令牌无效或已过期 / The token is invalid or expired.", true);
  }
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-nav]");
  if (!a || ev.ctrlKey || ev.metaKey) return;
  ev.preventDefault();
  history.pushState(null, "", a.getAttribute("href"));
  route();
});
window.addEventListener("popstate", route);
$("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("token").value.trim());
  $("token").value = "";
  route();
});
$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  $("who").textContent = "";
  show("signin");
});
$("act-form").addEventListener("submit", act);
$("upload-form").addEventListener("submit", upload);
$("act-cancel").addEventListener("click", () => { $("act-form").hidden = true; });
route();
