"""Content read by digest, read once per client: verification, ages and explanations ask for the
same images, and on Docker Hub each read is a pull."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class ReadOnce:
    """Content fetched by digest, kept for the client's life: what is asked again (or while
    it is being fetched) costs no request. Only verified answers are kept, per repository (a
    token's scope is one repository), and only small ones, up to a total."""

    def __init__(self, max_item: int = 1 << 20, max_total: int = 64 << 20) -> None:
        self.max_item, self.max_total, self.total = max_item, max_total, 0
        self._done: dict[tuple[str, str, str], tuple[bytes, str]] = {}
        self._pending: dict[tuple[str, str, str], asyncio.Future[tuple[bytes, str]]] = {}

    async def once(self, key: tuple[str, str, str],
                   fetch: Callable[[], Awaitable[tuple[bytes, str]]]) -> tuple[bytes, str]:
        if key in self._done:
            return self._done[key]
        loop = asyncio.get_running_loop()
        pending = self._pending.get(key)
        if pending is None or pending.get_loop() is not loop:
            pending = asyncio.ensure_future(fetch())
            self._pending[key] = pending
            pending.add_done_callback(lambda task: self._settle(key, task))
        # one caller giving up (a deadline, a cancelled change) does not cancel the others' read
        return await asyncio.shield(pending)

    def _settle(self, key: tuple[str, str, str], task: asyncio.Future[tuple[bytes, str]]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if task.cancelled() or task.exception() is not None:
            return  # a failure is not kept: the caller that sees it decides
        body = task.result()
        if len(body[0]) <= self.max_item and self.total + len(body[0]) <= self.max_total:
            self._done[key] = body
            self.total += len(body[0])
