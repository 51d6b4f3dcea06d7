"""The runtime compares an actor's status as the enum it is, never as its string value.

(Import cycles and function-level imports are checked for the whole package in
``tests/test_layers.py``.)
"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
STRING_COMPARISON = re.compile(r"status\.value\s*(==|!=|\bnot\s+in\b|\bin\b)")


def test_no_status_is_compared_as_a_string() -> None:
    hits = [
        f"{p.relative_to(SRC)}:{n}"
        for p in sorted(SRC.rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if STRING_COMPARISON.search(line)
    ]
    assert hits == []


def test_the_pattern_finds_a_string_comparison() -> None:
    assert STRING_COMPARISON.search('if inst.status.value == "running":')
    assert STRING_COMPARISON.search('if inst.status.value not in ("running",):')
    assert not STRING_COMPARISON.search("if inst.status is ActorStatus.RUNNING:")
