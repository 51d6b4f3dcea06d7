"""Helpers for testing actors: a mock clock and an in-process harness.

```python
from pyrivet.testing import MockClock, run_actors

async with run_actors(registry, clock=MockClock()) as (runtime, client):
    await client.get_or_create("counter").increment()
```
"""

from .._util.clock import MockClock as MockClock
from ._harness import run_actors as run_actors
from ._served import ServedApp as ServedApp

__all__ = ["MockClock", "ServedApp", "run_actors"]
