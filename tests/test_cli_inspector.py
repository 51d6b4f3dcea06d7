"""``pyrivet serve``'s inspector options: a given token, a generated one, and off."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pyrivet.cli import main
from pyrivet.cli.serve_command import inspector_setting
from serve_process import APP, ServeProcess

pytestmark = pytest.mark.slow


def status(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def serve(tmp_path: Path, *args: str) -> ServeProcess:
    (tmp_path / "app.py").write_text(APP)
    base = ["--port", "0", "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]
    return ServeProcess(tmp_path, [*base, *args])


def test_a_given_token_is_used_and_not_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYRIVET_INSPECTOR_TOKEN", raising=False)
    server = serve(tmp_path, "--inspector-token", "given-secret")
    try:
        port = server.wait_serving()
        line = server.wait_line(lambda s: "inspector at" in s)
        assert line.endswith(f"http://127.0.0.1:{port}/ui (token as configured)")
        assert "given-secret" not in server.output()
        api = f"http://127.0.0.1:{port}/ui/api/actors?q="
        assert status(api, "given-secret") == (200, {"actors": [], "truncated": False})
        assert status(api, "other")[0] == 401
    finally:
        server.close()


def test_no_inspector_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYRIVET_INSPECTOR_TOKEN", "from-env")
    server = serve(tmp_path, "--no-inspector")
    try:
        port = server.wait_serving()
        code, body = status(f"http://127.0.0.1:{port}/ui", "from-env")
        assert (code, body["code"]) == (403, "disabled")
        assert "inspector at" not in server.output()
    finally:
        server.close()


def test_the_token_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first, so the generated token the test leaves is undone afterwards.
    monkeypatch.setenv("PYRIVET_INSPECTOR_TOKEN", "placeholder")
    monkeypatch.delenv("PYRIVET_INSPECTOR_TOKEN")
    assert inspector_setting("") == ("", False)
    assert inspector_setting("mine") == ("mine", False)
    token, generated = inspector_setting(None)
    assert generated and len(token) >= 24
    # Kept in the environment: a SIGHUP restart (an exec) serves with the same token.
    assert os.environ["PYRIVET_INSPECTOR_TOKEN"] == token
    assert inspector_setting(None) == (token, False)


def test_a_token_and_no_inspector_together_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "app:registry", "--inspector-token", "x", "--no-inspector"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
