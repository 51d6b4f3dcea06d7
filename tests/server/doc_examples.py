"""Reading the runnable examples out of the Markdown docs (for `test_doc_examples`).

Marked blocks: an HTML comment ``<!-- doc-check: KIND -->`` on the line before a fenced
block (GitHub shows neither the comment nor anything odd about the block).

* ``curl``: a shell session. A line starting with ``$ `` is a command (a trailing
  ``\\`` continues it on the next line); the lines after it, up to the next command,
  are what it prints. ``…`` in an expected line matches any text (ids, timestamps).
  The commands of one block run in one ``bash``, so a variable set by one is seen by
  the next (``ID=$(curl … | jq -r …)``).
* ``app``: the Python app the curl examples of that page are run against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The address the docs show; replaced by the test server's.
DOC_URL = "http://127.0.0.1:6420"
_MARK = re.compile(r"^<!-- doc-check: (\w+) -->\n```[^\n]*\n(.*?)^```", re.M | re.S)
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
_SPLIT = re.compile(r"^@@@ (\d+)$\n?", re.M)


@dataclass(frozen=True)
class Step:
    """One ``$ command`` of a curl block and the lines it must print."""

    command: str
    expected: tuple[str, ...]


def marked_blocks(path: Path, kind: str) -> list[str]:
    """The bodies of the blocks of ``path`` marked ``doc-check: kind``, in order."""
    return [body for found, body in _MARK.findall(path.read_text()) if found == kind]


def fenced_blocks(path: Path, language: str) -> list[str]:
    """The bodies of every ```language block of ``path``, marked or not."""
    return [body for lang, body in _FENCE.findall(path.read_text()) if lang == language]


def parse_session(block: str) -> list[Step]:
    """The steps of a curl block (see the module doc)."""
    steps: list[Step] = []
    command: list[str] = []
    expected: list[str] = []
    continuing = False
    for line in block.splitlines():
        if continuing:
            command.append(line)
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            if command:
                steps.append(Step("\n".join(command), tuple(expected)))
            command, expected = [line[2:]], []
            continuing = line.endswith("\\")
        else:
            assert command, f"output before any command in a curl block: {line!r}"
            expected.append(line)
    if command:
        steps.append(Step("\n".join(command), tuple(expected)))
    return steps


def session_script(steps: list[Step], url: str) -> str:
    """One bash script running ``steps`` against ``url``, each output after a marker."""
    lines = ["set -u"]
    for index, step in enumerate(steps):
        lines.append(f"printf '\\n@@@ {index}\\n'")
        lines.append(step.command.replace(DOC_URL, url))
    return "\n".join(lines) + "\n"


def split_output(output: str, count: int) -> list[list[str]]:
    """The lines each step printed, from the output of `session_script`."""
    pieces = _SPLIT.split(output)
    found: dict[int, list[str]] = {}
    for number, text in zip(pieces[1::2], pieces[2::2], strict=True):
        found[int(number)] = [line.rstrip() for line in text.rstrip("\n").splitlines()]
    return [found.get(index, ["<the command did not run>"]) for index in range(count)]


def line_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is ``expected``, ``…`` standing for any text."""
    pattern = ".*".join(re.escape(part) for part in expected.rstrip().split("…"))
    return re.fullmatch(pattern, actual) is not None


def mismatches(steps: list[Step], outputs: list[list[str]]) -> list[str]:
    """A readable report of every step whose output differs from the doc."""
    report: list[str] = []
    for step, actual in zip(steps, outputs, strict=True):
        same = len(step.expected) == len(actual) and all(
            line_matches(e, a) for e, a in zip(step.expected, actual, strict=True)
        )
        if not same:
            report.append(
                f"$ {step.command}\n  doc shows:\n    "
                + "\n    ".join(step.expected)
                + "\n  got:\n    "
                + "\n    ".join(actual)
            )
    return report
