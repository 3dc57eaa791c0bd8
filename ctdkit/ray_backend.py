"""The Ray backend of :func:`ctdkit.parallel.parallel_map`: each item is one Ray task.

Ray is an optional extra (``pip install "ctdkit[ray]"``). Without an address a local Ray is
started once per process (and left running for later maps: starting one takes seconds); with
``--ray-address HOST:PORT`` the tasks go to that cluster, whose nodes need the same ctdkit
install. Usage-stats reporting is off. Results come back in input order whatever order the
tasks finish in, so the data stay identical to the local backend's.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

from ctdkit.errors import CtdkitError
from ctdkit.progress import progress_bar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

CONNECT_TIMEOUT_S = 3.0  # ray.init retries an unreachable head for minutes; fail fast instead
POLL_S = 0.2  # how often finished tasks are collected and the progress bar advanced


def _import_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # read when Ray starts
    try:
        import ray
    except ImportError:
        raise CtdkitError(
            'the Ray backend needs Ray: pip install "ctdkit[ray]" (or pass --backend local)'
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """Raise a one-line error unless something listens at ``address`` (``[ray://]HOST:PORT``)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise CtdkitError(f"--ray-address must be HOST:PORT (e.g. 10.0.0.1:6379), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise CtdkitError(
            f"no Ray cluster answers at {address} ({error.strerror or error}); "
            "start one with `ray start --head` or fix --ray-address"
        ) from None


def connect(address: str | None = None, num_cpus: int | None = None):
    """Return the ``ray`` module, connected to ``address`` or to a (new) local Ray."""
    ray = _import_ray()
    if address not in (None, "auto"):
        _check_reachable(address)
    if ray.is_initialized():  # e.g. by the caller, or by an earlier map of this process
        return ray
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except Exception as error:  # Ray raises ConnectionError, RuntimeError, AuthenticationError...
        raise CtdkitError(
            f"could not join the Ray cluster at {address}: {_reason(ray, error)}"
        ) from None
    return ray


def _reason(ray, error: BaseException) -> str:
    """One line saying why ``ray.init`` failed (its root cause, which Ray wraps twice)."""
    chain = [error]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    if any(
        isinstance(e, ray.exceptions.AuthenticationError) or "InvalidAuthToken" in str(e)
        for e in chain
    ):
        return (
            "it uses token authentication: set RAY_AUTH_MODE=token here, with the cluster's "
            "token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
        )
    lines = [line for line in str(chain[-1]).splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(chain[-1]).__name__


def ray_map(
    function: Callable[[ItemT], ResultT],
    items: Sequence[ItemT],
    workers: int,
    description: str,
    done: int = 0,
    enabled: bool = True,
    address: str | None = None,
) -> list[ResultT]:
    """Run ``function`` on each item as a one-CPU Ray task; results in input order."""
    ray = connect(address, num_cpus=workers)
    task = ray.remote(num_cpus=1)(function)
    refs = [task.remote(item) for item in items]
    position = {ref: i for i, ref in enumerate(refs)}
    results: list = [None] * len(refs)
    pending = list(refs)
    try:
        with progress_bar(description, total=done + len(items), enabled=enabled) as advance:
            advance(done)
            while pending:
                # everything finished by now (at most POLL_S later): O(pending) per poll
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
                for ref in ready:
                    results[position[ref]] = ray.get(ref)
                    advance(1)
    except ray.exceptions.RayTaskError as error:
        _cancel(ray, pending)
        # the worker's own exception (e.g. a CtdkitError), as the local backend would raise it
        raise (error.cause if isinstance(error.cause, Exception) else error) from None
    except BaseException:
        _cancel(ray, pending)
        raise
    return results


def _cancel(ray, refs: list) -> None:
    for ref in refs:
        ray.cancel(ref, force=True)
