"""A real uvicorn server on 127.0.0.1 in a daemon thread, for HTTP tests of the `/api` and `/v1` routes.

`LiveServer(app).start()` returns once the socket accepts connections; `stop()` asks uvicorn to exit and
waits a bounded time (forcing the exit if streams are still open). Use it as a context manager.
"""

from __future__ import annotations

import threading
import time

import uvicorn


class LiveServer:
    def __init__(self, app, port: int | None = None, *, graceful_shutdown_s: float = 2.0):
        if port is None:
            from tests.conftest import free_port

            port = free_port()
        self.config = uvicorn.Config(
            app=app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
            timeout_graceful_shutdown=graceful_shutdown_s,
        )
        self.server = uvicorn.Server(self.config)
        self.port = port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "LiveServer":
        # uvicorn installs no signal handlers outside the main thread, so a daemon thread is enough
        self._thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"uvicorn on 127.0.0.1:{self.port} exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn on 127.0.0.1:{self.port} did not start in {timeout:g} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self.server.should_exit = True
        self._thread.join(timeout / 2)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(timeout / 2)
        alive = self._thread.is_alive()
        self._thread = None
        if alive:
            raise RuntimeError(f"uvicorn on 127.0.0.1:{self.port} did not stop in {timeout:g} s")

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
