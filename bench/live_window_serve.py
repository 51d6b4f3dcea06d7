"""``pyrivet serve`` with the live inspector's gathering window set from the environment,
for ``bench_inspector_cost.py``.

    BENCH_LIVE_WINDOW=1.0 python bench/live_window_serve.py serve inspector_app:registry ...

Under callgrind the server runs ~50 times slower than natively, so the hub's 100 ms
window would catch one commit where a real run catches several; the bench widens it so
that each burst of calls to a watched actor is pushed as one window, as at full speed.
``BENCH_WS_PING=0`` turns off uvicorn's WebSocket keepalive pings: they come every 20 s
of wall time, which under callgrind spans a few hundred actions instead of ~80,000, so
64 open pages would be charged ~50 times their real share. Everything else is the
ordinary CLI (``python -m pyrivet``).
"""

from __future__ import annotations

import os
import sys

import pyrivet.server.serve as serve_module
from pyrivet.cli import main
from pyrivet.server.inspector import hubs

if __name__ == "__main__":
    hubs.INTERVAL = float(os.environ.get("BENCH_LIVE_WINDOW", hubs.INTERVAL))  # type: ignore[misc]
    if os.environ.get("BENCH_WS_PING") == "0":
        defaults = serve_module.serve.__kwdefaults__
        assert defaults is not None  # serve() takes its options by keyword
        defaults["ws_ping_interval"] = None
    sys.exit(main(sys.argv[1:]))
