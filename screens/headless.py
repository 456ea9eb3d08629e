"""Driving the app headless (tests, benches, the README screenshot script)."""

from __future__ import annotations


async def settle(app, pilot) -> None:
    """Wait for every worker (model loads, encodings, tokenizing) and the repaint after.

    A worker cancelled while we wait (an exclusive worker replaced by a newer one) is not an
    error here: the newer one is waited for on the next round."""
    from textual.worker import WorkerCancelled

    for _ in range(3):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            await pilot.pause()
            continue
        await pilot.pause()
