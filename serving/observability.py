"""Structured JSON logs, request ids and Prometheus metrics."""

import logging
import random
import re
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:  # the server's supervisor imports this module: it must stay light
    from serving.published import Served

REQUEST_ID_HEADER = "X-Request-ID"
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("serving.access")

# uvicorn adds color_message, the message with ANSI colour codes.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id, and the extras.

    The lines carry no caller, thread or process: configuring the formatter turns off logging's
    look-ups of them for every record (a stack walk and a syscall per access-log line).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logging._srcfile = None  # type: ignore[attr-defined]
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()  # set while a request is handled
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def log_config(level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` for the server: every logger (uvicorn's too) in JSON on
    stderr; uvicorn's access log is off, the API writes its own line per request."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {"uvicorn.access": {"level": "WARNING"}},
    }


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (one app, one registry)."""

    def __init__(self, served: "Served") -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ma_api_requests",
            "HTTP requests answered, by route template and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ma_api_request_duration_seconds",
            "Time to answer a request, by route template",
            ["route"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        Gauge(
            "ma_api_served_partition_date",
            "Date of the partition served from memory, as a Unix timestamp; 0 before any",
            registry=self.registry,
        ).set_function(lambda: _midnight_timestamp(served))
        Gauge(
            "ma_api_served_companies",
            "Companies in the partition served from memory",
            registry=self.registry,
        ).set_function(lambda: 0 if served.view.latest is None else served.view.latest.frame.height)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _midnight_timestamp(served: "Served") -> float:
    latest = served.view.latest
    if latest is None:
        return 0.0
    return datetime(latest.day.year, latest.day.month, latest.day.day, tzinfo=UTC).timestamp()


LOGGED_PATH_CHARS = 200


def _logged_path(path: str) -> str:
    """The request's path, cut short: a client's 60,000-character SIREN makes no 60 kB line."""
    return path if len(path) <= LOGGED_PATH_CHARS else f"{path[:LOGGED_PATH_CHARS]}…"


class RequestContext:
    """Request id (echoed from ``X-Request-ID`` or generated), one access-log line and the
    metrics of every request. Plain ASGI: BaseHTTPMiddleware would cost more per request than
    the company lookup itself."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        valid = incoming is not None and _VALID_REQUEST_ID.fullmatch(incoming)
        # A request id only needs to be unique, not unguessable: uuid4 asked the kernel for
        # random bytes on every request.
        request_id = incoming if valid else f"{random.getrandbits(128):032x}"
        reset = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(template, scope["method"], status).inc()
            self.metrics.latency.labels(template).observe(duration)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": _logged_path(scope["path"]),
                    "route": template,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "key_id": scope.get("state", {}).get("key_id"),
                },
            )
            request_id_var.reset(reset)
