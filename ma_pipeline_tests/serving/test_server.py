"""``ma-api serve``'s HTTP protocol: each answer in one write, over a recording transport (the
socket's edge) and over real connections to a uvicorn server."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import polars as pl
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE
from uvicorn.server import ServerState

from ma_pipeline_tests.processes import free_port
from ma_pipeline_tests.serving.conftest import COMPANIES, D2, TESTING, served_in_thread
from serving.app import create_app
from serving.config import ApiSettings
from serving.server import CoalescingHttpToolsProtocol
from serving.store import ApiStore

GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


def new_key(settings: ApiSettings) -> str:
    """The token of a new ``scores:read`` key in the API's database."""
    store = ApiStore(settings.api_database)
    store.create_tables()
    _, token = store.create_key("test", ["scores:read"])
    store.dispose()
    return token


def ma_api_serve(port: int) -> list[str]:
    """The command line of ``ma-api serve --workers 2`` on ``port``."""
    ma_api = Path(sys.executable).with_name("ma-api")
    return [str(ma_api), "serve", "--port", str(port), "--workers", "2"]


class RecordingTransport(asyncio.Transport):
    """What the protocol hands to the socket, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append(("write", bytes(data)))

    def close(self) -> None:
        self.closing = True
        self.events.append(("close", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def answer(_: Scope, receive: Receive, send: Send) -> None:
    await receive()
    headers = [(b"content-length", b"11"), (b"x-test", b"1")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


def connect(app: Any) -> tuple[RecordingTransport, CoalescingHttpToolsProtocol]:
    config = uvicorn.Config(app, http=CoalescingHttpToolsProtocol, lifespan="off", log_config=None)
    config.load()
    loop = asyncio.get_running_loop()
    protocol = CoalescingHttpToolsProtocol(config, ServerState(), app_state={}, _loop=loop)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return transport, protocol


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only, the loop uvicorn runs on (anyio would also try trio, which selenium
    installs)."""
    return "asyncio"


async def settle() -> None:
    """Let the request's task and the writes scheduled after it run."""
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.mark.anyio
async def test_an_answer_goes_out_in_one_write() -> None:
    transport, protocol = connect(answer)
    protocol.data_received(GET)
    await settle()

    [(event, data)] = transport.events
    head, body = data.split(b"\r\n\r\n")
    assert (event, head.split(b"\r\n")[0], body) == ("write", b"HTTP/1.1 200 OK", b'{"ok":true}')
    assert b"x-test: 1" in head
    protocol.data_received(GET)  # keep-alive: the next answer, on its own
    await settle()
    assert [event for event, _ in transport.events] == ["write", "write"]


@pytest.mark.anyio
async def test_a_closing_connection_sends_the_answer_first() -> None:
    transport, protocol = connect(answer)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    await settle()

    assert [event for event, _ in transport.events] == ["write", "close"]
    assert transport.events[0][1].startswith(b"HTTP/1.1 200 OK")


@pytest.mark.anyio
async def test_a_streamed_body_goes_out_as_it_is_produced() -> None:
    more = asyncio.Event()

    async def stream(_: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await more.wait()
        await send({"type": "http.response.body", "body": b"last"})

    transport, protocol = connect(stream)
    protocol.data_received(GET)
    await settle()
    assert len(transport.events) == 1 and b"first" in transport.events[0][1]

    more.set()
    await settle()
    assert len(transport.events) == 2 and b"last" in transport.events[1][1]


@pytest.fixture
def server(
    warehouse_url: str, data_dir: Path, published: dict[date, pl.DataFrame]
) -> Iterator[tuple[str, dict[str, str]]]:
    """The API served by uvicorn with ``ma-api serve``'s protocol, on a free port; its URL and
    the headers of a key."""
    settings = ApiSettings(data_dir=data_dir, warehouse_url=warehouse_url, **TESTING)
    token = new_key(settings)
    with served_in_thread(create_app(settings), http=CoalescingHttpToolsProtocol) as url:
        yield url, {"X-API-Key": token}


def test_the_served_api_answers_over_real_connections(
    server: tuple[str, dict[str, str]], published: dict[date, pl.DataFrame]
) -> None:
    url, key = server
    expected = published[D2].filter(pl.col("siren").is_in(COMPANIES[:20]))
    with httpx.Client(base_url=url, headers=key) as client:  # one kept-alive connection
        answers = [client.get(f"/v1/companies/{siren}") for siren in COMPANIES[:20]]
        assert client.get("/health").json()["served_date"] == str(D2)
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["siren"]: a.json()["scores"]["ma"]["value"] for a in answers} == dict(
        expected.select("siren", "score_ma").rows()
    )

    # Connection: close, read to the end: the whole answer arrives before the server closes.
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as raw:
        request = f"GET /v1/companies/{COMPANIES[0]} HTTP/1.1\r\nHost: test\r\n"
        raw.sendall(f"{request}X-API-Key: {key['X-API-Key']}\r\nConnection: close\r\n\r\n".encode())
        received = b"".join(iter(lambda: raw.recv(65536), b""))
    head, body = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert orjson.loads(body)["siren"] == COMPANIES[0]


def sockets(pid: int) -> list[str]:
    """The process's sockets, as ``socket:[inode]``."""
    links = (str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir())
    return [link for link in links if link.startswith("socket:")]


def listening(port: int) -> set[str]:
    """The sockets listening on ``port`` (IPv4), as ``socket:[inode]``."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return {f"socket:[{r[9]}]" for r in rows if r[1].endswith(f":{port:04X}") and r[3] == "0A"}


def serving_workers(pid: int) -> list[int]:
    """The worker processes of ``ma-api serve`` (multiprocessing's resource tracker left out)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    children = [int(c) for task in tasks for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def wait_until_serving(url: str, server: subprocess.Popen[bytes]) -> None:
    """Until ten new connections in a row (spread over the workers) are answered."""
    deadline = time.monotonic() + 120
    answered = 0
    while answered < 10:
        assert server.poll() is None and time.monotonic() < deadline, "the API did not start"
        try:
            answered = answered + 1 if httpx.get(f"{url}/health", timeout=60).is_success else 0
        except httpx.TransportError:
            answered = 0
            time.sleep(0.2)


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_every_worker_answers_and_a_dead_one_is_replaced(
    warehouse_url: str, data_dir: Path, published: dict[date, pl.DataFrame]
) -> None:
    env = os.environ | {"MA_DATA_DIR": str(data_dir), "MA_WAREHOUSE_URL": warehouse_url}
    port = free_port()
    parent = subprocess.Popen(ma_api_serve(port), env=env, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, parent)
        header = f"X-API-Key: {new_key(ApiSettings(data_dir, warehouse_url))}"
        workers = serving_workers(parent.pid)
        # A listening socket of its own in each worker (uvicorn's workers share one).
        own = [listening(port).intersection(sockets(pid)) for pid in workers]
        assert len(own) == 2 and all(len(s) == 1 for s in own) and own[0] != own[1], own
        before = {pid: len(sockets(pid)) for pid in workers}

        # 64 connections opened before any is answered, as a client's pool does
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        try:
            for connection, siren in zip(connections, COMPANIES, strict=False):
                connection.sendall(
                    f"GET /v1/companies/{siren} HTTP/1.1\r\nHost: t\r\n{header}\r\n\r\n".encode()
                )
            assert all(c.recv(65536).startswith(b"HTTP/1.1 200 OK") for c in connections)
            shares = [len(sockets(pid)) - before[pid] for pid in workers]
        finally:
            for connection in connections:
                connection.close()
        # Each worker listens and answers (the even spread under load is measured by bench_api).
        assert sum(shares) == 64 and min(shares) >= 12, shares

        os.kill(workers[0], signal.SIGKILL)  # a worker dies: another takes its place
        deadline = time.monotonic() + 60
        while len(replaced := serving_workers(parent.pid)) < 2 or workers[0] in replaced:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        with httpx.Client(base_url=url) as client:
            assert all(client.get("/health").status_code == 200 for _ in range(20))
    finally:
        parent.terminate()  # SIGTERM: every worker stops too
        assert parent.wait(60) == 0
    assert not Path(f"/proc/{workers[1]}").exists()


def test_workers_that_cannot_listen_stop_the_server(data_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:  # not SO_REUSEPORT: the port is busy
        port = taken.getsockname()[1]
        serving = subprocess.run(ma_api_serve(port), capture_output=True, text=True, timeout=120)
    assert serving.returncode == STARTUP_FAILURE
    assert f"cannot listen on 127.0.0.1:{port}" in serving.stderr
