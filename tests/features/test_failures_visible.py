"""A failing action is visible without configuring anything: its cause in-process, its
traceback on stderr when the application configured no logging, never twice."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyrivet import InternalError, Registry, actor
from pyrivet.storage import ActorStore
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]

failing = actor("failing", state={"n": 0})


@failing.action
def explode(c: Any) -> None:
    raise ValueError("the reason it failed")


@failing.action
def warn(c: Any, text: str) -> None:
    c.log.warning(text)


@contextlib.contextmanager
def no_logging_configured() -> Iterator[None]:
    """The root logger as an application that configured no logging leaves it (pytest
    attaches its capture handlers to the root logger around each test's call; they are
    put back after)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    try:
        yield
    finally:
        root.handlers[:] = saved


async def test_the_in_process_internal_error_carries_the_original_exception(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([failing]), storage=driver_factory(), clock=clock) as (_, cl):
        with pytest.raises(InternalError) as info:
            await cl.get_or_create("failing", ["a"]).explode()
        assert (info.value.group, info.value.code) == ("core", "internal_error")
        cause = info.value.__cause__
        assert isinstance(cause, ValueError) and str(cause) == "the reason it failed"


async def test_without_logging_configured_the_traceback_reaches_stderr(
    driver_factory: DriverFactory,
    clock: MockClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = Registry([failing])
    with no_logging_configured():
        async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, cl):
            handle = cl.get_or_create("failing", ["a"])
            with pytest.raises(InternalError):
                await handle.explode()
            await handle.warn("a word from c.log")
    err = capsys.readouterr().err
    assert "action explode failed" in err
    assert "ValueError: the reason it failed" in err  # the traceback
    assert err.count("ValueError: the reason it failed") == 1
    assert "WARNING pyrivet.actor: a word from c.log" in err


async def test_once_the_application_configures_logging_nothing_is_printed_twice(
    driver_factory: DriverFactory,
    clock: MockClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("app: %(message)s"))
    registry = Registry([failing])
    with no_logging_configured():
        logging.getLogger().addHandler(handler)  # what logging.basicConfig() would do
        async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, cl):
            await cl.get_or_create("failing", ["a"]).warn("said once")
    err = capsys.readouterr().err
    assert err.count("said once") == 1
    assert "app: said once" in err
