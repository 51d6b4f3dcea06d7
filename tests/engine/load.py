"""`LedgerLoad`: callers bumping ledger actors through the engine's gateways, recording
every acknowledged write (`history.Ack`) and every failed call.

One caller per actor key, each waiting for its answer before the next call (so the
acknowledged counts of a key must strictly increase). Caller ``i`` starts on gateway
``i % len(gateways)`` and moves to the next gateway after a failed call, as a client
behind a load balancer would. Runs on the event loop of ``async with``; the callers
are tasks owned by the load and cancelled on exit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyrivet import Client

from .history import Ack

__all__ = ["CallFailure", "LedgerLoad"]

#: Seconds one call may take before it counts as failed (the gateway holds a request
#: while the engine moves its actor; a dead node never answers).
CALL_TIMEOUT = 30.0
#: Pause after a failed call before the next attempt, so a caller does not spin.
RETRY_PAUSE = 0.1


@dataclass(frozen=True)
class CallFailure:
    key: str
    gateway: str
    at: int
    error: str


@dataclass
class LedgerLoad:
    """Bumps ``keys`` through ``gateways`` until closed."""

    gateways: list[str]
    namespace: str
    pool: str
    token: str
    keys: list[str]
    acks: dict[str, list[Ack]] = field(default_factory=dict)
    failures: list[CallFailure] = field(default_factory=list)
    _clients: list[Client] = field(default_factory=list)
    _callers: list[asyncio.Task[None]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: Set by `stop`: callers end at their next turn even if a cancellation was lost
    #: (Python 3.11's ``wait_for`` returns the call's result instead of raising
    #: ``CancelledError`` when the call ends in the same iteration as the cancel).
    _stopping: bool = False

    async def __aenter__(self) -> LedgerLoad:
        self._clients = [self._client(gateway) for gateway in self.gateways]
        self.acks = {key: [] for key in self.keys}
        for index, key in enumerate(self.keys):
            self._callers.append(asyncio.ensure_future(self._caller(index, key)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        for client in self._clients:
            await client.aclose()

    async def stop(self) -> None:
        """Stop calling (a call in flight is abandoned: neither acked nor failed)."""
        self._stopping = True
        for task in self._callers:
            task.cancel()
        await asyncio.gather(*self._callers, return_exceptions=True)
        self._callers.clear()

    def _client(self, gateway: str) -> Client:
        return Client(
            gateway,
            namespace=self.namespace,
            pool_name=self.pool,
            token=self.token,
            timeout=CALL_TIMEOUT,
        )

    async def _caller(self, index: int, key: str) -> None:
        turn = index
        while not self._stopping:
            gateway = turn % len(self._clients)
            handle = self._clients[gateway].get_or_create("ledger", [key])
            sent = time.monotonic_ns()
            try:
                answer: dict[str, Any] = await asyncio.wait_for(handle.bump(), CALL_TIMEOUT)
            except Exception as exc:
                failure = CallFailure(key, self.gateways[gateway], sent, repr(exc)[:300])
                self.failures.append(failure)
                turn += 1
                await asyncio.sleep(RETRY_PAUSE)
                continue
            ack = Ack(
                key, answer["actor"], answer["count"], answer["envoy"], sent, time.monotonic_ns()
            )
            self.acks[key].append(ack)
            async with self._changed:
                self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[LedgerLoad], bool], timeout: float) -> None:
        """Wait until ``predicate(self)`` holds after some ack.

        Raises:
            TimeoutError: not within ``timeout`` seconds; the message says where each
                key stands (`describe`).
        """
        started = time.monotonic_ns()
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: predicate(self))
        except TimeoutError:
            raise TimeoutError(f"no progress in {timeout} s:\n{self.describe(started)}") from None

    def describe(self, since: int) -> str:
        """Each key's acks and the failed calls since ``since``, for a failure message."""
        lines = [
            f"{key}: {len(self.acked_since(key, since))} acked since, last "
            f"{self.acks[key][-1] if self.acks[key] else None}"
            for key in self.keys
        ]
        failures = self.failures_since(since)
        lines.append(f"{len(failures)} failed calls since; the last ones:")
        lines.extend(f"  {f.key} via {f.gateway}: {f.error}" for f in failures[-8:])
        return "\n".join(lines)

    def has_acks(self, count: int, since: int = 0, envoy: str | None = None) -> bool:
        """Each key has ``count`` writes sent since ``since`` acknowledged (by ``envoy``
        if given); a predicate for `wait_until`."""
        return all(
            len([a for a in self.acked_since(key, since) if envoy in (None, a.envoy)]) >= count
            for key in self.keys
        )

    def acked_since(self, key: str, since: int) -> list[Ack]:
        return [ack for ack in self.acks[key] if ack.sent >= since]

    def owner(self, key: str) -> str | None:
        """The envoy of the key's last acknowledged write."""
        answered = self.acks[key]
        return answered[-1].envoy if answered else None

    def failures_since(self, since: int) -> list[CallFailure]:
        return [failure for failure in self.failures if failure.at >= since]

    def failover(self, keys: list[str], since: int, envoy: str | None = None) -> list[float]:
        """Seconds from ``since`` to each key's first write acknowledged after it (by
        ``envoy`` if given: an answer the killed envoy sent just before its death can
        still arrive after it)."""
        return [
            (
                min(
                    ack.at
                    for ack in self.acks[key]
                    if ack.at > since and envoy in (None, ack.envoy)
                )
                - since
            )
            / 1e9
            for key in keys
        ]

    async def read_final(self, gateway: int = 0) -> dict[str, int]:
        """Each key's count as its actor now reports it (after `stop`), through
        ``gateways[gateway]``: all keys at once, bounded by one `CALL_TIMEOUT`.

        Raises:
            TimeoutError: some actor did not answer in time; the message names them.
        """

        async def read(key: str) -> int:
            handle = self._clients[gateway].get_or_create("ledger", [key])
            state: dict[str, Any] = await handle.read()
            return int(state["count"])

        reads = {key: asyncio.ensure_future(read(key)) for key in self.keys}
        _, pending = await asyncio.wait(reads.values(), timeout=CALL_TIMEOUT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        silent = [key for key, task in reads.items() if task in pending]
        if silent:
            raise TimeoutError(f"no final count in {CALL_TIMEOUT} s from {silent}")
        return {key: task.result() for key, task in reads.items()}
