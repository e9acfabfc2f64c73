"""A manual clock and the reference server running in-process on it: token expiry
without sleeping.

``ManualClock`` moves only when told (``advance``); ``clocked_server`` runs the reference
server (``oauth2_sync.refserver.server.RegistryServer``) in a thread of the test process,
on 127.0.0.1 and a free port, with its token expiry reading that clock. Requests still go
over real HTTP: only the time the server reads is the test's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from oauth2_sync.refserver.server import RegistryServer as InProcessServer
from oauth2_sync.refserver.server import ServerConfig
from support.registry import SEED


class ManualClock:
    """A clock that moves only when told: token expiry without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds``."""
        self.now += seconds


@contextlib.contextmanager
def clocked_server(
    folder: Path, *, token_ttl: int = 1
) -> Iterator[tuple[InProcessServer, ManualClock]]:
    """An in-process server (port 0, the example seed, ``token_ttl`` s tokens, its database
    in ``folder``) on a manual clock; shut down when the block ends."""
    clock = ManualClock()
    server = InProcessServer(
        ServerConfig(folder / "r.db", port=0, seed=SEED, token_ttl=token_ttl, clock=clock)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, clock
    finally:
        server.shutdown()
        thread.join(timeout=15)
