"""``python -m pyrivet``: the command line (see `pyrivet.cli`)."""

from pyrivet.cli import main

raise SystemExit(main())
