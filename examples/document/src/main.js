// The document page: a textarea bound to a Yjs text, synced with the document actor
// over a raw WebSocket (see app.py for the protocol: whole document on connect, then
// one Yjs update per binary frame, both ways). Reconnects by itself, with backoff.
import * as Y from "yjs";

const doc = new Y.Doc();
const content = doc.getText("content");
const editor = document.getElementById("editor");
const status = document.getElementById("status");
document.getElementById("title").textContent = new URLSearchParams(location.search).get("rvt-key");

// The socket lives next to the page: /gateway/document/request/ -> .../websocket/
const socketUrl = new URL(location.href);
socketUrl.protocol = location.protocol === "https:" ? "wss:" : "ws:";
socketUrl.pathname = location.pathname.replace(/\/request\/?$/, "/websocket/");

let socket = null;
let retryDelay = 250;

function connect() {
  status.textContent = "connecting";
  socket = new WebSocket(socketUrl);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    retryDelay = 250;
    // Everything we have, including edits made while disconnected: merging is idempotent.
    socket.send(Y.encodeStateAsUpdate(doc));
  };
  socket.onmessage = (event) => {
    Y.applyUpdate(doc, new Uint8Array(event.data), "remote");
    status.textContent = "synced"; // the first frame is the whole document
  };
  socket.onclose = () => {
    socket = null;
    status.textContent = "offline";
    setTimeout(connect, retryDelay); // the server restarts in place: try again soon
    retryDelay = Math.min(retryDelay * 2, 5000);
  };
}

// Local changes go to the actor; changes that came from it are not sent back.
doc.on("update", (update, origin) => {
  if (origin !== "remote" && socket?.readyState === WebSocket.OPEN) socket.send(update);
});

// Textarea -> Yjs: replace the changed middle (text between the common prefix and suffix).
editor.addEventListener("input", () => {
  const before = content.toString();
  const after = editor.value;
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (
    end < before.length - start && end < after.length - start &&
    before[before.length - 1 - end] === after[after.length - 1 - end]
  ) end++;
  doc.transact(() => {
    content.delete(start, before.length - start - end);
    content.insert(start, after.slice(start, after.length - end));
  }, "local");
});

// Yjs -> textarea, for remote changes, keeping the caret where it was in the text.
content.observe((event) => {
  if (event.transaction.origin === "local") return;
  let caret = editor.selectionStart;
  let index = 0;
  for (const op of event.delta) {
    if (op.retain) index += op.retain;
    if (op.insert) { if (index <= caret) caret += op.insert.length; index += op.insert.length; }
    if (op.delete) { if (index < caret) caret -= Math.min(op.delete, caret - index); }
  }
  editor.value = content.toString();
  editor.setSelectionRange(caret, caret);
});

connect();
