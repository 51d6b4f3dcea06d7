// RivetKit 2.3.19's own actor side as an envoy of an existing Rivet Engine, hosting
// the bench's counter actor (the anchors' server.mjs counter: state {count};
// increment(n) adds n, broadcasts newCount, returns the count; getCount()).
//
//   RIVET_ENDPOINT=http://127.0.0.1:PORT RIVET_TOKEN=T RIVET_POOL=rivetkit \
//     node bench/js/rivetkit_envoy.mjs
//
// RIVET_RUN_ENGINE=0: RivetKit connects to the engine at RIVET_ENDPOINT instead of
// spawning one; RIVET_RUN_SERVICES=0: nor does it start its `rivet-services` process
// (it would for an endpoint on 127.0.0.1, adding load beside the run). Actors stay awake for an hour (sleepTimeout), so the memory figure
// counts awake actors. Stop it with SIGTERM.
import { importPackage } from "./common.mjs";

process.env.RIVET_RUN_ENGINE = "0";
process.env.RIVET_RUN_SERVICES = "0";
const { module: rivetkit } = await importPackage("rivetkit");
const { actor, event, setup } = rivetkit;

const counter = actor({
	state: { count: 0 },
	events: { newCount: event() },
	actions: {
		increment: (c, n = 1) => {
			c.state.count += n;
			c.broadcast("newCount", c.state.count);
			return c.state.count;
		},
		getCount: (c) => c.state.count,
	},
	options: { sleepTimeout: 3_600_000 },
});

setup({ use: { counter } }).start();
