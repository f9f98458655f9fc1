"""Background tasks that say so when they die of a bug instead of vanishing silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


def spawn(coro: Coroutine[Any, Any, None], name: str, log: logging.Logger) -> asyncio.Task[None]:
    """Starts `coro` as a task that logs an unexpected exception the moment it ends with one
    (asyncio would only mention it when the task is garbage-collected)."""
    task = asyncio.get_running_loop().create_task(coro, name=name)

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("%s stopped by an unexpected error", name, exc_info=done.exception())

    task.add_done_callback(report)
    return task


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancels `task` and waits until it has finished cleaning up."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        # Only swallow the cancellation we asked for; if our own caller is being
        # cancelled too, keep propagating it.
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        pass  # already logged by spawn()'s report
