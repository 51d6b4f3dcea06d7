"""What ``pyrivet serve`` says when its app spec or data directory is wrong.

The loader runs in-process on real modules written to a temporary directory; the data
directory check opens the real SQLite driver on a real file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrivet.cli.serve_command import LoadError, load_registry
from pyrivet.errors import StorageError
from pyrivet.storage import SQLiteDriver

APP = """
from pyrivet import Registry, actor

counter = actor("counter", state={"count": 0})
registry = Registry([counter])
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A directory holding a module (uniquely named, so imports do not collide) that
    defines ``counter`` and ``registry``; the current directory for the test."""
    name = f"cliapp_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def load_error(spec: str) -> str:
    with pytest.raises(LoadError) as caught:
        load_registry(spec)
    return str(caught.value)


def test_a_right_spec_loads_the_registry(app_dir: str) -> None:
    registry = load_registry(f"{app_dir}:registry")
    assert list(registry.definitions) == ["counter"]


def test_a_file_name_is_answered_with_the_module_spec_to_write(app_dir: str) -> None:
    message = load_error(f"{app_dir}.py:registry")
    assert f"pyrivet serve {app_dir}:registry" in message
    assert "is a file path" in message
    # The module was not imported (so its code did not run) to produce the message.
    assert app_dir not in sys.modules


def test_a_path_to_a_file_names_the_dotted_module(app_dir: str) -> None:
    assert "pyrivet serve pkg.app:registry" in load_error("pkg/app.py:registry")


def test_a_missing_attribute_lists_the_registries_of_the_module(app_dir: str) -> None:
    message = load_error(f"{app_dir}:regsitry")
    assert f"has no attribute 'regsitry'; Registry objects in it: {app_dir}:registry" in message


def test_an_attribute_that_is_not_a_registry_is_named_with_its_article(app_dir: str) -> None:
    message = load_error(f"{app_dir}:counter")
    assert f"{app_dir}:counter is an ActorDefinition, not a pyrivet Registry" in message
    assert f"Registry objects in it: {app_dir}:registry" in message
    assert "is a dict" in load_error(f"{app_dir}:__dict__")


def test_a_missing_module_says_where_it_was_looked_for(app_dir: str) -> None:
    message = load_error("no_such_module_here:registry")
    assert "cannot import module 'no_such_module_here'" in message
    assert str(Path.cwd()) in message


def test_a_spec_without_colon_shows_the_form(app_dir: str) -> None:
    assert "expected MODULE:ATTR such as app:registry" in load_error(app_dir)


async def test_a_data_dir_that_is_a_file_says_a_directory_is_needed(tmp_path: Path) -> None:
    afile = tmp_path / "data"
    afile.write_text("not a directory")
    for data_dir in (afile, afile / "sub"):
        with pytest.raises(StorageError) as caught:
            await SQLiteDriver(data_dir).open()
        message = str(caught.value)
        assert f"{afile} is a file, but the data directory must be a directory" in message
        assert "File exists" not in message and "Not a directory" not in message
    assert afile.read_text() == "not a directory"
