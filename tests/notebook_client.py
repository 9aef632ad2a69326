"""nbclient's NotebookClient, reading kernel messages in short polls.

A cell that opens ipywidgets (the 3D notebook's slider) sometimes leaves a long
``socket.poll`` on a kernel channel asleep after the reply has arrived: nbclient then waits
out the whole cell timeout (600 s here) and goes on as if nothing happened
(jupyter/nbclient#312). Polls of at most a second see the message within a second. Used by
the notebook tests and by ``docs/make_figures.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from queue import Empty
from time import monotonic
from typing import Any

from jupyter_core.utils import ensure_async
from nbclient import NotebookClient

POLL_SECONDS = 1.0


def _polling(get_msg: Callable[..., Any]) -> Callable[..., Awaitable[dict]]:
    async def poll(timeout: float | None = None) -> dict:
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            left = POLL_SECONDS if deadline is None else max(0.0, deadline - monotonic())
            try:
                return await ensure_async(get_msg(timeout=min(POLL_SECONDS, left)))
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise

    return poll


class PollingNotebookClient(NotebookClient):
    async def async_start_new_kernel_client(self):
        client = await super().async_start_new_kernel_client()
        for channel in (client.shell_channel, client.iopub_channel):
            channel.get_msg = _polling(channel.get_msg)
        return client
