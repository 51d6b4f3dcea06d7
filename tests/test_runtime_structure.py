"""The runtime compares an actor's status as the enum it is, never as its string value.

(Import cycles and function-level imports are checked for the whole package in
``tests/test_layers.py``.)
"""

from __future__ import annotations

import re
from pathlib import Path

from pyrivet._runtime.lifecycle import TRANSITIONS, ActorStatus

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


def test_actor_status_hashes_without_a_python_call() -> None:
    """`set_status` looks statuses up in `TRANSITIONS` (a dict of frozensets) three
    times per actor life: `Enum.__hash__` is a Python function, identity is not."""
    assert vars(ActorStatus)["__hash__"] is object.__hash__
    assert ActorStatus.RUNNING in TRANSITIONS[ActorStatus.LOADING]
    assert ActorStatus("running") is ActorStatus.RUNNING
