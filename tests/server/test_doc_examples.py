"""The docs' examples run as written: the curl sessions of docs/server.md and the
README (real ``curl`` and ``jq`` against the real server on a free port) print what the
docs show, and every Python snippet of the README runs when pasted into a file."""

from __future__ import annotations

import asyncio
import shutil
import sys
import types
from pathlib import Path

import pytest

from pyrivet import Registry

from .conftest import Start
from .doc_examples import (
    DOC_URL,
    ROOT,
    fenced_blocks,
    marked_blocks,
    mismatches,
    parse_session,
    session_script,
    split_output,
)

SERVER_DOC = ROOT / "docs" / "server.md"
README = ROOT / "README.md"


def load_registry(code: str, name: str) -> Registry:
    """Run ``code`` as module ``name`` (not ``__main__``) and return its ``registry``."""
    module = types.ModuleType(name)
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)
    registry = module.__dict__["registry"]
    assert isinstance(registry, Registry)
    return registry


def readme_python() -> tuple[str, str]:
    """The README's Python snippets: (the quickstart, the network client)."""
    blocks = fenced_blocks(README, "python")
    assert len(blocks) == 2, "a new README snippet needs a way to run it in this test"
    quickstart, network = blocks
    assert "registry.runtime()" in quickstart
    assert f'Client("{DOC_URL}")' in network
    return quickstart, network


def app_of(doc: Path) -> Registry:
    """The app a page's curl examples run against."""
    if doc == README:
        return load_registry(readme_python()[0], "readme_app")
    (code,) = marked_blocks(doc, "app")
    return load_registry(code, "server_doc_app")


async def run(*argv: str, cwd: Path | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None, reason="needs curl and jq"
)
@pytest.mark.parametrize("doc", [SERVER_DOC, README], ids=["server.md", "README"])
async def test_curl_examples_print_what_the_docs_show(start_server: Start, doc: Path) -> None:
    blocks = marked_blocks(doc, "curl")
    assert blocks, f"{doc.name} has no curl examples"
    served = await start_server(app_of(doc))
    for block in blocks:
        steps = parse_session(block)
        assert all(DOC_URL in step.command or "=" in step.command for step in steps)
        _, out, err = await run("bash", "-c", session_script(steps, served.url))
        report = mismatches(steps, split_output(out, len(steps)))
        assert not report, "\n\n".join(report) + f"\n\nstderr:\n{err}"


def test_every_route_has_a_curl_example() -> None:
    commands = "\n".join(
        step.command for block in marked_blocks(SERVER_DOC, "curl") for step in parse_session(block)
    )
    for route in (
        "/action/",
        "/request/",
        "/health",
        "/metadata",
        "-X PUT http://127.0.0.1:6420/actors",
        "-X POST http://127.0.0.1:6420/actors",
        "actors?name=",
        "-X DELETE",
        "x-rivet-actor",
        "rvt-method=get&",
        "rvt-method=getOrCreate",
    ):
        assert route in commands, f"docs/server.md shows no curl example with {route!r}"


async def test_the_readme_quickstart_runs_as_a_file(tmp_path: Path) -> None:
    quickstart, _ = readme_python()
    (tmp_path / "app.py").write_text(quickstart)
    code, out, err = await run(sys.executable, "app.py", cwd=tmp_path)
    assert code == 0, err
    # Each result is printed once as the reply and once as the event (in either order).
    assert sorted(out.split(), key=int) == ["5", "5", "7", "7"]
    assert (tmp_path / ".pyrivet").is_dir(), "the quickstart keeps its state in ./.pyrivet"
    code, out, err = await run(sys.executable, "app.py", cwd=tmp_path)
    assert code == 0, err
    assert sorted(out.split(), key=int) == ["12", "12", "14", "14"], "the count carries on"


async def test_the_readme_network_client_runs_as_a_file(
    start_server: Start, tmp_path: Path
) -> None:
    quickstart, network = readme_python()
    served = await start_server(load_registry(quickstart, "readme_app"))
    (tmp_path / "client.py").write_text(network.replace(DOC_URL, served.url))
    code, out, err = await run(sys.executable, "client.py", cwd=tmp_path)
    assert code == 0, err
    assert out.split() == ["1"]
