"""Reads a client's items in a background task, so that the client runs (and
reconnects) while a test does other things; every wait on it is bounded."""

import asyncio


class Collector:
    """Collects the items of an async iterator into ``items`` as they come."""

    def __init__(self, iterator):
        self.iterator = iterator
        self.items = []
        self.error = None
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self):
        try:
            async for item in self.iterator:
                self.items.append(item)
                self._changed.set()
        except Exception as e:  # reported by wait_for
            self.error = e
            self._changed.set()

    def of(self, kind):
        return [i for i in self.items if i["type"] == kind]

    @property
    def events(self):
        return self.of("event")

    async def wait_for(self, what, predicate, timeout=20.0):
        """Waits until ``predicate(self)`` holds; fails after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            if self.error is not None:
                raise AssertionError(f"the client failed while waiting for {what}: {self.error!r}")
            if self._task.done():
                raise AssertionError(f"the client stopped while waiting for {what}; last items {self.items[-3:]}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}: {len(self.events)} events; last items {self.items[-3:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def stop(self):
        """Stops reading and closes the iterator (and so the connection)."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        await self.iterator.aclose()
