"""examples/document: Yjs updates through the actor's raw WebSocket, kept across a restart.

Two pycrdt clients (the server's own Yjs port, standing in for browsers) talk to
``pyrivet serve app:registry`` run in the example's folder; the browser version of this
test is tests/browser.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Text

from pyrivet.client import Client, ConnectionClosedError, RawWebSocket
from serve_process import ServeProcess

from .conftest import EXAMPLES

pytestmark = pytest.mark.slow


async def edit(doc: Doc[Any], ws: RawWebSocket, append: str) -> None:
    """Append to the document's text and send the change as one update."""
    before = doc.get_state()
    text = doc.get("content", type=Text)
    text += append
    await ws.send(doc.get_update(before))


async def joined(ws: RawWebSocket) -> Doc[Any]:
    """A local document from the first frame (the whole document)."""
    doc: Doc[Any] = Doc()
    frame = await ws.recv()
    assert isinstance(frame, bytes)
    doc.apply_update(frame)
    return doc


async def update_from(ws: RawWebSocket) -> bytes:
    frame = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(frame, bytes)
    return frame


async def closed_with(ws: RawWebSocket) -> int | None:
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code


async def test_edits_reach_the_other_client_and_survive_a_restart(tmp_path: Path) -> None:
    args = ["--port", "0", "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]
    server = ServeProcess(EXAMPLES / "document", args)
    try:
        port = await asyncio.to_thread(server.wait_serving)
        async with Client(f"http://127.0.0.1:{port}") as client:
            notes = client.get_or_create("document", ["notes"])
            async with notes.websocket() as one, notes.websocket() as two:
                doc_one, doc_two = await joined(one), await joined(two)
                await edit(doc_one, one, "hello")
                doc_two.apply_update(await update_from(two))
                assert str(doc_two.get("content", type=Text)) == "hello"
                await edit(doc_two, two, " world")
                doc_one.apply_update(await update_from(one))
                assert str(doc_one.get("content", type=Text)) == "hello world"

            # Frames that are not Yjs updates close that socket only, changing nothing.
            async with notes.websocket() as bad:
                await joined(bad)
                await bad.send("not binary")
                assert await closed_with(bad) == 1003
            async with notes.websocket() as bad:
                await joined(bad)
                await bad.send(b"\xff\x00 not an update")
                assert await closed_with(bad) == 1003
            assert await notes.text() == "hello world"

            # The actor serves its page too (the bundle is tests/browser's business).
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                where = "?rvt-method=get&rvt-key=notes"
                page = await http.get(f"/gateway/document/request/{where}")
                assert page.status_code == 200
                assert page.headers["content-type"] == "text/html"
                assert '<textarea id="editor"' in page.text
                missing = await http.get(f"/gateway/document/request/nothing{where}")
                assert missing.status_code == 404

            await asyncio.to_thread(server.signal, signal.SIGHUP)
            assert await asyncio.to_thread(server.wait_serving) == port
            async with notes.websocket() as again:
                doc = await joined(again)
                assert str(doc.get("content", type=Text)) == "hello world"
    finally:
        server.close()
