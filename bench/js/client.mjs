// The official RivetKit client (`createClient` from `rivetkit/client` 2.3.19)
// against any server speaking the RivetKit client protocol, with the `counter`
// actor (increment(n) -> count, broadcasts newCount; getCount()).
//
//   node bench/js/client.mjs latency    --mode conn|conn-quiet|handle [--n 2000] [--warmup 200]
//   node bench/js/client.mjs throughput --mode conn|handle [--actors 64] [--seconds 10]
//   node bench/js/client.mjs conns      [--n 10000] [--concurrency 64] [--settle-s 2] [--open-s 120]
//   node bench/js/client.mjs cold       [--n 20]
//   node bench/js/client.mjs awake      [--n 200] [--concurrency 8] [--settle-s 2]
//
// common: --endpoint http://127.0.0.1:6420 --encoding bare|cbor|json
//         --server-pids P1,P2 (for server CPU and RSS) --label TEXT --out FILE
//         --timeout-s S (the whole command gives up after S seconds: 300)
//         --call-timeout-s S (one call gives up after S seconds: 30; longer under valgrind)
//
// Modes (as in the anchors harness bench.mjs): `conn` = one WebSocket per caller
// (handle.connect(), subscribed to newCount); `conn-quiet` = the same socket not
// subscribed (no event follows a reply); `handle` = every call is an HTTP POST through
// the getOrCreate handle.
//
// latency: one caller, one actor, increment(1) awaited in a loop; the --n calls
// after --warmup are timed. throughput: --actors actors, one caller loop each,
// for --seconds; calls/s counts calls that finished inside the window. conns:
// one actor; --n connections are opened (--concurrency at a time), each
// subscribed to newCount and checked with getCount(); the server's RSS growth
// over a one-connection baseline, divided by --n, is the memory per idle
// connection; then one increment() must reach every connection as an event.
// Opening stops after --open-s seconds; the figure is then per connection opened.
// cold: --n new actors one after another, each getOrCreate([new key]).increment(1)
// timed (creation, start and the first call). awake: --n new actors woken (--concurrency
// at a time) and kept awake; the --server-pids' RSS growth / --n, after --settle-s.
//
// Through a Rivet Engine the client reads RIVET_TOKEN, RIVET_NAMESPACE and RIVET_POOL
// from the environment.
//
// Prints one JSON line per result; the process ends with process.exit() so that
// a client retrying forever cannot keep it alive.
import {
	deadline,
	importPackage,
	nowNs,
	parseArgs,
	pool,
	readProcs,
	report,
	sleep,
	stats,
	usSince,
	withTimeout,
} from "./common.mjs";

const USAGE = "usage: node client.mjs latency|throughput|conns [--flags], see the header";
const { command, opts } = parseArgs(
	process.argv.slice(2),
	{
		endpoint: "string",
		encoding: "string",
		mode: "string",
		n: "int",
		warmup: "int",
		actors: "int",
		seconds: "number",
		concurrency: "int",
		"settle-s": "number",
		"open-s": "number",
		"timeout-s": "number",
		"call-timeout-s": "number",
		"server-pids": "string",
		label: "string",
		out: "string",
	},
	USAGE,
);
deadline(opts["timeout-s"] ?? 300, `client.mjs ${command}`);

const { module: rivetClient, version: RIVETKIT_VERSION } = await importPackage("rivetkit", "./client");
const ENDPOINT = opts.endpoint ?? "http://127.0.0.1:6420";
const ENCODING = opts.encoding ?? "bare";
const SERVER_PIDS = (opts["server-pids"] ?? "").split(",").filter(Boolean).map(Number);
const RUN_ID = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const CALL_TIMEOUT_MS = (opts["call-timeout-s"] ?? 30) * 1000;

const newClient = () => rivetClient.createClient({ endpoint: ENDPOINT, encoding: ENCODING });

function emit(result) {
	report(
		{
			label: opts.label ?? null,
			client: `rivetkit ${RIVETKIT_VERSION} (node)`,
			bench: command,
			endpoint: ENDPOINT,
			encoding: ENCODING,
			...result,
		},
		opts.out,
	);
}

/** One caller of one actor: `call(n)` is increment(n) over HTTP or a WebSocket. */
async function openCaller(client, mode, key) {
	const handle = client.counter.getOrCreate(key);
	if (mode === "handle") {
		return { call: (n) => handle.increment(n), close: async () => {} };
	}
	if (mode === "conn" || mode === "conn-quiet") {
		const conn = handle.connect();
		const caller = { events: 0 };
		if (mode === "conn") {
			conn.on("newCount", () => {
				caller.events++;
			});
		}
		caller.call = (n) => conn.increment(n);
		caller.close = () => withTimeout(conn.dispose(), 5000).catch(() => {});
		return caller;
	}
	console.error(`--mode must be conn, conn-quiet or handle, got ${mode}`);
	process.exit(2);
}

/** `call()` retried up to 3 times: waking many actors at once through a busy engine
 * can time out one of them without saying anything about the steady state. */
async function wakeCall(call) {
	for (let attempt = 1; ; attempt++) {
		try {
			return await withTimeout(call(), CALL_TIMEOUT_MS, "wake");
		} catch (err) {
			if (attempt >= 3) throw err;
			await sleep(1000);
		}
	}
}

/** Server CPU per call and client CPU, between two readings. */
function cpuFields(before, after, clientBefore, calls) {
	const serverMs = after.cpuMs - before.cpuMs;
	const wallMs = after.at - before.at;
	const client = process.cpuUsage(clientBefore);
	const clientMs = (client.user + client.system) / 1000;
	return {
		server_cpu_ms_per_call: calls ? Number((serverMs / calls).toFixed(3)) : null,
		server_cpu_percent_of_core: Number(((serverMs / wallMs) * 100).toFixed(1)),
		client_cpu_percent_of_core: Number(((clientMs / wallMs) * 100).toFixed(1)),
	};
}

async function latency() {
	const mode = opts.mode ?? "conn";
	const n = opts.n ?? 2000;
	const warmup = opts.warmup ?? 200;
	const client = newClient();
	const caller = await openCaller(client, mode, [`lat-${mode}-${RUN_ID}`]);
	let count = 0;
	for (let i = 0; i < warmup; i++) count = await withTimeout(caller.call(1), CALL_TIMEOUT_MS, "call");
	const samples = [];
	const before = readProcs(SERVER_PIDS);
	const clientBefore = process.cpuUsage();
	for (let i = 0; i < n; i++) {
		const t = nowNs();
		count = await withTimeout(caller.call(1), CALL_TIMEOUT_MS, "call");
		samples.push(usSince(t));
	}
	const after = readProcs(SERVER_PIDS);
	emit({
		mode,
		n,
		warmup,
		latency_us: stats(samples),
		calls_per_s: Number(((n * 1000) / (after.at - before.at)).toFixed(1)),
		count_matches: count === warmup + n,
		events_received: caller.events,
		...cpuFields(before, after, clientBefore, n),
	});
	await caller.close();
	await withTimeout(client.dispose(), 5000).catch(() => {});
}

async function throughput() {
	const mode = opts.mode ?? "conn";
	const actors = opts.actors ?? 64;
	const seconds = opts.seconds ?? 10;
	const client = newClient();
	// Wake every actor (and open its connection) before the clock starts.
	const callers = [];
	await pool(actors, 8, async (i) => {
		const caller = await openCaller(client, mode, [`tp-${mode}-${RUN_ID}-${i}`]);
		await wakeCall(() => caller.call(1));
		callers.push(caller);
	});
	const samples = [];
	let errors = 0;
	const before = readProcs(SERVER_PIDS);
	const clientBefore = process.cpuUsage();
	const end = performance.now() + seconds * 1000;
	const loop = async (caller) => {
		while (performance.now() < end) {
			const t = nowNs();
			try {
				await withTimeout(caller.call(1), CALL_TIMEOUT_MS, "call");
				if (performance.now() <= end) samples.push(usSince(t));
			} catch {
				errors++;
				await sleep(20); // do not spin on a failing server
			}
		}
	};
	const loops = Promise.all(callers.map(loop));
	await sleep(seconds * 1000);
	const after = readProcs(SERVER_PIDS);
	await withTimeout(loops, CALL_TIMEOUT_MS, "drain").catch(() => {});
	emit({
		mode,
		actors,
		seconds,
		calls: samples.length,
		calls_per_s: Number((samples.length / seconds).toFixed(1)),
		latency_us: stats(samples),
		errors,
		...cpuFields(before, after, clientBefore, samples.length),
	});
	await Promise.all(callers.map((c) => c.close()));
	await withTimeout(client.dispose(), 10_000).catch(() => {});
}

async function conns() {
	const n = opts.n ?? 10_000;
	const concurrency = opts.concurrency ?? 64;
	const settleMs = (opts["settle-s"] ?? 2) * 1000;
	const key = [`conns-${RUN_ID}`];
	const client = newClient();
	// Baseline: the actor awake with one connection, so neither the actor nor the
	// client's first connection is counted per connection.
	const first = await openCaller(client, "conn", key);
	await withTimeout(first.call(0), CALL_TIMEOUT_MS, "first call");
	await sleep(settleMs);
	const before = readProcs(SERVER_PIDS);
	const handle = client.counter.getOrCreate(key);
	const open = [];
	let events = 0;
	let failed = 0;
	const t0 = performance.now();
	const openBudgetMs = (opts["open-s"] ?? 120) * 1000;
	let skipped = 0;
	await pool(n, concurrency, async () => {
		if (performance.now() - t0 > openBudgetMs) {
			skipped++;
			return;
		}
		const conn = handle.connect();
		conn.on("newCount", () => {
			events++;
		});
		try {
			await withTimeout(conn.getCount(), CALL_TIMEOUT_MS, "open");
			open.push(conn);
		} catch {
			failed++;
			conn.dispose().catch(() => {});
		}
	});
	const openS = (performance.now() - t0) / 1000;
	await sleep(settleMs);
	const after = readProcs(SERVER_PIDS);
	// Every open connection must get the event of one increment.
	const t1 = performance.now();
	await withTimeout(first.call(1), CALL_TIMEOUT_MS, "broadcast call");
	while (events < open.length && performance.now() - t1 < 30_000) await sleep(20);
	const growthKb = after.rssKb - before.rssKb;
	emit({
		n,
		concurrency,
		open: open.length,
		failed,
		not_tried: skipped,
		open_s: Number(openS.toFixed(2)),
		rss_before_kb: before.rssKb,
		rss_after_kb: after.rssKb,
		rss_growth_kb: growthKb,
		rss_kb_per_conn: open.length ? Number((growthKb / open.length).toFixed(2)) : null,
		events_delivered: events,
		broadcast_ms: Number((performance.now() - t1).toFixed(1)),
		client_rss_kb: Math.round(process.memoryUsage().rss / 1024),
	});
	await withTimeout(client.dispose(), 20_000).catch(() => {});
}

async function cold() {
	const n = opts.n ?? 20;
	const client = newClient();
	const samples = [];
	for (let i = 0; i < n; i++) {
		const t = nowNs();
		await withTimeout(client.counter.getOrCreate([`cold-${RUN_ID}-${i}`]).increment(1), CALL_TIMEOUT_MS, "cold call");
		samples.push(usSince(t));
	}
	emit({ n, cold_us: stats(samples) });
	await withTimeout(client.dispose(), 5000).catch(() => {});
}

async function awake() {
	const n = opts.n ?? 200;
	const client = newClient();
	const before = readProcs(SERVER_PIDS);
	let woken = 0;
	await pool(n, opts.concurrency ?? 8, async (i) => {
		await wakeCall(() => client.counter.getOrCreate([`awake-${RUN_ID}-${i}`]).increment(1));
		woken++;
	});
	await sleep((opts["settle-s"] ?? 2) * 1000);
	const after = readProcs(SERVER_PIDS);
	emit({ n, woken, rss_kb_per_actor: Number(((after.rssKb - before.rssKb) / woken).toFixed(1)) });
	await withTimeout(client.dispose(), 5000).catch(() => {});
}

const COMMANDS = { latency, throughput, conns, cold, awake };
if (!COMMANDS[command]) {
	console.error(USAGE);
	process.exit(2);
}
try {
	await COMMANDS[command]();
	process.exit(0);
} catch (err) {
	console.error(`client.mjs ${command} failed:`, err);
	process.exit(1);
}
