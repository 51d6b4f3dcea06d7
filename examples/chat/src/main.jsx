// The chat page: one React component on @rivetkit/react's useActor.
//
// The room is the page's `rvt-key` (the page is served by that room's actor), the
// user's name is `?name=` (or a random guest). Messages come from the `history` action,
// called on every (re)connect, plus `message` events; `typing` events drive the
// "is typing" line and are never stored.
import { createRivetKit } from "@rivetkit/react";
import { useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";

const query = new URLSearchParams(location.search);
const room = query.get("rvt-key") ?? "lobby";
const me = query.get("name") ?? `guest-${Math.floor(Math.random() * 10000)}`;
// The actors are served by the same server as this page.
const { useActor } = createRivetKit(location.origin);

/** Messages by id, oldest first: history and events may both bring the same one. */
function merge(messages, more) {
  const byId = new Map(messages.map((m) => [m.id, m]));
  for (const m of more) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

function Chat() {
  const chat = useActor({ name: "chat", key: [room] });
  const [messages, setMessages] = useState([]);
  const [typing, setTyping] = useState(new Set());
  const [draft, setDraft] = useState("");
  const [problem, setProblem] = useState(null);
  const stopTyping = useRef(null);

  // On every (re)connect, load the history: it holds what was said while we were away.
  useEffect(() => {
    if (chat.connStatus !== "connected" || !chat.connection) return;
    let current = true;
    chat.connection.history().then((history) => current && setMessages((ms) => merge(ms, history)));
    return () => { current = false; };
  }, [chat.connStatus, chat.connection]);

  chat.useEvent("message", (message) => setMessages((ms) => merge(ms, [message])));
  chat.useEvent("typing", (author, isTyping) => {
    if (author === me) return;
    setTyping((names) => {
      const next = new Set(names);
      isTyping ? next.add(author) : next.delete(author);
      return next;
    });
  });

  function onInput(event) {
    setDraft(event.target.value);
    if (!chat.connection) return;
    // Say "typing" now, and "stopped" after two quiet seconds.
    if (stopTyping.current === null) chat.connection.typing(me, true);
    clearTimeout(stopTyping.current);
    stopTyping.current = setTimeout(() => {
      stopTyping.current = null;
      chat.connection?.typing(me, false);
    }, 2000);
  }

  async function onSubmit(event) {
    event.preventDefault();
    const text = draft.trim();
    if (!text || !chat.connection) return;
    clearTimeout(stopTyping.current);
    stopTyping.current = null;
    chat.connection.typing(me, false);
    try {
      const message = await chat.connection.post(me, text);
      setMessages((ms) => merge(ms, [message]));
      setDraft("");
      setProblem(null);
    } catch (error) {
      // Not sent (the connection dropped, or the actor refused it): keep the draft.
      setProblem(`not sent: ${error.message}`);
    }
  }

  return (
    <main>
      <h1>#{room}</h1>
      <p className="status">
        you are <b>{me}</b> · <span id="status">{chat.connStatus}</span>
        {problem && <> · <span id="problem">{problem}</span></>}
      </p>
      <ul id="messages">
        {messages.map((m) => (
          <li key={m.id}><span className="author">{m.author}</span><span className="text">{m.text}</span></li>
        ))}
      </ul>
      <p id="typing" className="status">
        {typing.size > 0 ? `${[...typing].join(", ")} ${typing.size === 1 ? "is" : "are"} typing…` : "\u00a0"}
      </p>
      <form onSubmit={onSubmit}>
        <input id="draft" value={draft} onChange={onInput} placeholder="Say something" autoComplete="off" />
        <button type="submit" disabled={!chat.isConnected}>Send</button>
      </form>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<Chat />);
