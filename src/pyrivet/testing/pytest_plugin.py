"""pyrivet's pytest plugin: fixtures that run your actors in a test, on a mock clock.

pytest loads it by itself wherever pyrivet is installed (the ``pytest11`` entry point
``pyrivet``; ``-p no:pyrivet`` turns it off; docs/testing.md shows it in use).

A test names its registry by defining the fixture ``pyrivet_registry``; the other
fixtures build on it:

- ``pyrivet_registry``: the `Registry` under test. Define it (in the test module or a
  ``conftest.py``); without it the fixtures below fail, saying so.
- ``pyrivet_storage``: ``"memory"`` (the default) or ``"sqlite"`` (a fresh data
  directory under ``tmp_path``). Override it, or parametrize it:
  ``@pytest.mark.parametrize("pyrivet_storage", ["memory", "sqlite"])``.
- ``pyrivet_clock``: the `MockClock` the runtime runs on; ``await advance(seconds)``.
- ``pyrivet_runtime``: the started `Runtime`; every actor is put to sleep at the end.
- ``pyrivet_client``: an in-process `Client` of that runtime.
- ``pyrivet_server``: the runtime served by a real uvicorn on a free port of
  127.0.0.1 (needs ``pyrivet[server]``): a `ServedApp` with its ``url``.

**Event loop.** A test that uses ``pyrivet_runtime``, ``pyrivet_client`` or
``pyrivet_server`` (directly or through another fixture) is an ``async def`` test, and
this plugin runs it, together with the async fixtures it uses, on one new event loop
per test: plain pytest needs nothing else. When pytest-asyncio runs in ``auto`` mode
it runs them instead (the fixtures here are ordinary async fixtures). In pytest-asyncio's
``strict`` mode (its default) such a test is not marked ``@pytest.mark.asyncio``: it
is this plugin's.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any, Final, Literal

import pytest

from .._runtime.registry import Registry
from .._runtime.runtime import Runtime
from .._util.clock import MockClock
from .._util.tasks import TaskSupervisor
from ..client import Client
from ._harness import run_actors
from ._served import ServedApp

__all__ = [
    "pyrivet_client",
    "pyrivet_clock",
    "pyrivet_registry",
    "pyrivet_runtime",
    "pyrivet_server",
    "pyrivet_storage",
    "pytest_fixture_setup",
    "pytest_pyfunc_call",
]

#: The fixture that holds this plugin's event loop runner (None when pytest-asyncio in
#: auto mode runs the test). Every fixture here that needs a loop depends on it, so a
#: test that needs the plugin's loop is one whose fixture closure contains this name.
RUNNER: Final = "_pyrivet_runner"

Storage = Literal["memory", "sqlite"]


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def pyrivet_registry() -> Registry:
    """The registry under test: define a fixture of this name that returns yours."""
    pytest.fail(
        "pyrivet's fixtures need to know your actors: define a fixture named "
        "`pyrivet_registry` that returns your Registry, in the test module or in "
        "conftest.py:\n\n"
        "    @pytest.fixture\n"
        "    def pyrivet_registry() -> Registry:\n"
        "        return Registry([counter])\n",
        pytrace=False,
    )


@pytest.fixture
def pyrivet_storage() -> Storage:
    """Where the runtime stores actors: ``"memory"`` or ``"sqlite"`` (under tmp_path)."""
    return "memory"


@pytest.fixture
def pyrivet_clock() -> MockClock:
    """The mock clock of the runtime: time moves only by ``await clock.advance(s)``."""
    return MockClock()


@pytest.fixture
def _pyrivet_runner(request: pytest.FixtureRequest) -> Iterator[asyncio.Runner | None]:
    """One event loop for the test and its async fixtures (see the module docstring)."""
    if _pytest_asyncio_mode(request.config) == "auto":
        yield None
        return
    if request.node.get_closest_marker("asyncio") is not None:
        pytest.fail(
            f"{request.node.nodeid} is marked @pytest.mark.asyncio and uses pyrivet's "
            "fixtures, which run the test on their own event loop in pytest-asyncio's "
            "strict mode: remove the marker (or set asyncio_mode = auto)",
            pytrace=False,
        )
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
async def pyrivet_runtime(
    request: pytest.FixtureRequest,
    pyrivet_registry: Registry,
    pyrivet_storage: Storage,
    pyrivet_clock: MockClock,
    _pyrivet_runner: asyncio.Runner | None,
) -> AsyncIterator[Runtime]:
    """The started runtime of ``pyrivet_registry``; every actor sleeps at the end."""
    if pyrivet_storage not in ("memory", "sqlite"):
        pytest.fail(
            f"pyrivet_storage must be 'memory' or 'sqlite', got {pyrivet_storage!r}",
            pytrace=False,
        )
    data_dir: Path | None = None
    if pyrivet_storage == "sqlite":
        data_dir = request.getfixturevalue("tmp_path") / "pyrivet"
    async with run_actors(pyrivet_registry, data_dir=data_dir, clock=pyrivet_clock) as (
        runtime,
        _,
    ):
        yield runtime


@pytest.fixture
def pyrivet_client(pyrivet_runtime: Runtime) -> Client:
    """An in-process client of ``pyrivet_runtime`` (no network)."""
    return Client(pyrivet_runtime)


@pytest.fixture
async def pyrivet_server(pyrivet_runtime: Runtime) -> AsyncIterator[ServedApp]:
    """``pyrivet_runtime`` served by uvicorn on a free loopback port until the test ends.

    The server stops before the runtime does. Needs ``pyrivet[server]`` (uvicorn).
    """
    # The server extra is optional: only tests that use this fixture need it.
    try:
        from ..server.serve import PyrivetServer, serve
    except ImportError as exc:
        pytest.fail(f"pyrivet_server needs pip install 'pyrivet[server]' ({exc})", pytrace=False)

    started: asyncio.Future[PyrivetServer] = asyncio.get_running_loop().create_future()
    tasks = TaskSupervisor("pyrivet_server fixture")
    serving = tasks.spawn(
        serve(
            pyrivet_runtime,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            grace_period=5,
            handle_signals=False,
            configure_logging=False,
            on_started=started.set_result,
        ),
        name="pyrivet_server",
    )
    try:
        first: list[asyncio.Future[Any]] = [started, serving]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            await serving  # it stopped before listening: raises why (ServeError)
        server = started.result()
        yield ServedApp(f"http://127.0.0.1:{server.port}", server.port, pyrivet_runtime)
        server.should_exit = True
        await serving
    finally:
        await tasks.aclose()


# -- running async tests and fixtures on the plugin's loop --------------------------------


def _pytest_asyncio_mode(config: pytest.Config) -> str | None:
    """pytest-asyncio's mode (``"auto"`` or ``"strict"``), or None when it is not loaded."""
    if not config.pluginmanager.hasplugin("asyncio"):
        return None
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    return str(mode)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test that uses this plugin's loop on that loop."""
    runner = pyfuncitem.funcargs.get(RUNNER) if RUNNER in pyfuncitem.fixturenames else None
    if not isinstance(runner, asyncio.Runner):
        return None  # not ours, or pytest-asyncio (auto mode) runs it
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        pytest.fail(
            f"{pyfuncitem.nodeid} uses pyrivet fixtures that live on an event loop: "
            "make it `async def`",
            pytrace=False,
        )
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    runner.run(pyfuncitem.obj(**args))
    return True


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """Run an async fixture of a test that uses this plugin's loop on that loop."""
    func = fixturedef.func
    if (
        RUNNER not in request.fixturenames
        or fixturedef.argname == RUNNER
        or not (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func))
        or getattr(func, "_force_asyncio_fixture", False)  # pytest_asyncio.fixture's
    ):
        return (yield)
    runner = request.getfixturevalue(RUNNER)
    if runner is None:
        return (yield)  # pytest-asyncio (auto mode) runs it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fixturedef, "func", _on_runner(func, runner, request))
        return (yield)


def _on_runner(
    func: Callable[..., Any], runner: asyncio.Runner, request: pytest.FixtureRequest
) -> Callable[..., Any]:
    """``func`` (an async fixture) as a plain one whose body runs on ``runner``."""
    if inspect.iscoroutinefunction(func):

        def run_coroutine(*args: Any, **kwargs: Any) -> Any:
            return runner.run(func(*args, **kwargs))

        return run_coroutine

    def run_generator(*args: Any, **kwargs: Any) -> Any:
        generator = func(*args, **kwargs)

        async def setup() -> Any:
            return await anext(generator)

        async def teardown() -> None:
            try:
                await anext(generator)
            except StopAsyncIteration:
                return
            await generator.aclose()
            raise RuntimeError(f"fixture {request.fixturename!r} yielded more than once")

        value = runner.run(setup())
        request.addfinalizer(lambda: runner.run(teardown()))
        return value

    return run_generator
