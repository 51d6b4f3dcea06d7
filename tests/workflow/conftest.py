"""Helpers for the workflow engine tests: a host over a store, run-to-end helpers."""

from __future__ import annotations

from typing import Any

import pytest

from pyrivet.testing import MockClock
from pyrivet.workflow import MemoryWorkflowHost, MemoryWorkflowStore, Workflow, WorkflowEngine


@pytest.fixture
def clock() -> MockClock:
    return MockClock()


@pytest.fixture
def store() -> MemoryWorkflowStore:
    return MemoryWorkflowStore()


def engine_for(
    wf: Workflow, clock: MockClock, store: MemoryWorkflowStore, **host_options: Any
) -> tuple[WorkflowEngine[Any], MemoryWorkflowHost]:
    """A fresh engine on a fresh host over ``store`` (a restart when the store has data)."""
    host = MemoryWorkflowHost(clock, store, **host_options)
    return WorkflowEngine(wf, host), host
