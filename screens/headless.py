"""Driving the app headless (tests, benches, the README screenshot script)."""

from __future__ import annotations


async def settle(app, pilot) -> None:
    """Wait for every worker (model loads, encodings, tokenizing) and the repaint after."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()
