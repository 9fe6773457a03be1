"""The apps ``bench.bench_api`` serves, in a module of their own: the server's supervisor runs
here and imports no more than ``ma-api serve`` does, so the memory measured is the API's.

    python -m bench.api_apps PORT WORKERS {bench_app,bare_app}
"""

import sys

from fastapi import FastAPI

from serving.server import serve


def bench_app() -> FastAPI:
    """The API plus a constant endpoint: the floor the lookup is compared with. It is routed
    first, so the lookup also pays for the routes matched before its own: a strict ratio."""
    from serving.app import create_app  # in the workers only

    app = create_app()

    @app.get("/bench/constant", include_in_schema=False)
    async def constant() -> dict[str, str]:
        return {"status": "ok"}

    app.router.routes.insert(0, app.router.routes.pop())
    return app


def bare_app() -> FastAPI:
    """FastAPI alone: one constant route, no middleware, no partition."""
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/bench/constant")
    async def constant() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    port, workers, factory = sys.argv[1:]
    sys.exit(serve(f"bench.api_apps:{factory}", "127.0.0.1", int(port), int(workers)))
