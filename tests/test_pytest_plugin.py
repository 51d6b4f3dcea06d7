"""The pytest plugin, run the way a user runs it: a fresh project, plain ``pytest``.

The example project is read from docs/testing.md (every ``python`` block whose first
line is ``# <file>.py``), so the documentation cannot drift from what works. Each run is
a real pytest subprocess in an empty directory: no configuration file, no conftest.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n# (?P<name>[\w/]+\.py)\n(?P<body>.*?)```", re.DOTALL)


def documented_project() -> dict[str, str]:
    """File name -> source, for each named ``python`` block of docs/testing.md."""
    files = {m["name"]: m["body"] for m in BLOCK.finditer(DOC.read_text())}
    assert "app.py" in files and "test_app.py" in files, "docs/testing.md lost its example"
    return files


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    """Write ``files`` (``name.py`` -> source) into the test project."""
    pytester.makepyfile(**{name.removesuffix(".py"): source for name, source in files.items()})


def test_the_documented_example_passes_with_plain_pytest(pytester: pytest.Pytester) -> None:
    write(pytester, documented_project())
    # Without pytest-asyncio: the plugin runs the async tests itself.
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_the_documented_example_passes_beside_pytest_asyncio(pytester: pytest.Pytester) -> None:
    write(pytester, documented_project())
    # Warnings are errors, to show the plugin causes none; the loop scope option only
    # silences pytest-asyncio's own warning that it is unset.
    quiet = ["-p", "no:cacheprovider", "-W", "error"]
    quiet += ["-o", "asyncio_default_fixture_loop_scope=function"]
    # pytest-asyncio in its default (strict) mode leaves unmarked tests to the plugin ...
    result = pytester.runpytest_subprocess(*quiet)
    result.assert_outcomes(passed=5)
    # ... and in auto mode runs them itself, with the plugin's fixtures.
    result = pytester.runpytest_subprocess(*quiet, "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=5)


REGISTRY_FIXTURE = """\
import asyncio
from pathlib import Path

import pytest

from app import registry


@pytest.fixture
def pyrivet_registry():
    return registry
"""


def write_user_tests(pytester: pytest.Pytester, **modules: str) -> None:
    """The documented app.py, and test modules that name its registry."""
    write(pytester, {"app.py": documented_project()["app.py"]})
    write(pytester, {f"{n}.py": REGISTRY_FIXTURE + textwrap.dedent(s) for n, s in modules.items()})


def test_async_fixtures_of_the_user_run_on_the_same_loop(pytester: pytest.Pytester) -> None:
    write_user_tests(
        pytester,
        test_fixtures="""
        @pytest.fixture
        async def room(pyrivet_client):
            handle = pyrivet_client.get_or_create("counter", ["fixture"])
            await handle.increment(10)
            yield handle
            # Teardown runs on the loop too, before the runtime stops.
            Path("teardown-count").write_text(str(await handle.increment(0)))


        @pytest.fixture
        async def loop():
            return asyncio.get_running_loop()


        async def test_uses_both(room, loop, pyrivet_runtime) -> None:
            assert asyncio.get_running_loop() is loop
            assert await room.increment(1) == 11
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "teardown-count").read_text() == "11"


def test_misuse_gets_a_message_that_says_what_to_do(pytester: pytest.Pytester) -> None:
    write_user_tests(
        pytester,
        test_misuse="""
        @pytest.mark.parametrize("pyrivet_storage", ["postgres"])
        async def test_unknown_storage(pyrivet_client) -> None:
            pass


        def test_sync_test(pyrivet_client) -> None:
            pass


        @pytest.mark.asyncio
        async def test_marked(pyrivet_client) -> None:
            pass
        """,
    )
    pytester.makepyfile(
        test_no_registry="""
        async def test_without_registry(pyrivet_client) -> None:
            pass
        """,
    )
    write_user_tests(
        pytester,
        test_no_server_extra="""
        import sys

        sys.modules["uvicorn"] = None  # as if pyrivet[server] were not installed


        async def test_served(pyrivet_server) -> None:
            pass
        """,
    )
    # pytest-asyncio (strict mode) is loaded here, for the test marked for it.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines_random(
        [
            "*define a fixture named `pyrivet_registry`*",
            "*pyrivet_storage must be 'memory' or 'sqlite', got 'postgres'*",
            "*test_sync_test uses pyrivet fixtures that live on an event loop*async def*",
            "*test_marked is marked @pytest.mark.asyncio and uses pyrivet's fixtures*",
            "*pyrivet_server needs pip install 'pyrivet?server?'*",  # ? for [ and ]
        ]
    )
    result.assert_outcomes(errors=4, failed=1)
