// RivetKit 2.3.19's own actor side as an envoy of an existing Rivet Engine, hosting
// the multi-node ledger (tests/engine/cluster.py's LEDGER_APP, written for RivetKit):
// state {count, envoy}; bump() adds one and answers {count, envoy, actor}; read()
// answers the same without writing. Wake and sleep lines go to MULTINODE_LOG as
// `wake|sleep ACTOR ENVOY NS`, NS from the machine-wide monotonic clock
// (process.hrtime is CLOCK_MONOTONIC, as Python's time.monotonic_ns), for the
// history checker (tests/engine/history.py).
//
//   RIVET_ENDPOINT=http://127.0.0.1:PORT RIVET_TOKEN=T RIVET_POOL=P RIVET_NAMESPACE=N \
//   MULTINODE_ENVOY=a MULTINODE_LOG=a.ownership node bench/js/rivetkit_ledger_envoy.mjs
//
// RivetKit's defaults otherwise, durability included: state is saved at most once a
// second (stateSaveInterval), so a kill -9 can lose acknowledged bumps. It prints
// "rivetkit: hosting" on stderr once its envoy registered with the engine
// (registry.startAndWait); a failed start exits with status 1. Neither an engine
// nor RivetKit's Services process is spawned here: kill -9 of this process is the
// whole envoy's death.
import fs from "node:fs";
import { importPackage } from "./common.mjs";

for (const name of ["MULTINODE_ENVOY", "MULTINODE_LOG", "RIVET_ENDPOINT", "RIVET_POOL"]) {
	if (!process.env[name]) {
		console.error(`rivetkit_ledger_envoy: ${name} must be set`);
		process.exit(2);
	}
}
process.env.RIVET_RUN_ENGINE = "0";
process.env.RIVET_RUN_SERVICES = "0";
const ENVOY = process.env.MULTINODE_ENVOY;
const LOG = fs.openSync(process.env.MULTINODE_LOG, "a");

const { module: rivetkit, version } = await importPackage("rivetkit");
const { actor, setup } = rivetkit;

function event(kind, c) {
	fs.writeSync(LOG, `${kind} ${c.actorId} ${ENVOY} ${process.hrtime.bigint()}\n`);
}

const ledger = actor({
	state: { count: 0, envoy: null },
	onWake: (c) => event("wake", c),
	onSleep: (c) => event("sleep", c),
	actions: {
		bump: (c) => {
			c.state.count += 1;
			c.state.envoy = ENVOY;
			return { count: c.state.count, envoy: ENVOY, actor: c.actorId };
		},
		read: (c) => ({ count: c.state.count, envoy: c.state.envoy, actor: c.actorId }),
	},
});

try {
	await setup({ use: { ledger } }).startAndWait();
} catch (error) {
	console.error(`rivetkit_ledger_envoy: the envoy did not start: ${error?.stack ?? error}`);
	process.exit(1);
}
console.error(`rivetkit: hosting ledger actors as envoy ${ENVOY} (RivetKit ${version})`);
