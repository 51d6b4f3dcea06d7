// 64 callers over 64 actors over WebSockets with the official client, in phases that
// the parent process paces (bench/prof_server_tp.py): open and wake, then --warmup calls
// per caller, print "warm" and wait for a line on stdin; then --calls calls per caller,
// print "done" and wait for a line; then close. Each caller is its own connection
// (handle.connect(), subscribed to newCount), as `client.mjs throughput --mode conn`.
//
//   node bench/js/phased.mjs run --endpoint http://127.0.0.1:PORT --actors 64 --calls 200
import readline from "node:readline";
import { deadline, importPackage, parseArgs, pool } from "./common.mjs";

const { opts } = parseArgs(
	process.argv.slice(2),
	{ endpoint: "string", encoding: "string", actors: "int", calls: "int", warmup: "int" },
	"usage: node phased.mjs run --endpoint URL [--actors 64] [--calls 200] [--warmup 20]",
);
deadline(900, "phased.mjs");
const { module: rivetClient } = await importPackage("rivetkit", "./client");
const client = rivetClient.createClient({
	endpoint: opts.endpoint,
	encoding: opts.encoding ?? "bare",
});
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const conns = [];
let events = 0;
await pool(opts.actors ?? 64, 8, async (i) => {
	const conn = client.counter.getOrCreate([`phased-${runId}-${i}`]).connect();
	conn.on("newCount", () => {
		events++;
	});
	await conn.increment(1);
	conns.push(conn);
});
const each = async (n) => {
	await Promise.all(
		conns.map(async (conn) => {
			for (let i = 0; i < n; i++) await conn.increment(1);
		}),
	);
};
await each(opts.warmup ?? 20);
console.log("warm");
await lines.next();
await each(opts.calls ?? 200);
console.log(`done ${events}`);
await lines.next();
await Promise.all(conns.map((c) => c.dispose()));
await client.dispose();
process.exit(0);
