"""DBOS Transact as a speed anchor: the shared DBOS harness, run from pyrivet's benches.

Issue 9 compares pyrivet's 10-step workflow with the same workflow in DBOS Transact on
SQLite and on PostgreSQL, measured in the same run. The harness that measures DBOS
lives outside this repository (``shared/anchors/dbos``, read-only); this module runs it
and hands back its medians, so a bench can print DBOS's rows beside pyrivet's::

    from dbos_anchor import measure, format_rows
    figures = measure(["--quick", "--backend", "sqlite"])
    print(format_rows(figures))

or, from the command line::

    python bench/dbos_anchor.py --quick                    # both backends, both APIs
    python bench/dbos_anchor.py --quick --backend sqlite --mode async --no-recovery
    python bench/dbos_anchor.py --json --quick             # the figures as JSON

What runs where:

* DBOS needs its own packages, pinned in the harness's README (``pip install ...`` line).
  `ensure_venv` creates a virtualenv for them once, in ``bench/.venv-dbos``
  (gitignored), with this interpreter's Python and pip from the package index; it is
  re-created only when the pins (or the Python version) change.
* `measure` runs ``bench_dbos.py`` in that virtualenv as a child process, with the
  arguments it is given passed through, a scratch ``--workdir`` it deletes afterwards,
  and its own PostgreSQL database. The harness prints progress on stderr (passed
  through) and its markdown table on stdout (captured); the figures are read from the
  raw JSON it writes into the workdir.
* PostgreSQL: the server comes from ``PYRIVET_BENCH_PG_DSN`` (a ``postgresql://`` URL,
  default ``postgresql://postgres@127.0.0.1:5432/test``). That URL's database is only
  used to connect; the harness DROPs and re-creates the database ``pyrivet_dbos_anchor``
  on the same server, never the one named in the URL.

Errors: a missing harness, bad arguments or a bad DSN raise `AnchorError` before
anything starts; a failing pip or harness run raises `AnchorError` with its exit code
(its own output has already gone to stderr). The harness can take minutes: before each
measurement it waits (``--idle-wait``, default 180 s) for the machine to be idle and
repeats disturbed measurements (``--retries``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TypedDict
from urllib.parse import urlsplit, urlunsplit

#: Where the virtualenv with DBOS's pinned packages is kept (gitignored).
DEFAULT_VENV: Final = Path(__file__).resolve().parent / ".venv-dbos"
#: The environment variable naming the harness folder, if not found next to the repository.
HARNESS_ENV: Final = "PYRIVET_DBOS_HARNESS"
#: The environment variable with the PostgreSQL server's URL.
PG_DSN_ENV: Final = "PYRIVET_BENCH_PG_DSN"
DEFAULT_PG_DSN: Final = "postgresql://postgres@127.0.0.1:5432/test"
#: The database the harness drops and re-creates; it belongs to this bench alone.
BENCH_DATABASE: Final = "pyrivet_dbos_anchor"

# Harness options this module sets itself.
_OWNED_OPTIONS: Final = ("--workdir", "--pg-url", "--pg-admin-dsn")
_STAMP: Final = "pyrivet-dbos-pins.txt"
_HARNESS_RELATIVE: Final = Path("shared") / "anchors" / "dbos"


class AnchorError(RuntimeError):
    """The anchor cannot run: harness missing, bad arguments, or a child process failed."""


class ApiFigures(TypedDict):
    """Medians over the harness's runs for one system database and one DBOS API."""

    per_step_p50_us: float  # workflow wall time / 10, sequential
    per_step_p99_us: float
    step_call_p50_us: float  # one step() call seen from inside the workflow
    step_call_p99_us: float
    wf_start_end_p50_us: float  # workflow time minus its step calls
    cpu_per_step_us: float  # the DBOS process's CPU, sequential phase
    steps_per_s: float  # with `concurrency` workflows in flight
    wf_per_s: float
    wf_latency_p50_ms: float
    wf_latency_p99_ms: float
    errors: int  # failed workflows in the concurrent window, summed over runs
    runs: int


class FloorFigures(TypedDict):
    """One storage floor: a single-row INSERT committed on its own."""

    p50_us: float
    p99_us: float


class AnchorFigures(TypedDict):
    """What `measure` returns."""

    versions: dict[str, str]  # dbos, sqlalchemy, psycopg, python, sqlite, postgresql, ...
    concurrency: int
    #: keyed "sqlite/async", "sqlite/sync", "postgres/async", "postgres/sync" (those run)
    rows: dict[str, ApiFigures]
    #: keyed "sqlite_wal_full", "sqlite_delete_full", "pg_insert" (those run)
    floors: dict[str, FloorFigures]
    table: str  # the harness's own markdown table


# MARK: locating the harness and its pins


def find_harness() -> Path:
    """Return the folder holding ``bench_dbos.py``.

    ``$PYRIVET_DBOS_HARNESS`` if set, else ``shared/anchors/dbos`` in the first folder
    above this repository that has one (``../shared`` for the main checkout,
    ``../../shared`` for a worktree under ``wt/``).

    Raises:
        AnchorError: no harness found.
    """
    override = os.environ.get(HARNESS_ENV)
    candidates = (
        [Path(override)]
        if override
        else [parent / _HARNESS_RELATIVE for parent in Path(__file__).resolve().parents]
    )
    for folder in candidates:
        if (folder / "bench_dbos.py").is_file():
            return folder
    where = override or f"{_HARNESS_RELATIVE} above {Path(__file__).resolve().parent}"
    raise AnchorError(f"DBOS harness not found ({where}); set {HARNESS_ENV} to its folder")


def read_pins(harness: Path) -> list[str]:
    """Return the requirement specifiers of the README's ``pip install`` line.

    Raises:
        AnchorError: the README has no such line, or it pins nothing exactly.
    """
    readme = harness / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnchorError(f"cannot read {readme}: {exc}") from None
    match = re.search(r"^pip install ([^#\n]+)", text, re.MULTILINE)
    pins = shlex.split(match.group(1)) if match else []
    if not pins or not all("==" in pin for pin in pins):
        raise AnchorError(f"{readme} has no 'pip install pkg==version ...' line to follow")
    return pins


# MARK: the virtualenv


def ensure_venv(pins: Sequence[str], venv: Path = DEFAULT_VENV) -> Path:
    """Return the Python of a virtualenv holding exactly ``pins``, creating it if needed.

    The pins and this interpreter's version are stamped into the virtualenv; a
    virtualenv with another stamp is deleted and created again.

    Raises:
        AnchorError: ``venv`` exists but is not a virtualenv (it is left alone), or
            creating it or installing into it failed.
    """
    python = venv / "bin" / "python"
    stamp = venv / _STAMP
    wanted = "\n".join([f"python {sys.version.split()[0]}", *pins]) + "\n"
    if python.exists() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return python
    if venv.exists():
        if not (venv / "pyvenv.cfg").is_file():
            raise AnchorError(f"{venv} exists and is not a virtualenv; move it away")
        shutil.rmtree(venv)
    print(f"dbos_anchor: creating {venv} with {' '.join(pins)}", file=sys.stderr, flush=True)
    _run([sys.executable, "-m", "venv", str(venv)], "python -m venv")
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
        "pip install",
    )
    stamp.write_text(wanted, encoding="utf-8")
    return python


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise AnchorError(f"{what} failed with exit code {result.returncode}")


# MARK: PostgreSQL


def pg_urls(dsn: str) -> tuple[str, str]:
    """Split the server URL into (admin URL, bench URL).

    The admin URL is ``dsn`` itself (its database is only connected to); the bench URL
    is the same server with database `BENCH_DATABASE`.

    Raises:
        AnchorError: ``dsn`` is not a ``postgresql://`` URL naming a database, or names
            `BENCH_DATABASE` itself (the harness would drop the database it connects to).
    """
    parts = urlsplit(dsn)
    database = parts.path.lstrip("/")
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not database:
        raise AnchorError(f"{PG_DSN_ENV} must be a URL like {DEFAULT_PG_DSN}, got {dsn!r}")
    if database == BENCH_DATABASE:
        raise AnchorError(
            f"{PG_DSN_ENV} must name an existing database other than {BENCH_DATABASE}, "
            "which the harness drops and re-creates"
        )
    bench = urlunsplit(("postgresql", parts.netloc, f"/{BENCH_DATABASE}", "", ""))
    return dsn, bench


# MARK: running the harness


def _check_args(harness_args: Sequence[str]) -> None:
    for arg in harness_args:
        option = arg.split("=", 1)[0]
        if option in _OWNED_OPTIONS:
            raise AnchorError(
                f"{option} is set by dbos_anchor (scratch folder, {PG_DSN_ENV}); leave it out"
            )


def measure(
    harness_args: Sequence[str] = (),
    *,
    venv: Path = DEFAULT_VENV,
    pg_dsn: str | None = None,
    timeout_s: float = 3600,
) -> AnchorFigures:
    """Run the DBOS harness and return its medians.

    Args:
        harness_args: passed to ``bench_dbos.py`` as they are (``--quick``,
            ``--backend sqlite``, ``--mode async``, ``--no-recovery``, ...), except the
            options this function sets (``--workdir``, ``--pg-url``, ``--pg-admin-dsn``).
        venv: where the DBOS virtualenv is kept.
        pg_dsn: the PostgreSQL server URL; default ``$PYRIVET_BENCH_PG_DSN`` or
            `DEFAULT_PG_DSN`.
        timeout_s: the longest the harness may run.

    Raises:
        AnchorError: see the module docstring.
    """
    _check_args(harness_args)
    harness = find_harness()
    admin_url, bench_url = pg_urls(pg_dsn or os.environ.get(PG_DSN_ENV, DEFAULT_PG_DSN))
    python = ensure_venv(read_pins(harness), venv)
    with tempfile.TemporaryDirectory(prefix="pyrivet-dbos-") as workdir:
        command = [
            str(python),
            str(harness / "bench_dbos.py"),
            *harness_args,
            "--workdir",
            workdir,
            "--pg-url",
            bench_url,
            "--pg-admin-dsn",
            admin_url,
        ]
        try:
            result = subprocess.run(
                command, stdout=subprocess.PIPE, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise AnchorError(f"the DBOS harness ran longer than {timeout_s:g} s") from None
        if result.returncode != 0:
            raise AnchorError(f"the DBOS harness failed with exit code {result.returncode}")
        raw = sorted(Path(workdir).glob("results-*.json"))
        if not raw:
            raise AnchorError("the DBOS harness wrote no results-*.json")
        data = json.loads(raw[-1].read_text(encoding="utf-8"))
    return parse_results(data, result.stdout)


def _median(runs: list[dict[str, Any]], section: str, key: str) -> float:
    return float(statistics.median(float(run[section][key]) for run in runs))


def parse_results(data: dict[str, Any], table: str = "") -> AnchorFigures:
    """Turn the harness's raw JSON into `AnchorFigures` (medians over its runs).

    Raises:
        AnchorError: the JSON does not have the harness's shape.
    """
    try:
        rows: dict[str, ApiFigures] = {}
        for name, runs in data["results"].items():
            if not runs:
                continue  # every run of this configuration failed; the harness said so
            rows[name] = ApiFigures(
                per_step_p50_us=_median(runs, "seq", "per_step_p50_us"),
                per_step_p99_us=_median(runs, "seq", "per_step_p99_us"),
                step_call_p50_us=_median(runs, "seq", "step_call_p50_us"),
                step_call_p99_us=_median(runs, "seq", "step_call_p99_us"),
                wf_start_end_p50_us=_median(runs, "seq", "wf_fixed_p50_us"),
                cpu_per_step_us=_median(runs, "seq", "cpu_per_step_us"),
                steps_per_s=_median(runs, "conc", "steps_per_s"),
                wf_per_s=_median(runs, "conc", "wf_per_s"),
                wf_latency_p50_ms=_median(runs, "conc", "wf_lat_p50_ms"),
                wf_latency_p99_ms=_median(runs, "conc", "wf_lat_p99_ms"),
                errors=sum(int(run["conc"]["errors"]) for run in runs),
                runs=len(runs),
            )
        floors: dict[str, FloorFigures] = {}
        for name in ("sqlite_wal_full", "sqlite_delete_full", "pg_insert"):
            values = [floor[name] for floor in data["floors"] if name in floor]
            if values:
                floors[name] = FloorFigures(
                    p50_us=float(statistics.median(float(v["p50_us"]) for v in values)),
                    p99_us=float(statistics.median(float(v["p99_us"]) for v in values)),
                )
        return AnchorFigures(
            versions={str(k): str(v) for k, v in data["versions"].items()},
            concurrency=int(data["args"]["concurrency"]),
            rows=rows,
            floors=floors,
            table=table,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AnchorError(f"unexpected harness results ({type(exc).__name__}: {exc})") from None


# MARK: printing


_FLOOR_LABELS: Final = {
    "sqlite_wal_full": "SQLite WAL, synchronous=FULL",
    "sqlite_delete_full": "SQLite rollback journal, synchronous=FULL",
    "pg_insert": "PostgreSQL autocommit INSERT",
}


def format_rows(figures: AnchorFigures) -> str:
    """Return DBOS's rows as a small markdown table, for printing beside pyrivet's."""
    versions = figures["versions"]
    c = figures["concurrency"]
    lines = [
        f"DBOS Transact {versions.get('dbos', '?')} (SQLAlchemy {versions.get('sqlalchemy', '?')},"
        f" psycopg {versions.get('psycopg', '?')}, PostgreSQL {versions.get('postgresql', '-')})",
        "",
        f"| system DB / API | per step p50 (wf/10) | per step p99 | step() call p50 "
        f"| steps/s @{c} | wf/s @{c} | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in figures["rows"].items():
        errors = f" ({row['errors']} errors)" if row["errors"] else ""
        lines.append(
            f"| DBOS {name} | {row['per_step_p50_us']:,.0f} µs | {row['per_step_p99_us']:,.0f} µs "
            f"| {row['step_call_p50_us']:,.0f} µs | {row['steps_per_s']:,.0f}{errors} "
            f"| {row['wf_per_s']:,.1f} | {row['runs']} |"
        )
    if figures["floors"]:
        lines += ["", "| floor (1 INSERT per commit) | p50 | p99 |", "|---|---|---|"]
        for name, floor in figures["floors"].items():
            label = _FLOOR_LABELS.get(name, name)
            lines.append(f"| {label} | {floor['p50_us']:,.0f} µs | {floor['p99_us']:,.0f} µs |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: the options below, everything else passed to the harness."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # a prefix of a harness option must reach the harness
        description="Run the shared DBOS Transact harness in its own virtualenv and print "
        "its medians. Unknown options (--quick, --backend, --mode, --runs, --no-recovery, "
        "--idle-wait, ...) go to the harness.",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv folder")
    parser.add_argument("--timeout", type=float, default=3600, help="harness time limit, s")
    ours, harness_args = parser.parse_known_args(argv)
    try:
        figures = measure(harness_args, venv=ours.venv, timeout_s=ours.timeout)
    except AnchorError as exc:
        print(f"dbos_anchor: {exc}", file=sys.stderr)
        return 2
    if ours.json:
        print(json.dumps(figures, indent=1))
    else:
        print(figures["table"])
        print(format_rows(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
