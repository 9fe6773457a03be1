"""The app's only way to the data: the scores API over HTTP, with the user's key.

Every failure becomes an ``ApiError`` whose text tells the user what to do (fix the key, ask
for a scope, wait, start the API), so pages show a message and never a traceback. The key goes
in a header only: never in a URL, a message or a log line.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

KEY_HEADER = "X-API-Key"
PAGE_LIMIT = 500  # the largest page the API serves
TIMEOUT_S = 10.0
# One connection pool for every session of the app (httpx.Client is thread-safe).
_HTTP = httpx.Client(timeout=TIMEOUT_S)


class ApiError(Exception):
    """An answer the user can act on; ``str(error)`` says what to do."""


class InvalidKey(ApiError):
    """401: no key, or an invalid or revoked one."""


class MissingScope(ApiError):
    """403: the key lacks the route's scope."""


class RateLimited(ApiError):
    """429: the key's rate limit (or pending requests) is exceeded; retry after a wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiDown(ApiError):
    """No answer, or a server error: nothing the user can fix but waiting."""


class NotFound(ApiError):
    """404: not published, or no such company or request."""


class Refused(ApiError):
    """400 or 422: a parameter the API refused; the API's detail says which."""


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _answer(response: httpx.Response) -> Any:
    """The answer's JSON, or the ApiError that says what to do about it."""
    if response.is_success:
        return response.json()
    status, detail = response.status_code, _detail(response)
    if status == 401:
        raise InvalidKey(
            "The API key is missing, invalid or revoked: check the key in the sidebar, or ask"
            " for a new one (`ma-api keys create`)."
        )
    if status == 403:
        raise MissingScope(f"Your API key cannot see this: {detail}. Ask for a key with it.")
    if status == 429:
        wait = int(response.headers.get("Retry-After", "1"))
        raise RateLimited(f"Too many requests for this API key: retry in {wait} s.", wait)
    if status == 404:
        raise NotFound(detail)
    if status >= 500:
        raise ApiDown(f"The API failed ({status}): try again in a minute.")
    raise Refused(detail)


@dataclass(frozen=True)
class Api:
    """The API at ``base_url``, called with one user's key."""

    base_url: str
    key: str = field(repr=False)

    @property
    def key_hash(self) -> str:
        """Tells keys apart (their scopes differ) without holding the key itself."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    def get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._send("POST", path, json=body)

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a keyset-paginated list, one page in memory at a time."""
        cursor = None
        while True:
            page = self.get(path, **params, limit=PAGE_LIMIT, cursor=cursor)
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def _send(self, method: str, path: str, **request: Any) -> Any:
        try:
            response = _HTTP.request(
                method, f"{self.base_url}{path}", headers={KEY_HEADER: self.key}, **request
            )
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc) from None
        return _answer(response)


def _unreachable(base_url: str, exc: httpx.TransportError) -> ApiDown:
    return ApiDown(
        f"The API at {base_url} does not answer ({type(exc).__name__}): is it running?"
        " Try again once it is."
    )


def served_date(base_url: str) -> str | None:
    """The newest published date the API serves (``/health``, which needs no key)."""
    try:
        response = _HTTP.get(f"{base_url}/health")
        return response.json().get("served_date")  # 503 too: the API says what it serves
    except httpx.TransportError as exc:
        raise _unreachable(base_url, exc) from None
    except ValueError:
        raise ApiDown(f"{base_url} is not the scores API (its /health is not JSON).") from None
