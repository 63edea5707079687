// agent-mesh operator page: live updates over SSE and the approve / deny / revoke buttons.
// It never builds HTML from data: it swaps in fragments the server rendered (and escaped).
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) { location.assign("/login"); }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { throw new Error(data.detail || ("HTTP " + response.status)); }
  return data;
}

function traceQuery() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(document.getElementById("trace-filter"))) {
    if (value) { params.set(key, value); }
  }
  const text = params.toString();
  return text ? "?" + text : "";
}

async function refresh(name) {
  const query = name === "traces" ? traceQuery() : "";
  const response = await fetch("/ui/" + name + query, { credentials: "same-origin" });
  if (response.status === 401) { location.assign("/login"); return; }
  document.getElementById(name).innerHTML = await response.text();
  if (name === "inbox") { countPending(); }
  if (name === "traces") { markCurrent(); }
}

// A trace row opens its detail: a fragment the server rendered (and escaped), swapped into #trace-detail.
async function openTrace(seq, scroll = true) {
  const panel = document.getElementById("trace-detail");
  const response = await fetch("/ui/trace/" + encodeURIComponent(seq), { credentials: "same-origin" });
  if (response.status === 401) { location.assign("/login"); return; }
  panel.innerHTML = await response.text();
  panel.hidden = false;
  panel.dataset.seq = seq;
  markCurrent();
  if (location.hash !== "#trace-" + seq) { history.replaceState(null, "", "#trace-" + seq); }
  if (scroll) { panel.scrollIntoView({ block: "start" }); }
}

// New records may belong to the open record's session: its list follows, where the reader is.
function refreshDetail() {
  const panel = document.getElementById("trace-detail");
  if (!panel.hidden && panel.dataset.seq) { openTrace(panel.dataset.seq, false); }
}

function closeTrace() {
  const panel = document.getElementById("trace-detail");
  panel.hidden = true;
  panel.innerHTML = "";
  delete panel.dataset.seq;
  markCurrent();
  history.replaceState(null, "", location.pathname + location.search);
}

function markCurrent() {
  const seq = document.getElementById("trace-detail").dataset.seq;
  for (const row of document.querySelectorAll("#traces tr[data-seq]")) {
    row.classList.toggle("current", row.dataset.seq === seq);
  }
}

function countPending() {
  const n = document.querySelectorAll("#inbox .approval").length;
  document.getElementById("pending-count").textContent = n ? "(" + n + ")" : "";
  document.title = n ? "(" + n + ") agent-mesh" : "agent-mesh";
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

const refreshTraces = debounce(() => { refresh("traces"); refreshDetail(); }, 150);

function connect() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  events.addEventListener("ready", () => { live.textContent = "live"; refresh("inbox"); });
  events.addEventListener("approvals", () => { refresh("inbox"); refresh("grants"); });
  events.addEventListener("trace", refreshTraces);
  events.onerror = () => { live.textContent = "reconnecting…"; };
}

async function act(button) {
  const id = button.dataset.id;
  const card = button.closest(".approval");
  const reasonInput = card ? card.querySelector("input.reason") : null;
  const reason = reasonInput ? reasonInput.value.trim() : "";
  const action = button.dataset.action;
  button.disabled = true;
  try {
    if (action === "approve") {
      await api("POST", "/api/approvals/" + id + "/approve", { reason });
    } else if (action === "approve-for") {
      await api("POST", "/api/approvals/" + id + "/approve", { reason, for: button.dataset.for });
    } else if (action === "deny") {
      await api("POST", "/api/approvals/" + id + "/deny", { reason });
    } else if (action === "revoke") {
      await api("DELETE", "/api/grants/" + id);
    } else if (action === "stop") {
      const all = button.dataset.scope === "*";
      const agent = all ? "" : document.getElementById("stop-agent").value.trim();
      if (!all && !agent) { throw new Error("name the agent to stop"); }
      const why = prompt("Emergency stop of " + (all ? "ALL agents" : agent) + ". Reason (agents see it):");
      if (!why || !why.trim()) { button.disabled = false; return; }
      await api("POST", "/api/stop", all ? { all: true, reason: why } : { agent, reason: why });
    } else if (action === "resume") {
      const scope = button.dataset.scope;
      await api("POST", "/api/resume", scope === "*" ? { all: true } : { agent: scope });
    }
    await Promise.all([refresh("inbox"), refresh("grants"), refresh("mesh")]);
  } catch (err) {
    button.disabled = false;
    alert("agent-mesh: " + err.message);
  }
}

function tick() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".waiting[data-created]")) {
    const s = Math.max(0, Math.floor(now - Number(el.dataset.created)));
    el.textContent = "waiting " + (s < 60 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s");
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button && button.dataset.action === "close-detail") { event.preventDefault(); closeTrace(); return; }
  if (button) { event.preventDefault(); act(button); return; }
  const row = event.target.closest("tr[data-seq]");
  if (row && !window.getSelection().toString()) {  // selecting text in a row is not a click on it
    event.preventDefault();
    openTrace(row.dataset.seq);
  }
});
const deepLink = /^#trace-(\d+)$/.exec(location.hash);
if (deepLink) { openTrace(deepLink[1]); }
document.getElementById("trace-filter").addEventListener("input", debounce(() => refresh("traces"), 250));
document.getElementById("trace-filter").addEventListener("submit", (event) => event.preventDefault());
countPending();
connect();
setInterval(tick, 1000);
setInterval(() => refresh("mesh"), 2000);  // heartbeats, reloads and stops are not pushed as events
