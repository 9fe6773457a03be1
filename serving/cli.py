"""``ma-api``: serve the API, and create, list or revoke API keys.

ma-api serve [--host 127.0.0.1] [--port 8000] [--workers 1]
ma-api keys create --name crm --scopes scores:read,contacts:read [--rate-limit 50]
ma-api keys list
ma-api keys revoke 1a2b3c4d5e6f
"""

import argparse
import sys

from serving.config import ApiSettings
from serving.server import serve
from serving.store import SCOPES, ApiStore


def _serve(args: argparse.Namespace) -> int:
    _store().dispose()  # tables first, once, rather than by each worker at start-up
    return serve("serving.app:create_app", args.host, args.port, args.workers)


def _store() -> ApiStore:
    store = ApiStore(ApiSettings().api_database)
    store.create_tables()
    return store


def _create(args: argparse.Namespace) -> int:
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    try:
        key, token = _store().create_key(args.name, scopes, args.rate_limit)
    except ValueError as exc:
        print(f"ma-api: {exc}", file=sys.stderr)
        return 2
    print(f"key {key.id} ({key.name}) with scopes {', '.join(sorted(key.scopes))}")
    print("token (shown once, store it now):")
    print(token)
    return 0


def _list(_: argparse.Namespace) -> int:
    for key in _store().list_keys():
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        rate = f"{key.rate_per_second:g}/s" if key.rate_per_second else "default rate"
        print(
            f"{key.id}  {key.name}  {','.join(sorted(key.scopes))}  {rate}"
            f"  created {key.created_at:%Y-%m-%d %H:%M}  {state}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    if not _store().revoke_key(args.id):
        print(f"ma-api: no active key {args.id!r}", file=sys.stderr)
        return 1
    print(f"key {args.id} revoked")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="ma-api", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = root.add_subparsers(required=True, metavar="command")

    serve = commands.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="processes (each holds the scores)")
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        required=True, metavar="action"
    )
    create = keys.add_parser("create", help="create a key and print its token once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help=f"comma-separated: {','.join(SCOPES)}")
    create.add_argument(
        "--rate-limit", type=float, help="requests per second (default MA_API_RATE_PER_SECOND)"
    )
    create.set_defaults(run=_create)
    keys.add_parser("list", help="list keys (never their tokens)").set_defaults(run=_list)
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id")
    revoke.set_defaults(run=_revoke)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)
