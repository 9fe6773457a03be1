"""Registry providers: the APIs that fill the registry tables (``enrichment.records``), and the
resource that picks one.

A provider is Pappers (paid, key in MA_PAPPERS_API_KEY) or the API Recherche d'entreprises (free,
no key). Both refresh the day's targets the same way (``enrichment.refresh``: new, changed and
old targets within a daily call budget) and yield the same rows, so features and scoring do not
care which one ran. Each runs on its own sandbox offline: Pappers without a key, the API
Recherche d'entreprises when its sandbox is switched on.
"""

import abc
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import polars as pl
from pydantic import Field

from ma_pipeline.enrichment.cache import Answer, ApiCache, ApiUsage
from ma_pipeline.enrichment.http import ApiClient
from ma_pipeline.enrichment.records import RegistryRecord
from ma_pipeline.enrichment.refresh import RefreshPlan, plan_refresh
from ma_pipeline.enrichment.resource import ApiResource, today
from ma_pipeline.enrichment.runner import EnrichmentRun
from ma_pipeline.settings import SANDBOX_UNITS, LaunchSettings
from ma_pipeline.warehouse import Warehouse

PROVIDERS = ("pappers", "recherche_entreprises")


class RegistryApi(ApiResource, abc.ABC):
    """An API answering, per SIREN, what the registry tables hold."""

    label: ClassVar[str]  # how messages name the provider

    cache_ttl_hours: float | None = Field(
        default=24.0,
        description="Age after which a cached answer is fetched again, for a look-up on demand",
    )
    max_age_days: float | None = Field(
        default=30.0,
        description="Age after which a target's answer is fetched again by the daily enrichment"
        " even if its SIRENE record did not change",
    )
    daily_calls: int | None = Field(
        default=None,
        description="Calls the daily enrichment may make a calendar day (Paris); unset: no limit",
    )
    max_failure_rate: float | None = Field(
        default=0.05, description="Share of failed companies above which the asset fails"
    )
    sandbox_companies: int | None = Field(
        default=SANDBOX_UNITS,
        description="MA_SANDBOX_COMPANIES: the universe the sandbox answers for",
    )
    sandbox_seed: int = Field(default=2026, description="Seed of the sandbox universe")
    sandbox_as_of: str | None = Field(
        default="", description="Day the sandbox answers as of (YYYY-MM-DD); empty: today"
    )

    @property
    def sandbox_day(self) -> date | None:
        return date.fromisoformat(self.sandbox_as_of) if self.sandbox_as_of else None

    @abc.abstractmethod
    async def fetch(self, client: ApiClient, siren: str) -> Answer:
        """One look-up: the answer (a negative one included), or the error it means."""

    @abc.abstractmethod
    def parse(self, answer: Answer) -> RegistryRecord | None:
        """The rows of a stored answer, or None when it says the company is not to be kept."""

    def credits(self, answer: Answer) -> float:
        """Credits an answer cost: one per answered call unless the provider says otherwise."""
        return 1.0

    def enrich(
        self, sirens: Sequence[str], warehouse: Warehouse, now: datetime | None = None
    ) -> EnrichmentRun[RegistryRecord]:
        """Records for ``sirens``: cached within the TTL, fetched otherwise."""
        return self._enrich(
            sirens, warehouse, fetch=self.fetch, parse=self.parse, credits=self.credits, now=now
        )

    def refresh(
        self, targets: pl.DataFrame, warehouse: Warehouse, now: datetime | None = None
    ) -> tuple[RefreshPlan, EnrichmentRun[RegistryRecord]]:
        """Records for ``targets`` (``siren``, ``date_dernier_traitement``): only the new,
        changed and old ones are fetched, within what is left of the day's calls; the others
        are served from their stored answers (``enrichment.refresh``)."""
        now = now or datetime.now(UTC)
        sirens = targets["siren"].unique().sort().to_list()
        stored = ApiCache(warehouse, self.source, timedelta(hours=self.cache_ttl_hours)).state(
            sirens
        )
        budget = None
        if self.daily_calls is not None:
            spent = ApiUsage(warehouse, self.source).calls_made(today(now))
            budget = max(self.daily_calls - spent, 0)
        plan = plan_refresh(
            targets, stored, now=now, max_age=timedelta(days=self.max_age_days), budget=budget
        )
        run = self._enrich(
            plan.fetch + plan.reuse,
            warehouse,
            fetch=self.fetch,
            parse=self.parse,
            credits=self.credits,
            now=now,
            plan=plan,
        )
        return plan, run


class RegistryResource(LaunchSettings):
    """The registry provider of a run, chosen by MA_REGISTRY_PROVIDER when the run launches."""

    from_settings: ClassVar[dict[str, str]] = {"provider": "MA_REGISTRY_PROVIDER"}

    provider: str | None = Field(
        default=None,
        description="pappers (its sandbox without a key) or recherche_entreprises (free, no key)",
    )
    pappers: RegistryApi
    recherche_entreprises: RegistryApi

    def api(self) -> RegistryApi:
        """The chosen provider, its own unset fields read from the environment now."""
        chosen = self.resolved()
        api = (
            chosen.recherche_entreprises
            if chosen.provider == "recherche_entreprises"
            else (chosen.pappers)
        )
        return api.resolved()
