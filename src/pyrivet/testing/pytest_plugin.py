"""pyrivet's pytest plugin: fixtures that run your actors in a test, on a mock clock.

pytest loads it by itself wherever pyrivet is installed (the ``pytest11`` entry point
``pyrivet``; ``-p no:pyrivet`` turns it off). The fixtures (``pyrivet_registry``,
``pyrivet_storage``, ``pyrivet_clock``, ``pyrivet_runtime``, ``pyrivet_client``,
``pyrivet_server``) and how async tests run are described in ``_fixtures.py`` and in
docs/testing.md.

This entry module imports no pyrivet code: it registers the fixtures once pytest is
configured. Entry-point plugins are imported before pytest-cov starts measuring, so a
pyrivet module imported here would have its definitions reported as never run in the
coverage of any project that measures pyrivet (ours does).
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_configure"]

FIXTURES = "pyrivet.testing._fixtures"


def pytest_configure(config: pytest.Config) -> None:
    """Register the fixtures and hooks (pytest calls this once, after option parsing)."""
    config.pluginmanager.import_plugin(FIXTURES)
