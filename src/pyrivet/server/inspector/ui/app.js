// The inspector page: plain JavaScript, no build step, no network beyond this server.
// It talks to the inspector API (/gateway/{id}/inspector/...) with the bearer token,
// lists actors through /ui/api/actors, and follows the selected actor over the live
// socket (/gateway/{id}/inspector/live). Every value shown is set with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const page = {
  token: "",
  actors: [],
  actor: null, // {actorId, name, key, awake}
  tab: "state",
  live: null,
  history: [], // loaded history entries, oldest first
  seq: 0,
};

function showError(err) {
  const box = $("error");
  box.hidden = !err;
  box.textContent = err ? String(err.message || err) : "";
}

async function request(url, options = {}) {
  const headers = { authorization: `Bearer ${page.token}`, ...(options.headers || {}) };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${body.group || "error"}/${body.code || response.status}: ${body.message || ""}`);
  }
  return body;
}

function api(path, options) {
  return request(`/gateway/${encodeURIComponent(page.actor.actorId)}/inspector/${path}`, options);
}

const json = (value) => JSON.stringify(value, null, 2);

function fillTable(table, columns, rows) {
  table.replaceChildren();
  const head = table.insertRow();
  for (const column of columns) {
    const th = document.createElement("th");
    th.textContent = column;
    head.appendChild(th);
  }
  for (const row of rows) {
    const tr = table.insertRow();
    for (const column of columns) {
      const value = row[column];
      tr.insertCell().textContent = typeof value === "string" ? value : JSON.stringify(value);
    }
  }
}

// -- actors --------------------------------------------------------------------

async function loadActors() {
  const query = encodeURIComponent($("search").value.trim());
  const body = await request(`/ui/api/actors?q=${query}`);
  page.actors = body.actors;
  const list = $("actors");
  list.replaceChildren();
  for (const actor of page.actors) {
    const li = document.createElement("li");
    li.dataset.id = actor.actorId;
    li.classList.toggle("selected", page.actor && page.actor.actorId === actor.actorId);
    const name = document.createElement("span");
    name.textContent = actor.name + " ";
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = actor.key.join("/");
    const badge = document.createElement("span");
    badge.className = "badge" + (actor.awake ? " awake" : "");
    badge.textContent = actor.awake ? "awake" : "sleeping";
    li.append(name, key, badge);
    li.addEventListener("click", () => selectActor(actor).catch(showError));
    list.appendChild(li);
  }
}

async function selectActor(actor) {
  page.actor = actor;
  page.history = [];
  for (const li of $("actors").children) li.classList.toggle("selected", li.dataset.id === actor.actorId);
  $("actor").hidden = false;
  $("actor-title").textContent = `${actor.name} [${actor.key.join("/")}] ${actor.actorId}`;
  $("events-list").replaceChildren();
  showError(null);
  const summary = await api("summary");
  renderSummary(summary);
  connectLive();
  await showTab(page.tab);
}

function renderSummary(summary) {
  renderState(summary.seq, summary.state);
  const select = $("console-action");
  select.replaceChildren(
    ...summary.rpcs.map((name) => {
      const option = document.createElement("option");
      option.textContent = name;
      return option;
    }),
  );
  renderConnections(summary.connections);
  $("queue-size").textContent = summary.queueSize;
}

function renderState(seq, state) {
  page.seq = seq;
  $("state-seq").textContent = seq;
  $("state-view").textContent = json(state);
  if (document.activeElement !== $("state-edit")) $("state-edit").value = json(state);
}

function renderConnections(connections) {
  fillTable(
    $("connections-table"),
    ["id", "params", "state", "subscriptions"],
    connections.map((c) => ({ id: c.id, ...c.details })),
  );
}

// -- live updates ----------------------------------------------------------------

function connectLive() {
  if (page.live) page.live.close();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/gateway/${encodeURIComponent(page.actor.actorId)}/inspector/live`;
  const socket = new WebSocket(url, ["pyrivet-inspector", `bearer.${page.token}`]);
  const actorId = page.actor.actorId;
  page.live = socket;
  socket.onmessage = (message) => {
    if (!page.actor || page.actor.actorId !== actorId) return;
    onFrame(JSON.parse(message.data));
  };
  socket.onclose = () => {
    if (page.live === socket) $("status").textContent = "live updates stopped (select the actor again)";
  };
}

function onFrame(frame) {
  switch (frame.type) {
    case "init":
      renderSummary(frame);
      break;
    case "state":
      renderState(frame.seq, frame.state);
      break;
    case "connections":
      renderConnections(frame.connections);
      break;
    case "queue":
      $("queue-size").textContent = frame.size;
      break;
    case "workflow":
      renderWorkflow(frame.history);
      break;
    case "history":
      addHistory(frame.entries, frame.gap);
      break;
    case "events":
      for (const event of frame.events) {
        const li = document.createElement("li");
        li.textContent = `${new Date().toISOString()} ${event.name} ${JSON.stringify(event.args)}` +
          (event.to ? ` (to ${event.to})` : "");
        $("events-list").prepend(li);
      }
      break;
  }
}

// -- tabs ------------------------------------------------------------------------

async function showTab(tab) {
  page.tab = tab;
  for (const el of document.querySelectorAll("[data-tab]")) {
    el.classList.toggle("active", el.dataset.tab === tab);
  }
  if (!page.actor) return;
  const loaders = {
    queue: loadQueue,
    schedules: loadSchedules,
    workflow: async () => renderWorkflow((await api("workflow-history")).history),
    kv: loadKv,
    sql: loadSql,
    history: loadHistory,
  };
  if (loaders[tab]) await loaders[tab]();
}

async function loadQueue() {
  const queue = await api("queue?limit=100");
  $("queue-size").textContent = queue.size;
  fillTable($("queue-table"), ["id", "name", "createdAtMs", "body"], queue.messages);
}

async function loadSchedules() {
  const body = await api("schedules");
  fillTable($("schedules-table"), ["id", "kind", "action", "args", "fireAtMs", "cron"], body.schedules);
}

function renderWorkflow(history) {
  $("workflow-state").textContent = history ? history.state : "no workflow";
  $("workflow-replay").hidden = !history;
  const table = $("workflow-table");
  fillTable(table, ["key", "name", "kind", "status", "attempts", "output", "error"], history ? history.entries : []);
  if (!history) return;
  history.entries.forEach((entry, index) => {
    const button = document.createElement("button");
    button.textContent = "replay from here";
    button.addEventListener("click", () => replay(entry.key).catch(showError));
    table.rows[index + 1].insertCell().appendChild(button);
  });
}

async function replay(entryId) {
  await api("workflow/replay", { method: "POST", body: JSON.stringify(entryId ? { entryId } : {}) });
  renderWorkflow((await api("workflow-history")).history);
}

async function loadKv() {
  const body = await api("kv?limit=1000");
  fillTable($("kv-table"), ["key", "value"], body.entries);
}

async function loadSql() {
  const box = $("sql-tables");
  box.replaceChildren();
  let schema;
  try {
    schema = await api("database/schema");
  } catch (err) {
    box.textContent = String(err.message);
    return;
  }
  for (const table of schema.tables) {
    const button = document.createElement("button");
    button.textContent = `${table.name} (${table.records})`;
    button.addEventListener("click", async () => {
      try {
        const rows = await api(`database/rows?table=${encodeURIComponent(table.name)}&limit=100`);
        showRows(rows.rows);
      } catch (err) {
        showError(err);
      }
    });
    box.appendChild(button);
  }
}

function showRows(rows) {
  fillTable($("sql-rows"), rows.length ? Object.keys(rows[0]) : [], rows);
}

// -- history timeline ------------------------------------------------------------

async function loadHistory() {
  const after = Math.max(0, page.seq - 1000);
  const body = await api(`history?after=${after}&limit=1000`);
  page.history = body.entries;
  renderTimeline(page.history.length - 1);
}

function addHistory(entries, gap) {
  if (gap || page.tab !== "history") {
    if (page.tab === "history") loadHistory().catch(showError);
    return;
  }
  const atEnd = Number($("history-slider").value) >= page.history.length - 1;
  const known = new Set(page.history.map((e) => e.seq));
  page.history.push(...entries.filter((e) => !known.has(e.seq)));
  renderTimeline(atEnd ? page.history.length - 1 : Number($("history-slider").value));
}

function renderTimeline(index) {
  const slider = $("history-slider");
  slider.max = Math.max(0, page.history.length - 1);
  slider.value = Math.max(0, index);
  showEntry(Number(slider.value)).catch(showError);
}

async function showEntry(index) {
  const entry = page.history[index];
  if (!entry) {
    $("history-meta").textContent = "no history retained";
    return;
  }
  const when = new Date(entry.atMs).toISOString();
  $("history-meta").textContent =
    `seq ${entry.seq} · ${when} · ${entry.kind}${entry.name ? " " + entry.name : ""}` +
    (entry.args ? ` ${JSON.stringify(entry.args)}` : "") +
    (entry.by ? ` · by ${entry.by}` : "") +
    (entry.ops.length ? ` · ops ${JSON.stringify(entry.ops)}` : "");
  $("rewind").dataset.seq = entry.seq;
  const seq = entry.seq;
  const [at, diff] = await Promise.all([api(`state-at?seq=${seq}`), api(`diff?to=${seq}`)]);
  if (Number($("rewind").dataset.seq) !== seq) return; // the slider moved on meanwhile
  $("history-state").textContent = json(at.state);
  const list = $("history-diff");
  list.replaceChildren();
  for (const change of diff.changes) {
    const li = document.createElement("li");
    li.className = `op-${change.op}`;
    const path = change.path || "(whole state)";
    li.textContent =
      change.op === "add" ? `+ ${path} = ${JSON.stringify(change.after)}`
      : change.op === "remove" ? `- ${path} (was ${JSON.stringify(change.before)})`
      : `~ ${path}: ${JSON.stringify(change.before)} → ${JSON.stringify(change.after)}`;
    list.appendChild(li);
  }
  if (!diff.changes.length) list.textContent = "no state change";
}

// -- wiring ----------------------------------------------------------------------

function bind(id, event, handler) {
  $(id).addEventListener(event, (e) => {
    if (event === "submit") e.preventDefault();
    Promise.resolve(handler(e)).then(() => showError(null), showError);
  });
}

async function signIn(token) {
  page.token = token;
  sessionStorage.setItem("pyrivet-inspector-token", token);
  await loadActors();
  $("status").textContent = "signed in";
}

bind("login", "submit", () => signIn($("token").value.trim()));
bind("search", "input", loadActors);
bind("refresh", "click", loadActors);
for (const button of document.querySelectorAll("nav button")) {
  bind(button.id || (button.id = `tab-${button.dataset.tab}`), "click", () => showTab(button.dataset.tab));
}
bind("state-save", "click", async () => {
  const state = JSON.parse($("state-edit").value);
  await api("state", { method: "PATCH", body: JSON.stringify({ state }) });
});
bind("console-run", "click", async () => {
  const args = JSON.parse($("console-args").value || "[]");
  const name = encodeURIComponent($("console-action").value);
  $("console-output").textContent = "running...";
  try {
    const body = await api(`action/${name}`, { method: "POST", body: JSON.stringify({ args }) });
    $("console-output").textContent = json(body.output);
  } catch (err) {
    $("console-output").textContent = String(err.message);
    throw err;
  }
});
bind("queue-form", "submit", async () => {
  const body = JSON.parse($("queue-body").value || "null");
  await api("queue", { method: "POST", body: JSON.stringify({ name: $("queue-name").value, body }) });
  await loadQueue();
});
bind("queue-clear", "click", async () => {
  await api("queue", { method: "DELETE" });
  await loadQueue();
});
bind("workflow-replay", "click", () => replay(null));
bind("sql-run", "click", async () => {
  const body = await api("database/execute", { method: "POST", body: JSON.stringify({ sql: $("sql-query").value }) });
  showRows(body.rows);
});
bind("history-slider", "input", () => showEntry(Number($("history-slider").value)));
bind("rewind", "click", async () => {
  const seq = Number($("rewind").dataset.seq);
  await api("rewind", { method: "POST", body: JSON.stringify({ seq }) });
  await loadHistory(); // the timeline moves to its new last entry: the rewind
});

// The token comes from the URL's fragment (#token=..., as `pyrivet serve` prints it;
// never sent to the server in a URL), or from this tab's earlier sign-in.
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) history.replaceState(null, "", location.pathname);
const saved = fromHash || sessionStorage.getItem("pyrivet-inspector-token");
if (saved) signIn(saved).catch(showError);
showTab("state");
