"""Run a function over items in worker processes, with a progress bar.

Workers are forked (cheap to start) before any progress thread exists, and take the items in
order, so jobs grouped by task reuse each worker's cached env. ``backend="ray"`` spreads the
items over a Ray cluster instead (``ctdkit.ray_backend``).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from ctdkit.errors import unknown
from ctdkit.progress import progress_bar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

BACKENDS = ("local", "ray")


def parallel_map(
    function: Callable[[ItemT], ResultT],
    items: Sequence[ItemT],
    workers: int,
    description: str,
    done: int = 0,
    enabled: bool = True,
    *,
    backend: str = "local",
    ray_address: str | None = None,
) -> list[ResultT]:
    """Apply ``function`` to ``items`` in ``workers`` processes (inline for 1), with progress.

    Results come back in input order. ``done`` items finished earlier count toward the bar.
    ``backend="ray"`` runs each item as a Ray task on the cluster at ``ray_address``; without an
    address (and no Ray already initialised) it starts a local Ray with ``workers`` CPUs.
    """
    if backend not in BACKENDS:
        raise unknown("backend", backend, BACKENDS)
    if backend == "ray":
        from ctdkit.ray_backend import ray_map  # optional dependency

        return ray_map(function, items, workers, description, done, enabled, ray_address)
    results: list[ResultT] = []
    if workers == 1 or len(items) <= 1:
        with progress_bar(description, total=done + len(items), enabled=enabled) as advance:
            advance(done)
            for item in items:
                results.append(function(item))
                advance(1)
        return results
    # fork before the progress bar starts its refresh thread: a fork copies held locks
    context = mp.get_context("fork" if sys.platform != "win32" else "spawn")
    pool = context.Pool(min(workers, len(items)))
    try:
        with progress_bar(description, total=done + len(items), enabled=enabled) as advance:
            advance(done)
            for result in pool.imap(function, items, chunksize=1):
                results.append(result)
                advance(1)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return results
