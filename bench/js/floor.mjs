// The floor with the libraries the official RivetKit client uses on Node 20:
// `ws` for WebSockets and the global fetch for HTTP, against bench/echo_floor.py.
//
//   node bench/js/floor.mjs ws   --url ws://127.0.0.1:6440/   [--n 2000] [--warmup 200] [--size 32]
//   node bench/js/floor.mjs http --url http://127.0.0.1:6440/ [--n 2000] [--warmup 200] [--size 32]
//   node bench/js/floor.mjs conns --url ws://127.0.0.1:6440/ --server-pids PID [--n 10000] [--concurrency 64]
//
// ws, http: one caller sends --size bytes, awaits the echo, repeats; the --n
// round trips after --warmup are timed. conns: --n idle WebSockets are opened
// (--concurrency at a time, each checked with one echo) and the server's RSS
// growth divided by --n is the memory floor per idle connection. The `ws`
// client offers permessage-deflate, as the RivetKit client's sockets do
// (--deflate off to compare). Prints one JSON line (--out FILE appends it too).
import {
	deadline,
	nowNs,
	parseArgs,
	pool,
	readProcs,
	report,
	sleep,
	requireFromModules,
	stats,
	usSince,
	withTimeout,
} from "./common.mjs";

const USAGE = "usage: node floor.mjs ws|http|conns --url URL [--flags], see the header";
const { command, opts } = parseArgs(
	process.argv.slice(2),
	{
		url: "string",
		n: "int",
		warmup: "int",
		size: "int",
		concurrency: "int",
		deflate: "string",
		"settle-s": "number",
		"server-pids": "string",
		label: "string",
		out: "string",
		"timeout-s": "number",
	},
	USAGE,
);
deadline(opts["timeout-s"] ?? 120, `floor.mjs ${command}`);
const N = opts.n ?? (command === "conns" ? 10_000 : 2000);
const WARMUP = opts.warmup ?? 200;
const PAYLOAD = Buffer.alloc(opts.size ?? 32, 7);
const TIMEOUT_MS = 10_000;

const WebSocket = requireFromModules("ws");
const WS_VERSION = requireFromModules("ws/package.json").version;
const DEFLATE = (opts.deflate ?? "on") === "on";

/** An open `ws` socket and `roundTrip()`: send the payload, await the echo. */
async function openSocket() {
	const ws = new WebSocket(opts.url, { perMessageDeflate: DEFLATE });
	await withTimeout(
		new Promise((resolve, reject) => {
			ws.once("open", resolve);
			ws.once("error", reject);
		}),
		TIMEOUT_MS,
		"open",
	);
	let pending = null;
	ws.on("message", () => pending?.());
	const roundTrip = () =>
		withTimeout(
			new Promise((resolve) => {
				pending = resolve;
				ws.send(PAYLOAD);
			}),
			TIMEOUT_MS,
			"echo",
		);
	return { ws, roundTrip };
}

async function wsFloor() {
	const { ws, roundTrip } = await openSocket();
	for (let i = 0; i < WARMUP; i++) await roundTrip();
	const samples = [];
	for (let i = 0; i < N; i++) {
		const t = nowNs();
		await roundTrip();
		samples.push(usSince(t));
	}
	ws.close();
	return { client: `ws ${WS_VERSION} (node)`, latency_us: stats(samples) };
}

async function connsFloor() {
	const pids = (opts["server-pids"] ?? "").split(",").filter(Boolean).map(Number);
	const settleMs = (opts["settle-s"] ?? 2) * 1000;
	const first = await openSocket();
	await first.roundTrip();
	await sleep(settleMs);
	const before = readProcs(pids);
	const sockets = [];
	let failed = 0;
	const t0 = performance.now();
	await pool(N, opts.concurrency ?? 64, async () => {
		try {
			const socket = await openSocket();
			await socket.roundTrip();
			sockets.push(socket.ws);
		} catch {
			failed++;
		}
	});
	const openS = (performance.now() - t0) / 1000;
	await sleep(settleMs);
	const after = readProcs(pids);
	const growthKb = after.rssKb - before.rssKb;
	for (const ws of [first.ws, ...sockets]) ws.terminate();
	return {
		client: `ws ${WS_VERSION} (node)`,
		deflate: DEFLATE,
		open: sockets.length,
		failed,
		open_s: Number(openS.toFixed(2)),
		rss_before_kb: before.rssKb,
		rss_after_kb: after.rssKb,
		rss_growth_kb: growthKb,
		rss_kb_per_conn: sockets.length ? Number((growthKb / sockets.length).toFixed(2)) : null,
	};
}

async function httpFloor() {
	const roundTrip = async () => {
		const response = await withTimeout(fetch(opts.url, { method: "POST", body: PAYLOAD }), TIMEOUT_MS, "fetch");
		await response.arrayBuffer();
	};
	for (let i = 0; i < WARMUP; i++) await roundTrip();
	const samples = [];
	for (let i = 0; i < N; i++) {
		const t = nowNs();
		await roundTrip();
		samples.push(usSince(t));
	}
	return { client: "fetch (node)", latency_us: stats(samples) };
}

const COMMANDS = { ws: wsFloor, http: httpFloor, conns: connsFloor };
if (!COMMANDS[command] || !opts.url) {
	console.error(USAGE);
	process.exit(2);
}
try {
	const result = await COMMANDS[command]();
	report({ label: opts.label ?? null, bench: `floor-${command}`, url: opts.url, n: N, size: PAYLOAD.length, ...result }, opts.out);
	process.exit(0);
} catch (err) {
	console.error(`floor.mjs ${command} failed:`, err);
	process.exit(1);
}
