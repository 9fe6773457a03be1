"""What every external API resource shares: key, limits, retries, cache TTL, transport, mode.

Without a key a resource runs on its sandbox, an in-process transport that answers in the real
response shapes, so the same client, cache and parsing code run in demos, tests and production.
A transport can also be injected (tests, benches); the key is never part of any repr or message.
"""

import abc
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
from pydantic import Field

from ma_pipeline.enrichment.cache import Answer, ApiCache, ApiUsage
from ma_pipeline.enrichment.http import ApiClient, Limits
from ma_pipeline.enrichment.refresh import RefreshPlan
from ma_pipeline.enrichment.runner import EnrichmentRun, Fetch, Parse, T, run_enrichment
from ma_pipeline.partitions import TIMEZONE
from ma_pipeline.settings import LaunchSettings
from ma_pipeline.warehouse import Warehouse


class ApiResource(LaunchSettings, abc.ABC):
    """An external API reached through the shared client core (see ``enrichment.http``)."""

    source: ClassVar[str]
    live_rate_per_second: ClassVar[float | None]
    sandbox_rate_per_second: ClassVar[float | None]

    api_key: str | None = Field(
        default=None, repr=False, description="The API key; none: the sandbox (no real calls)"
    )
    base_url: str
    concurrency: int = Field(default=8, description="Requests in flight at most")
    rate_per_second: float | None = Field(
        default=None, description="Requests per second at most; none: the mode's default"
    )
    rate_per_minute: float | None = Field(default=None, description="Requests per minute at most")
    rate_margin_s: float = Field(
        default=0.01,
        description="Seconds added to every rate window, so that jitter between a request"
        " leaving and reaching the server never puts one request too many in a window",
    )
    timeout_s: float = Field(default=30.0, description="Seconds allowed for one request")
    max_attempts: int = Field(default=6, description="Tries per request (429, 5xx, timeouts)")
    backoff_base_s: float = Field(default=0.5, description="First backoff ceiling (doubles)")
    backoff_max_s: float = Field(default=30.0, description="Longest wait between two tries")
    cache_ttl_hours: float = Field(description="Age after which a cached answer is fetched again")
    transport: dg.ResourceDependency[httpx.AsyncBaseTransport | None] = None

    @property
    def mode(self) -> str:
        """'live' with a key (credits are spent), 'sandbox' without."""
        return "live" if self.api_key else "sandbox"

    @property
    def provenance(self) -> str:
        """What rows from this API say they come from: its source, ``_sandbox`` when generated."""
        return self.source if self.mode == "live" else f"{self.source}_sandbox"

    def limits(self) -> Limits:
        live = self.mode == "live"
        default = self.live_rate_per_second if live else self.sandbox_rate_per_second
        return Limits(
            concurrency=self.concurrency,
            per_second=self.rate_per_second or default,
            per_minute=self.rate_per_minute,
            margin_s=self.rate_margin_s,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
        )

    @abc.abstractmethod
    def headers(self) -> dict[str, str]:
        """The request headers, authentication included."""

    @abc.abstractmethod
    def sandbox_transport(self) -> httpx.AsyncBaseTransport:
        """The in-process API answering when there is no key."""

    def client(self) -> ApiClient:
        transport = self.transport
        if transport is None and self.mode == "sandbox":
            transport = self.sandbox_transport()
        return ApiClient(
            self.base_url, limits=self.limits(), headers=self.headers(), transport=transport
        )

    def _enrich(
        self,
        keys: Sequence[str],
        warehouse: Warehouse,
        *,
        fetch: Fetch,
        parse: Parse[T],
        credits: Callable[[Answer], float],
        now: datetime | None = None,
        budget: int | None = None,
        plan: RefreshPlan | None = None,
    ) -> EnrichmentRun[T]:
        now = now or datetime.now(UTC)
        result = run_enrichment(
            keys,
            cache=ApiCache(warehouse, self.source, timedelta(hours=self.cache_ttl_hours)),
            open_client=self.client,
            fetch=fetch,
            parse=parse,
            credits=credits,
            now=now,
            budget=budget,
            plan=plan,
        )
        ApiUsage(warehouse, self.source).record(
            today(now), result.counters.calls, result.credits, now
        )
        return result


def today(now: datetime) -> date:
    """The calendar day of ``now`` in Paris, the day credit budgets count by."""
    return now.astimezone(ZoneInfo(TIMEZONE)).date()
