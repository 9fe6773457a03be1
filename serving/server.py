"""How ``ma-api serve`` runs the app: uvicorn with JSON logs, each answer sent in one write, and
workers with a listening socket each."""

import asyncio
import logging
import multiprocessing
import signal
import socket
import sys
import threading
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.observability import log_config

log = logging.getLogger(__name__)


class _CoalescingTransport:
    """A transport whose writes of one turn of the event loop go out together, at its end.

    Everything else is the wrapped transport's; closing sends what is pending first.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending and not self._transport.is_closing():
            self._transport.write(b"".join(self._pending))
        self._pending.clear()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, sending a response's head and body in one write.

    uvicorn writes the head on ``http.response.start`` and the body on ``http.response.body``:
    two syscalls and two TCP segments per answer, each read by the client. Sent together, the
    company look-up served ~20 % more requests/s at 64 connections (docs/benchmarks.md). aiohttp
    coalesces them the same way (aio-libs/aiohttp#10991). A streamed body still goes out as the
    app produces it: writes wait for the end of the event loop's turn, not for the last chunk.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = _CoalescingTransport(transport, self.loop)
        super().connection_made(cast(asyncio.Transport, coalescing))


def _worker(config: uvicorn.Config) -> None:
    """One worker process: its own socket on the shared port, then uvicorn's server."""
    config.configure_logging()  # the parent's configuration is not inherited by a spawned child
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    try:
        listening = socket.create_server(
            (config.host, config.port), family=family, backlog=config.backlog, reuse_port=True
        )
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    server = uvicorn.Server(config)
    server.run(sockets=[listening])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Workers:
    """``count`` uvicorn servers in processes of their own, each listening on the port with its
    own socket (``SO_REUSEPORT``), so the kernel spreads new connections evenly over them.

    uvicorn's ``--workers`` share one socket and whichever accepts first takes a burst: 64
    connections opened at once were split 64/0, 44/20 or 49/15 over two workers, and each
    kept-alive connection stays where it landed; the loaded worker's queue made the p99. A worker
    that dies is replaced; SIGINT or SIGTERM stops them all. As with any ``SO_REUSEPORT`` server,
    another such server of the same user on the same port would share its connections.
    """

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        self.config = config
        self.count = count
        self._stop = threading.Event()

    def _start(self) -> multiprocessing.process.BaseProcess:
        process = multiprocessing.get_context("spawn").Process(
            target=_worker, args=(self.config,), name="ma-api worker"
        )
        process.start()
        return process

    def run(self) -> int:
        """Serve until stopped; 0, or STARTUP_FAILURE when a worker could not start."""
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, lambda *_: self._stop.set())
        processes = [self._start() for _ in range(self.count)]
        code = 0
        while not self._stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.exitcode == STARTUP_FAILURE:
                    code = STARTUP_FAILURE
                    self._stop.set()
                elif process.exitcode is not None:
                    log.warning(
                        "worker %s exited (%s): starting another", process.pid, process.exitcode
                    )
                    processes[i] = self._start()
        for process in processes:
            process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for process in processes:
            process.join()
        return code


def serve(app: str, host: str, port: int, workers: int) -> int:
    """Serve the app factory ``app`` (``module:function``) until stopped; the exit code."""
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "http": CoalescingHttpToolsProtocol,
        "access_log": False,  # the API writes its own line per request
        "log_config": log_config(),
    }
    if workers == 1:
        uvicorn.run(app, **options)
        return 0
    return Workers(uvicorn.Config(app, **options), workers).run()
