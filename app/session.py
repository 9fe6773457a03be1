"""The user's session: the API key from the sidebar (kept in ``st.session_state`` only), the API
answers cached per published date, and API errors shown as messages."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from app.client import Api, ApiError, served_date

API_URL_ENV, API_KEY_ENV = "MA_APP_API_URL", "MA_APP_API_KEY"
DEFAULT_API_URL = "http://localhost:8000"
KEY_STATE = "api_key"
SERVED_DATE_TTL_S = 30  # how soon a new publication shows
ANSWER_TTL_S = 24 * 3600  # the API publishes once a day; a new date makes new cache entries


def api_url() -> str:
    return os.environ.get(API_URL_ENV, DEFAULT_API_URL).rstrip("/")


def sidebar() -> None:
    """The key input; pre-filled from ``MA_APP_API_KEY`` when set. A password field: the key is
    never shown, put in the URL, nor logged."""
    st.session_state.setdefault(KEY_STATE, os.environ.get(API_KEY_ENV, ""))
    st.sidebar.text_input(
        "API key", key=KEY_STATE, type="password", help="A token from `ma-api keys create`"
    )
    st.sidebar.caption(f"API: {api_url()}")


def api() -> Api:
    """The API with the session's key; without a key the page stops with a prompt."""
    key = st.session_state.get(KEY_STATE, "").strip()
    if not key:
        st.info("Enter your API key in the sidebar to start.")
        st.stop()
    return Api(api_url(), key)


@st.cache_data(ttl=SERVED_DATE_TTL_S, show_spinner=False)
def _served_date(base_url: str) -> str | None:
    return served_date(base_url)


@st.cache_data(ttl=ANSWER_TTL_S, max_entries=5_000, show_spinner=False)
def _cached_get(
    _api: Api,
    base_url: str,
    key_hash: str,
    published: str | None,
    path: str,
    params: tuple[tuple[str, Any], ...],
) -> Any:
    """Keyed on everything the answer depends on but the key itself: the API, the key (by its
    hash: scopes differ), the published date and the request. Errors are not cached."""
    return _api.get(path, **dict(params))


def cached_get(api: Api, path: str, **params: Any) -> Any:
    """``api.get``, answered from the cache while the API serves the same published date."""
    published = _served_date(api.base_url)
    return _cached_get(api, api.base_url, api.key_hash, published, path, tuple(params.items()))


@contextmanager
def errors_shown() -> Iterator[None]:
    """Stop the page with the error's message (what to do), never a traceback."""
    try:
        yield
    except ApiError as exc:
        st.error(str(exc))
        st.stop()
