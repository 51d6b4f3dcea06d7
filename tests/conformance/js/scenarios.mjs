// Conformance scenarios: the official RivetKit client (rivetkit@2.3.19) against a
// live `pyrivet serve tests/conformance/app.py` (see ../test_js_client.py).
//
//   node scenarios.mjs SCENARIO ENCODING ENDPOINT
//
//   SCENARIO  actions-http | actions-conn | events | conn-params | user-error |
//             lookup | input | raw-http | raw-ws | reconnect | oversize | queue
//   ENCODING  json | cbor | bare
//   ENDPOINT  http://127.0.0.1:PORT (pyrivet serve, or a Rivet Engine's gateway: the client
//             then reads RIVET_TOKEN, RIVET_NAMESPACE and RIVET_POOL)
//
// Prints one JSON line {"scenario", "encoding", "ok": true, ...observations} and
// exits 0; on failure prints {"ok": false, "error"} and a readable message on
// stderr, and exits 1. `reconnect` also prints {"phase": "connected"} first and then
// waits (bounded) for the caller to restart the server on the same port.
//
// Every wait is bounded: the client retries some failures (lifecycle errors,
// reconnects) forever, so the script ends with process.exit() in every case.
import { createClient } from "rivetkit/client";
import WebSocket from "ws";

const USAGE = "usage: node scenarios.mjs SCENARIO json|cbor|bare http://HOST:PORT";
const [scenario, encoding, endpoint] = process.argv.slice(2);
const RUN_ID = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const OVERALL_TIMEOUT_MS = Number(process.env.SCENARIO_TIMEOUT_MS ?? 40_000);
// Multiplies every bounded wait below: through the Rivet Engine each first call also
// creates the actor through the engine's workflows, which takes seconds on a busy machine.
const WAIT_SCALE = Number(process.env.SCENARIO_WAIT_SCALE ?? 1);

// ---------------------------------------------------------------- helpers

class ScenarioFailure extends Error {}

function check(condition, message) {
	if (!condition) throw new ScenarioFailure(message);
}

function show(value) {
	return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
}

function checkEqual(actual, expected, what) {
	check(show(actual) === show(expected), `${what}: expected ${show(expected)}, got ${show(actual)}`);
}

function withTimeout(promise, ms, what) {
	ms *= WAIT_SCALE;
	let timer;
	return Promise.race([
		promise,
		new Promise((_, reject) => {
			timer = setTimeout(() => reject(new ScenarioFailure(`timed out after ${ms} ms: ${what}`)), ms);
		}),
	]).finally(() => clearTimeout(timer));
}

/** The error `promise` rejects with (fails if it resolves). */
async function rejection(promise, ms, what) {
	let value;
	try {
		value = await withTimeout(promise, ms, what);
	} catch (err) {
		if (err instanceof ScenarioFailure) throw err;
		return err;
	}
	throw new ScenarioFailure(`${what}: expected an error, got ${show(value)}`);
}

/** The parts of a client error the tests compare. */
function errorInfo(err) {
	return {
		group: err?.group ?? null,
		code: err?.code ?? null,
		message: String(err?.message ?? err),
		metadata: err?.metadata ?? null,
	};
}

/**
 * A notifier: `notify()` after anything changes; `wait(predicate, ms, what)`
 * resolves once predicate() holds (checked now and after every notify), or fails
 * after `ms`.
 */
function notifier() {
	const waiters = new Set();
	return {
		notify() {
			for (const waiter of [...waiters]) waiter();
		},
		wait(predicate, ms, what) {
			let waiter;
			return withTimeout(
				new Promise((resolve) => {
					waiter = () => {
						if (predicate()) resolve();
					};
					waiters.add(waiter);
					waiter();
				}),
				ms,
				what,
			).finally(() => waiters.delete(waiter));
		},
	};
}

// Frames received by each WebSocket the client opens, classified by message kind.
// The client drops events nobody listens to, so "events only reach subscribed
// connections" can only be seen on the wire.
const sockets = [];
const originalEmit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function (event, ...args) {
	if (event === "message") {
		let entry = sockets.find((s) => s.ws === this);
		if (!entry) {
			entry = { ws: this, url: this.url, kinds: [] };
			sockets.push(entry);
		}
		entry.kinds.push(frameKind(args[0], args[1]));
	}
	return originalEmit.call(this, event, ...args);
};

const TAGS = ["Init", "Error", "ActionResponse", "Event"];

/** The ToClient union tag of a `connect` frame, in this run's encoding. */
function frameKind(data, isBinary) {
	const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
	if (!isBinary) {
		try {
			return JSON.parse(bytes.toString("utf8"))?.body?.tag ?? "?";
		} catch {
			return "text";
		}
	}
	if (encoding === "bare") return TAGS[bytes[2]] ?? "?";
	// cbor: {body: {tag: "<name>", val}}; the tag is a CBOR text string.
	for (const tag of TAGS) {
		const needle = Buffer.concat([Buffer.from([0x60 + tag.length]), Buffer.from(tag)]);
		if (bytes.includes(needle)) return tag;
	}
	return "?";
}

/** Resolves at the first line on stdin (the caller's "restart done"). */
function restartSignal() {
	return new Promise((resolve) => {
		process.stdin.setEncoding("utf8");
		process.stdin.once("data", () => {
			process.stdin.pause();
			resolve();
		});
	});
}

function newClient() {
	return createClient({ endpoint, encoding });
}

/** Opens `handle.connect()` and waits for Init (bounded). */
async function connect(handle, what = "connect") {
	const conn = handle.connect();
	const errors = [];
	conn.onError((err) => errors.push(errorInfo(err)));
	try {
		await withTimeout(conn.ready, 10_000, `${what}: waiting for Init`);
	} catch (err) {
		throw new ScenarioFailure(`${err.message} (connection errors: ${show(errors)})`);
	}
	return conn;
}

function dispose(thing) {
	return withTimeout(Promise.resolve(thing?.dispose?.()), 5_000, "dispose").catch(() => {});
}

// ---------------------------------------------------------------- scenarios

const SCENARIOS = {
	/** Actions over plain HTTP: query-gateway handle and direct (getForId) handle. */
	async "actions-http"(client) {
		const handle = client.counter.getOrCreate([`http-${encoding}-${RUN_ID}`]);
		checkEqual(await handle.increment(2), 2, "increment(2)");
		checkEqual(await handle.increment(3), 5, "increment(3)");
		checkEqual(await handle.getCount(), 5, "getCount()");
		const values = ["text ü€", 42, -7, 1.5, true, null, [1, [2, "x"]], { a: { b: [null, false] } }];
		checkEqual(await handle.echo(...values), values, "echo(...)");
		checkEqual(await handle.echo(), [], "echo()");
		// Values outside JSON: bigint, bytes, and a user array that looks like a compat tag.
		const [big, bytes, tagLike] = await handle.echo(12345678901234567890n, new Uint8Array([1, 2, 255]), ["$x", 1]);
		checkEqual(big, 12345678901234567890n, "bigint round trip");
		check(bytes instanceof Uint8Array, `Uint8Array round trip gave ${show(bytes)}`);
		checkEqual(Array.from(bytes), [1, 2, 255], "Uint8Array round trip");
		checkEqual(tagLike, ["$x", 1], "a ['$x', 1] array round trip");
		const actorId = await handle.resolve();
		check(typeof actorId === "string" && actorId.length > 0, `resolve() gave ${show(actorId)}`);
		const byId = client.counter.getForId(actorId);
		checkEqual(await byId.increment(1), 6, "getForId handle increment(1)");
		const missing = await rejection(handle.noSuchAction(), 10_000, "calling an unknown action");
		return { actorId, unknownAction: errorInfo(missing) };
	},

	/**
	 * An oversize call while another is in flight on the same connection: the server
	 * lets the held action reply before it closes the socket, so only the oversize call
	 * fails (message/incoming_too_long), and the connection comes back.
	 */
	async oversize(client) {
		const handle = client.counter.getOrCreate([`oversize-${encoding}-${RUN_ID}`]);
		const conn = await connect(handle);
		const held = conn.hold();
		// Frames are read in order: once this replies, `hold` runs on the server.
		checkEqual(await conn.increment(1), 1, "increment while hold is in flight");
		const big = conn.echo("x".repeat(70_000));
		// Awaited below; marked handled now because it may reject before release()
		// returns (through the engine the held reply and the close can overtake
		// release()'s HTTP answer), and Node ends on an unhandled rejection.
		big.catch(() => {});
		// Give the server a moment to read the big frame before the held action ends
		// (had it not read it yet, the observations below would be the same).
		await new Promise((resolve) => setTimeout(resolve, 100));
		await handle.release();
		const heldResult = await withTimeout(held, 10_000, "the held action");
		const oversizeError = await rejection(big, 10_000, "the oversize call");
		await dispose(conn);
		return { held: heldResult, oversize: errorInfo(oversizeError) };
	},

	/** Queue sends (`POST …/queue/{name}`), with and without waiting for completion. */
	async queue(client) {
		const handle = client.mailbox.getOrCreate([`queue-${encoding}-${RUN_ID}`]);
		const plain = await handle.send("jobs", { job: 1 });
		const waited = await handle.send("tasks", { t: 7 }, { wait: true, timeout: 5_000 });
		const noBody = await handle.send("tasks", undefined, { wait: true, timeout: 5_000 });
		const timedOut = await handle.send("jobs", { job: 2 }, { wait: true, timeout: 10 });
		const unknown = await handle.send("nope", { x: 1 });
		const invalid = await rejection(handle.send("jobs", "not a dict"), 10_000, "an invalid body");
		const forbidden = await rejection(handle.send("closed", 1), 10_000, "a refused publisher");
		// The direct form (`/gateway/{actorId}/queue/{name}`) of a getForId handle.
		const byId = client.mailbox.getForId(await handle.resolve());
		const direct = await byId.send("tasks", "direct", { wait: true, timeout: 5_000 });
		await byId.send("jobs", { job: 3 });
		const pending = await handle.pending();
		return {
			plain: plain ?? null,
			waited,
			noBody,
			timedOut,
			unknown: unknown ?? null,
			invalid: errorInfo(invalid),
			forbidden: errorInfo(forbidden),
			direct,
			pending,
		};
	},

	/** Actions over one WebSocket connection, several in flight at once. */
	async "actions-conn"(client) {
		const handle = client.counter.getOrCreate([`conn-${encoding}-${RUN_ID}`]);
		const conn = await connect(handle);
		checkEqual(await conn.increment(2), 2, "conn increment(2)");
		const results = await Promise.all([1, 2, 3, 4].map((n) => conn.increment(n)));
		// In flight together: each sees a distinct count, the last one sees them all.
		checkEqual(new Set(results).size, 4, `distinct results of four concurrent increments ${show(results)}`);
		checkEqual(Math.max(...results), 12, "the last of four concurrent increments");
		checkEqual(await conn.getCount(), 12, "conn getCount()");
		const values = ["text ü€", 42, 1.5, false, null, { nested: [1, { deep: "yes" }] }];
		checkEqual(await conn.echo(...values), values, "conn echo(...)");
		// The same actor over HTTP sees the connection's changes.
		checkEqual(await handle.getCount(), 12, "HTTP getCount() after conn increments");
		const missing = await rejection(conn.noSuchAction(), 10_000, "conn: calling an unknown action");
		// The connection survives an action error.
		checkEqual(await conn.getCount(), 12, "conn getCount() after an error");
		await dispose(conn);
		return { results, unknownAction: errorInfo(missing) };
	},

	/**
	 * Connection hibernation: the actor sleeps while the connection stays open; the
	 * next action wakes it over the same socket, and the subscription still holds.
	 */
	async hibernation(client) {
		const handle = client.counter.getOrCreate([`nap-${encoding}-${RUN_ID}`]);
		const conn = await connect(handle);
		const statuses = [];
		conn.onStatusChange?.((status) => statuses.push(status));
		const seen = [];
		const arrived = notifier();
		conn.on("newCount", (n) => {
			seen.push(n);
			arrived.notify();
		});
		checkEqual(await conn.increment(1), 1, "increment before the nap");
		await conn.nap();
		await new Promise((resolve) => setTimeout(resolve, 300));
		checkEqual(await conn.increment(2), 3, "increment after the nap (wakes the actor)");
		await arrived.wait(() => seen.length >= 2, 5_000, "two newCount events");
		const naps = await conn.getNaps();
		await dispose(conn);
		return { seen, naps, sockets: sockets.length, statuses };
	},

	/** Broadcasts reach the subscribed connection only; unsubscribing stops them. */
	async events(client) {
		const handle = client.counter.getOrCreate([`events-${encoding}-${RUN_ID}`]);
		const subscribed = await connect(handle, "subscribed connection");
		const seen = [];
		const arrived = notifier();
		const off = subscribed.on("newCount", (n) => {
			seen.push(n);
			arrived.notify();
		});
		// A round trip on the subscribed connection: its subscription was read first.
		await subscribed.getCount();
		const other = await connect(handle, "unsubscribed connection");
		for (const n of [1, 2, 3]) await other.increment(n);
		await arrived.wait(() => seen.length >= 3, 5_000, "three newCount events");
		checkEqual(seen, [1, 3, 6], "events on the subscribed connection");

		const wsUrls = sockets.map((s) => s.url);
		check(wsUrls.length === 2, `expected 2 WebSockets, saw ${show(wsUrls)}`);
		const [subUrl, otherUrl] = wsUrls;
		check(subUrl === otherUrl, "both connections use the same query-gateway URL");
		const perSocket = sockets.map((s) => ({
			Init: s.kinds.filter((k) => k === "Init").length,
			Event: s.kinds.filter((k) => k === "Event").length,
			ActionResponse: s.kinds.filter((k) => k === "ActionResponse").length,
		}));
		checkEqual(perSocket[1].Event, 0, "Event frames sent to the unsubscribed connection");
		checkEqual(perSocket[0].Event, 3, "Event frames sent to the subscribed connection");

		// Unsubscribe, then make sure the server read it before more increments.
		off();
		await subscribed.getCount();
		await other.increment(10);
		// A later subscriber-side round trip orders the check after the broadcast.
		await subscribed.getCount();
		checkEqual(sockets[0].kinds.filter((k) => k === "Event").length, 3, "Event frames after unsubscribing");
		checkEqual(seen, [1, 3, 6], "events after unsubscribing");

		// Re-subscribing on the other connection: now it gets them.
		const otherSeen = [];
		const otherArrived = notifier();
		other.on("newCount", (n) => {
			otherSeen.push(n);
			otherArrived.notify();
		});
		await other.getCount();
		await handle.increment(100);
		await otherArrived.wait(() => otherSeen.length >= 1, 5_000, "newCount after subscribing late");
		checkEqual(otherSeen, [116], "events on the late subscriber");
		await Promise.all([dispose(subscribed), dispose(other)]);
		return { seen, perSocket, otherSeen };
	},

	/** Connection params reach the actor; on_before_connect rejections reach the client. */
	async "conn-params"(client) {
		const key = [`params-${encoding}-${RUN_ID}`];
		const good = client.guarded.getOrCreate(key, { params: { token: "secret", user: "ann" } });
		const conn = await connect(good, "connect with the right token");
		const overConn = await conn.whoami();
		checkEqual(overConn, { user: "ann", joined: 1 }, "whoami over the connection");
		// Over HTTP: x-rivet-conn-params; each action is a transient connection.
		const overHttp = await good.whoami();
		checkEqual(overHttp.user, "ann", "whoami over HTTP: params.user");

		// Rejected connection: the error arrives through onError, the conn never opens.
		const bad = client.guarded.getOrCreate(key, { params: { token: "wrong" } });
		const badConn = bad.connect();
		const badErrors = [];
		const failed = notifier();
		badConn.onError((err) => {
			badErrors.push(err);
			failed.notify();
		});
		await failed.wait(() => badErrors.length > 0, 10_000, "onError for a rejected connection");
		const rejected = errorInfo(badErrors[0]);
		const statusAfter = badConn.connStatus;
		// An action on the rejected connection fails too, with the same error.
		const badCall = await rejection(badConn.whoami(), 5_000, "action on a rejected connection");

		// No params at all, over HTTP.
		const none = client.guarded.getOrCreate(key);
		const noParamsHttp = await rejection(none.whoami(), 10_000, "HTTP action without params");
		const wrongHttp = await rejection(bad.whoami(), 10_000, "HTTP action with the wrong token");
		await Promise.all([dispose(conn), dispose(badConn)]);
		return {
			overConn,
			overHttp,
			rejected,
			statusAfter,
			badCall: errorInfo(badCall),
			noParamsHttp: errorInfo(noParamsHttp),
			wrongHttp: errorInfo(wrongHttp),
		};
	},

	/** UserError code, message and metadata over HTTP and over a connection. */
	async "user-error"(client) {
		const handle = client.counter.getOrCreate([`error-${encoding}-${RUN_ID}`]);
		const detail = { a: 1, list: ["x", null], nested: { ok: true } };
		const http = await rejection(handle.fail("custom_code", detail), 10_000, "HTTP fail()");
		const httpPlain = await rejection(handle.failPlain(), 10_000, "HTTP failPlain()");
		const conn = await connect(handle);
		const overConn = await rejection(conn.fail("conn_code", detail), 10_000, "conn fail()");
		const connPlain = await rejection(conn.failPlain(), 10_000, "conn failPlain()");
		checkEqual(await conn.getCount(), 0, "conn still usable after errors");
		await dispose(conn);
		return {
			http: errorInfo(http),
			httpPlain: errorInfo(httpPlain),
			conn: errorInfo(overConn),
			connPlain: errorInfo(connPlain),
		};
	},

	/** get vs getOrCreate vs create vs getForId. */
	async lookup(client) {
		const missingKey = [`missing-${encoding}-${RUN_ID}`];
		const t0 = performance.now();
		const missing = await rejection(
			client.counter.get(missingKey).getCount(),
			15_000,
			"get() of a key nobody created",
		);
		const missingMs = Math.round(performance.now() - t0);

		const key = [`lookup-${encoding}-${RUN_ID}`];
		checkEqual(await client.counter.getOrCreate(key).increment(1), 1, "getOrCreate increment");
		checkEqual(await client.counter.getOrCreate(key).increment(1), 2, "getOrCreate again: same actor");
		checkEqual(await client.counter.get(key).getCount(), 2, "get() of an existing key");
		const idByGet = await client.counter.get(key).resolve();
		const idByGetOrCreate = await client.counter.getOrCreate(key).resolve();
		checkEqual(idByGet, idByGetOrCreate, "get().resolve() vs getOrCreate().resolve()");
		checkEqual(await client.counter.getForId(idByGet).getCount(), 2, "getForId getCount");

		const createdKey = [`created-${encoding}-${RUN_ID}`];
		const created = await client.counter.create(createdKey);
		checkEqual(await created.increment(5), 5, "create() handle increment");
		const createdId = await created.resolve();
		checkEqual(await client.counter.get(createdKey).getCount(), 5, "get() of a created key");
		check(createdId !== idByGet, "create() made a new actor");
		const duplicate = await rejection(client.counter.create(createdKey), 10_000, "create() of a taken key");
		const duplicateOfGetOrCreate = await rejection(
			client.counter.create(key),
			10_000,
			"create() of a key made by getOrCreate",
		);
		checkEqual(await client.counter.get(createdKey).getCount(), 5, "the taken key's actor is untouched");

		const unknownId = await rejection(
			client.counter.getForId("nosuchactorid0000000000000000").getCount(),
			10_000,
			"getForId of an unknown id",
		);
		// Keys with several parts are distinct actors.
		checkEqual(await client.counter.getOrCreate([key[0], "sub"]).increment(7), 7, "two-part key");
		checkEqual(await client.counter.get(key).getCount(), 2, "one-part key unaffected");
		return {
			missing: errorInfo(missing),
			missingMs,
			duplicate: errorInfo(duplicate),
			duplicateOfGetOrCreate: errorInfo(duplicateOfGetOrCreate),
			unknownId: errorInfo(unknownId),
		};
	},

	/** Creation input: create({input}), getOrCreate({createWithInput}) over HTTP and WS. */
	async input(client) {
		const input = { hello: "world", n: 1, list: [1, "two", null], nested: { ok: true } };
		const created = await client.counter.create([`in-create-${encoding}-${RUN_ID}`], { input });
		const viaCreate = await created.getInput();
		checkEqual(viaCreate, input, "create({input}) -> create_state input");

		const key = [`in-goc-${encoding}-${RUN_ID}`];
		const goc = client.counter.getOrCreate(key, { createWithInput: { from: "getOrCreate" } });
		const viaGetOrCreate = await goc.getInput();
		checkEqual(viaGetOrCreate, { from: "getOrCreate" }, "getOrCreate({createWithInput}) input");
		const again = client.counter.getOrCreate(key, { createWithInput: { from: "second" } });
		checkEqual(await again.getInput(), { from: "getOrCreate" }, "input of an existing actor unchanged");

		const connKey = [`in-conn-${encoding}-${RUN_ID}`];
		const conn = await connect(client.counter.getOrCreate(connKey, { createWithInput: "over ws" }));
		const viaConn = await conn.getInput();
		checkEqual(viaConn, "over ws", "getOrCreate({createWithInput}).connect() input");
		await dispose(conn);

		const none = await client.counter.create([`in-none-${encoding}-${RUN_ID}`]);
		const withoutInput = await none.getInput();
		checkEqual(withoutInput, null, "create() without input");
		return { viaCreate, viaGetOrCreate, viaConn, withoutInput };
	},

	/** handle.fetch() reaching on_request. */
	async "raw-http"(client) {
		const handle = client.web.getOrCreate([`raw-${encoding}-${RUN_ID}`]);
		const post = await handle.fetch("/hello/world?x=1&y=two", {
			method: "POST",
			body: "payload ü",
			headers: { "x-custom": "custom value" },
		});
		const postBody = await post.json();
		checkEqual(post.status, 201, "POST status");
		checkEqual(post.headers.get("x-from-actor"), "yes", "response header from the actor");
		checkEqual(
			postBody,
			{
				method: "POST",
				path: "/hello/world",
				query: "x=1&y=two",
				body: "payload ü",
				header: "custom value",
				hits: 1,
			},
			"what on_request saw",
		);
		const get = await handle.fetch("plain");
		checkEqual(get.status, 200, "GET status");
		const getBody = await get.json();
		checkEqual([getBody.method, getBody.path, getBody.query, getBody.hits], ["GET", "/plain", "", 2], "GET");
		const failed = await handle.fetch("/fail");
		const failedBody = await failed.text();
		let failedJson = null;
		try {
			failedJson = JSON.parse(failedBody);
		} catch {
			// reported below
		}
		check(failedJson !== null, `error body is JSON: ${failedBody}`);
		checkEqual(await handle.stats(), { hits: 2, frames: 0 }, "state after raw requests");
		const id = await handle.resolve();
		const direct = await client.web.getForId(id).fetch("/direct");
		checkEqual((await direct.json()).hits, 3, "fetch through a getForId handle");
		return { failedStatus: failed.status, failedError: failedJson };
	},

	/** handle.webSocket() reaching on_websocket. */
	async "raw-ws"(client) {
		const handle = client.web.getOrCreate([`rawws-${encoding}-${RUN_ID}`]);
		const ws = await withTimeout(handle.webSocket("/chat?room=1"), 10_000, "opening the raw WebSocket");
		const received = [];
		const got = notifier();
		let closed = null;
		ws.addEventListener("message", (ev) => {
			const data = ev.data;
			received.push(typeof data === "string" ? data : Array.from(new Uint8Array(data)));
			got.notify();
		});
		ws.addEventListener("close", (ev) => {
			closed = { code: ev.code, reason: ev.reason };
			got.notify();
		});
		await got.wait(() => received.length >= 1, 10_000, "the greeting");
		ws.send("hi");
		await got.wait(() => received.length >= 2, 5_000, "the echo of a text frame");
		ws.send(new Uint8Array([1, 2, 3]));
		await got.wait(() => received.length >= 3, 5_000, "the echo of a binary frame");
		checkEqual(received, ["hello /chat?room=1", "echo hi #1", [3, 2, 1]], "raw WebSocket frames");
		ws.close(1000, "done");
		await got.wait(() => closed !== null, 5_000, "the close");
		checkEqual(await handle.stats(), { hits: 0, frames: 2 }, "state after the raw WebSocket");
		return { received, closed };
	},

	/**
	 * Survives a server restart: after the "connected" line the caller restarts the
	 * server on the same data dir keeping the listening socket open (SIGHUP, or a
	 * stop and a start on a socket the caller holds).
	 *
	 * With SCENARIO_RESTART_SIGNAL=stdin the caller writes a line on stdin once the
	 * restart is done, and the socket may survive it (an envoy restart behind a Rivet
	 * Engine, whose gateway keeps the client's socket open): the scenario then does
	 * not wait for a disconnection, only for the connection to be connected.
	 */
	async reconnect(client) {
		// No hooks: the unmodified client must come back by itself. It retries a
		// reconnect only for errors it classifies as retryable, and a refused TCP
		// connection is not one, so the server restarts with its listening socket
		// held open (SIGHUP in place, or a socket held by the caller, as systemd
		// does): the reconnect waits in the backlog for the next server.
		const handle = client.counter.getOrCreate([`reconnect-${encoding}-${RUN_ID}`]);
		const conn = await connect(handle);
		const statuses = [];
		const events = [];
		const changed = notifier();
		let opens = 0;
		conn.onStatusChange((s) => {
			statuses.push(s);
			changed.notify();
		});
		conn.onOpen(() => {
			opens++;
			changed.notify();
		});
		conn.on("newCount", (n) => {
			events.push(n);
			changed.notify();
		});
		const errors = [];
		conn.onError((err) => {
			errors.push(errorInfo(err));
			changed.notify();
		});
		checkEqual(await conn.increment(5), 5, "increment(5) before the restart");
		await changed.wait(() => events.includes(5), 5_000, "newCount 5 before the restart");
		const opensBefore = opens;
		console.log(JSON.stringify({ phase: "connected", scenario, encoding }));

		const signalled = process.env.SCENARIO_RESTART_SIGNAL === "stdin";
		if (signalled) {
			await withTimeout(restartSignal(), 60_000, "the caller's restart-done line on stdin");
		} else {
			await changed.wait(
				() => statuses.includes("disconnected"),
				10_000,
				"the connection noticing the server stop",
			);
		}
		// "idle" after "disconnected" means the client stopped retrying.
		// Signalled, the socket may have stayed open: "connected" without a new open.
		await changed.wait(
			() =>
				((signalled || opens > opensBefore) && conn.connStatus === "connected") ||
				conn.connStatus === "idle",
			15_000,
			`the connection reopening by itself (statuses ${show(statuses)}, errors ${show(errors)})`,
		);
		check(
			conn.connStatus === "connected",
			`the client gave up reconnecting (statuses ${show(statuses)}, errors ${show(errors)})`,
		);
		const afterRestart = await withTimeout(conn.getCount(), 10_000, "getCount after reconnect");
		checkEqual(afterRestart, 5, "state after the restart");
		checkEqual(await withTimeout(conn.increment(1), 10_000, "increment after reconnect"), 6, "increment(1)");
		await changed.wait(() => events.includes(6), 5_000, "newCount 6 after the restart (re-subscribed)");
		const connects = await withTimeout(conn.getConnects(), 10_000, "getConnects");
		await dispose(conn);
		return { statuses, events, errors, opens: opens - opensBefore, sockets: sockets.length, connects };
	},
};

// ---------------------------------------------------------------- main

function finish(result, status) {
	console.log(JSON.stringify({ scenario, encoding, ...result }));
	process.exit(status);
}

if (!SCENARIOS[scenario] || !["json", "cbor", "bare"].includes(encoding) || !endpoint) {
	console.error(USAGE);
	console.error(`scenarios: ${Object.keys(SCENARIOS).join(", ")}`);
	process.exit(2);
}

setTimeout(() => {
	console.error(`scenarios.mjs ${scenario} ${encoding}: FAILED: no result within ${OVERALL_TIMEOUT_MS} ms`);
	finish({ ok: false, error: `no result within ${OVERALL_TIMEOUT_MS} ms` }, 1);
}, OVERALL_TIMEOUT_MS).unref();

const client = newClient();
try {
	const observed = await SCENARIOS[scenario](client);
	await withTimeout(client.dispose(), 5_000, "client.dispose()").catch(() => {});
	finish({ ok: true, ...observed }, 0);
} catch (err) {
	const message = err instanceof ScenarioFailure ? err.message : `${err?.name ?? "Error"}: ${err?.message ?? err}`;
	console.error(`scenarios.mjs ${scenario} ${encoding}: FAILED: ${message}`);
	if (!(err instanceof ScenarioFailure) && err?.stack) console.error(err.stack);
	finish({ ok: false, error: message, ...(err?.group ? { errorInfo: errorInfo(err) } : {}) }, 1);
}
