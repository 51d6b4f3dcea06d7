// Helpers shared by client.mjs and floor.mjs: flags, the packages from the
// conformance folder, /proc readings, percentiles, the JSON result line.
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** node_modules holding rivetkit 2.3.19 and ws (override with RIVETKIT_NODE_MODULES). */
export const NODE_MODULES =
	process.env.RIVETKIT_NODE_MODULES ?? path.resolve(HERE, "../../tests/conformance/js/node_modules");

/** Imports the ESM entry point `subpath` of package `name` from NODE_MODULES. */
export async function importPackage(name, subpath = ".") {
	const dir = path.join(NODE_MODULES, name);
	const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
	let entry = pkg.exports?.[subpath]?.import ?? pkg.exports?.[subpath];
	if (entry && typeof entry === "object") entry = entry.default;
	if (typeof entry !== "string") throw new Error(`cannot find the ESM entry of ${name}/${subpath}`);
	return { module: await import(pathToFileURL(path.join(dir, entry)).href), version: pkg.version };
}

/** require() from NODE_MODULES (for CommonJS packages such as ws). */
export const requireFromModules = createRequire(path.join(NODE_MODULES, "noop.js"));

/**
 * Parses `COMMAND --flag value ...` against `spec` ({name: "string"|"int"|"number"}).
 * Exits with status 2 on a bad flag.
 */
export function parseArgs(argv, spec, usage) {
	const fail = (message) => {
		console.error(`${message}\n${usage}`);
		process.exit(2);
	};
	const [command, ...rest] = argv;
	if (!command || command.startsWith("-")) fail("missing command");
	const opts = {};
	for (let i = 0; i < rest.length; i += 2) {
		const name = rest[i].replace(/^--/, "");
		const value = rest[i + 1];
		if (!rest[i].startsWith("--") || !(name in spec)) fail(`unknown flag ${rest[i]}`);
		if (value === undefined) fail(`--${name} needs a value`);
		if (spec[name] === "string") {
			opts[name] = value;
		} else {
			const num = Number(value);
			if (!Number.isFinite(num) || num < 0 || (spec[name] === "int" && !Number.isInteger(num))) {
				fail(`--${name} must be a non-negative ${spec[name]}, got ${value}`);
			}
			opts[name] = num;
		}
	}
	return { command, opts };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const nowNs = () => process.hrtime.bigint();
export const usSince = (t0) => Number(nowNs() - t0) / 1000;

/** Nearest-rank percentiles (µs in, µs out, one decimal). */
export function stats(values) {
	if (values.length === 0) return { count: 0 };
	const sorted = Float64Array.from(values).sort();
	const pick = (p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
	const r = (x) => Number(x.toFixed(1));
	let sum = 0;
	for (const v of sorted) sum += v;
	return {
		count: sorted.length,
		min: r(sorted[0]),
		p50: r(pick(50)),
		p90: r(pick(90)),
		p99: r(pick(99)),
		max: r(sorted[sorted.length - 1]),
		mean: r(sum / sorted.length),
	};
}

const CLK_TCK = 100; // Linux USER_HZ

/** CPU ticks and RSS (KiB) of the given processes, summed; ended processes count 0. */
export function readProcs(pids) {
	let ticks = 0;
	let rssKb = 0;
	for (const pid of pids) {
		try {
			const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
			const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			ticks += Number(fields[11]) + Number(fields[12]);
			const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
			rssKb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
		} catch {
			// the process ended
		}
	}
	return { at: performance.now(), cpuMs: (ticks * 1000) / CLK_TCK, rssKb };
}

/** Runs `task(i)` for i in [0, n), at most `concurrency` at a time. */
export async function pool(n, concurrency, task) {
	let next = 0;
	const worker = async () => {
		while (next < n) await task(next++);
	};
	await Promise.all(Array.from({ length: Math.min(n, Math.max(1, concurrency)) }, worker));
}

/** Rejects after `ms` (0: never). */
export function withTimeout(promise, ms, what = "operation") {
	if (!ms) return promise;
	let timer;
	return Promise.race([
		promise,
		new Promise((_, reject) => {
			timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
		}),
	]).finally(() => clearTimeout(timer));
}

/** Prints one JSON result line (and appends it to `out` if given). */
export function report(result, out) {
	const line = JSON.stringify({
		ts: new Date().toISOString(),
		node: process.version,
		loadavg_1m: Number(os.loadavg()[0].toFixed(2)),
		...result,
	});
	console.log(line);
	if (out) fs.appendFileSync(out, `${line}\n`);
}

/** Exits the process if `seconds` pass: every script here stops by itself. */
export function deadline(seconds, name) {
	setTimeout(() => {
		console.error(`${name}: gave up after ${seconds} s`);
		process.exit(3);
	}, seconds * 1000).unref();
}
