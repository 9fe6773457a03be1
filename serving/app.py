"""The FastAPI app factory, served by ``ma-api serve`` (or any ASGI server:
``uvicorn --factory serving.app:create_app``)."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from serving.auth import API_KEY_HEADER, KeyRing
from serving.config import ApiSettings
from serving.observability import REQUEST_ID_HEADER, Metrics, RequestContext
from serving.published import Served, open_store
from serving.ratelimit import RateLimits, open_storage
from serving.routes import ops, v1
from serving.store import ApiStore

log = logging.getLogger(__name__)

SWAGGER_ASSETS = "/static/swagger-ui"
DESCRIPTION = f"""Scores of French companies (M&A likelihood, growth, stability) with their
reasons, as published by the ma_pipeline: only partitions that passed their checks are served.

Every `/v1` route needs an API key in the `{API_KEY_HEADER}` header (`ma-api keys create`), with
the route's scope: `scores:read`, `contacts:read` (personal data) or `requests:write`. Errors are
`{{"detail": "..."}}`; 429 answers carry `Retry-After`. Every answer carries `{REQUEST_ID_HEADER}`.
"""


QUOTED_CHARS = 60  # of a client's input quoted back in a 422 (and so in its log line)
DESCRIBED_ERRORS = 10  # problems described in one 422; the others are counted


def _quote(value: str) -> str:
    """``value``, or its first ``QUOTED_CHARS`` characters and an ellipsis."""
    return value if len(value) <= QUOTED_CHARS else f"{value[:QUOTED_CHARS]}…"


def _describe(error: dict[str, Any]) -> str:
    """One validation error as a sentence: which parameter, the value given (its start when
    long), what is wrong."""
    names = [_quote(str(part)) for part in error["loc"][1:] if isinstance(part, str)]
    name = ".".join(names) or error["loc"][0]
    value = error.get("input")
    if names and isinstance(value, str | int | float):
        shown = _quote(value) if isinstance(value, str) else value
        return f"{name} {shown!r}: {_quote(error['msg'])}"
    return f"{name}: {_quote(error['msg'])}"


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 as every other error: ``{"detail": "<one sentence per problem>"}``, quoting at most
    the start of what the client sent, so a huge input makes neither a huge answer nor log."""
    problems = exc.errors()
    detail = "; ".join(_describe(error) for error in problems[:DESCRIBED_ERRORS])
    if len(problems) > DESCRIBED_ERRORS:
        detail += f"; and {len(problems) - DESCRIBED_ERRORS} more problems"
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    served = Served(open_store(settings), settings.partition_files)
    api_store = ApiStore(settings.api_database)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(api_store.create_tables)
        try:
            await anyio.to_thread.run_sync(served.refresh)
        except Exception:  # keep starting: /health says what is wrong, the refresh retries
            log.exception("loading the published scores failed")
        # The imports (dagster, polars, SQLAlchemy...) leave ~240k long-lived objects, which every
        # full collection would walk: a ~100 ms pause every few seconds under load, which was
        # the p99. Frozen, they are left out of every collection.
        gc.freeze()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(served.keep_fresh, settings.refresh_seconds)
            yield
            tasks.cancel_scope.cancel()
        served.store.close()
        api_store.dispose()

    app = FastAPI(
        title="ma_pipeline scores API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The API has its own metrics (/metrics) and JSON logs; FastAPI's OpenTelemetry hooks,
        # on by default, looked for a provider on every request: ~30 % of a trivial route's
        # throughput here, with no provider configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        exception_handlers={RequestValidationError: _validation_error},
        docs_url=None,  # served below from the installed Swagger UI, not from a CDN
        redoc_url=None,
    )
    app.mount(SWAGGER_ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI with its JavaScript and CSS from this server: /docs works offline."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon-32x32.png",
        )

    app.state.settings = settings
    app.state.served = served
    app.state.api_store = api_store
    app.state.keys = KeyRing(api_store, settings.key_cache_seconds)
    app.state.limits = RateLimits(
        open_storage(settings.redis_url, settings.rate_limit_prefix),
        settings.rate_per_second,
        settings.rate_burst,
        settings.auth_failures_per_minute,
    )
    app.state.metrics = Metrics(served)
    app.include_router(v1)
    app.include_router(ops)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Idempotency-Key", REQUEST_ID_HEADER, "Content-Type"],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After", "Location"],
        )
    app.add_middleware(RequestContext, metrics=app.state.metrics)
    return app
