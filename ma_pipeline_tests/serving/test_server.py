"""``ma-api serve``'s HTTP protocol: each answer in one write, over a recording transport (the
socket's edge) and over real connections to a uvicorn server."""

import asyncio
import socket
import threading
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
from uvicorn.server import ServerState

from ma_pipeline_tests.serving.conftest import COMPANIES, D2, TESTING
from serving.app import create_app
from serving.config import ApiSettings
from serving.server import CoalescingHttpToolsProtocol
from serving.store import ApiStore

GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


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
    store = ApiStore(settings.api_database)
    store.create_tables()
    _, token = store.create_key("test", ["scores:read"])
    store.dispose()
    config = uvicorn.Config(
        create_app(settings), port=0, http=CoalescingHttpToolsProtocol, log_config=None
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run)
    thread.start()
    try:
        while not uvicorn_server.started:
            assert thread.is_alive(), "the server did not start"
            thread.join(0.05)
        [listening] = uvicorn_server.servers[0].sockets
        yield f"http://127.0.0.1:{listening.getsockname()[1]}", {"X-API-Key": token}
    finally:
        uvicorn_server.should_exit = True
        thread.join()


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
