"""Kaspr API: a person's professional contacts from their LinkedIn slug, on a daily budget.

``POST /profile/linkedin`` with a Bearer key and ``accept-version: v2.0`` (CONTRACTS §2). The
answer's key names differ between the public clients, so parsing reads every alias; ``starry*``
fields are masked previews and are never kept, nor is any value still carrying a ``*``. A 200
with an empty profile is a miss, cached like a 404. 402 means no credits left: the run stops and
keeps what it fetched. Each call is cached for 6 hours and counted against a daily budget of
credits (estimated as one per data type returned), so a shortlist never overspends.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

import httpx
import polars as pl
from pydantic import Field

from ma_pipeline.enrichment.cache import Answer, ApiUsage
from ma_pipeline.enrichment.http import ApiClient, RequestFailed
from ma_pipeline.enrichment.resource import ApiResource, today
from ma_pipeline.enrichment.runner import BadApiKey, CreditsExhausted, EnrichmentRun, KeyFailure
from ma_pipeline.sandbox.kaspr_api import KasprSandbox
from ma_pipeline.warehouse import Warehouse

SOURCE = "kaspr"
DATA_TYPES = ("workEmail", "directEmail", "phone")
_SLUG = re.compile(r"^[\w%-]{3,100}$")
_PROFILE_URL = re.compile(r"linkedin\.com/in/([^/?#]+)", re.IGNORECASE)

CONTACT_SCHEMA: dict[str, pl.DataType] = {
    "linkedin_slug": pl.String(),
    "name": pl.String(),
    "title": pl.String(),
    "company_name": pl.String(),
    "work_emails": pl.List(pl.String()),
    "personal_emails": pl.List(pl.String()),
    "phones": pl.List(pl.String()),
    "fetched_at": pl.Datetime("us", "UTC"),
}


def linkedin_slug(value: str) -> str | None:
    """The bare public slug of a LinkedIn profile (Kaspr answers a full URL with a 500)."""
    text = value.strip()
    match = _PROFILE_URL.search(text)
    slug = match[1] if match else text
    return slug if _SLUG.fullmatch(slug) else None


@dataclass(frozen=True)
class KasprQuery:
    """A person to look up: LinkedIn slug (or profile URL) and full name (Kaspr needs both)."""

    linkedin: str
    name: str


@dataclass(frozen=True)
class KasprContact:
    linkedin_slug: str
    name: str | None
    title: str | None
    company_name: str | None
    work_emails: list[str]
    personal_emails: list[str]
    phones: list[str]
    fetched_at: datetime

    @property
    def data_types(self) -> int:
        """How many kinds of contact were found (what Kaspr charges for)."""
        return sum(bool(v) for v in (self.work_emails, self.personal_emails, self.phones))


def _clean(values: Sequence[Any]) -> list[str]:
    """Distinct real values: masked previews (with ``*``) and blanks dropped."""
    out: list[str] = []
    for value in values:
        text = str(value).strip() if value is not None else ""
        if text and "*" not in text and text not in out:
            out.append(text)
    return out


def _emails(items: Any) -> list[str]:
    return [i.get("email") if isinstance(i, dict) else i for i in items or []]


def parse_profile(payload: dict[str, Any], slug: str, fetched_at: datetime) -> KasprContact | None:
    """The contact in a ``/profile/linkedin`` answer, or None for a miss (empty profile)."""
    profile = payload.get("profile") or {}
    work = _emails(profile.get("professionalEmails")) + _emails(profile.get("workEmails"))
    personal = _emails(profile.get("personalEmails")) + _emails(profile.get("directEmails"))
    for item in profile.get("emails") or []:  # older shape: [{email, type}]
        if isinstance(item, dict):
            kind = str(item.get("type") or "").lower()
            (personal if "personal" in kind or "direct" in kind else work).append(item.get("email"))
    phones = [
        p.get("number") or p.get("phoneNumber") if isinstance(p, dict) else p
        for p in profile.get("phones") or []
    ]
    contact = KasprContact(
        linkedin_slug=slug,
        name=profile.get("name"),
        title=profile.get("title"),
        company_name=(profile.get("company") or {}).get("name"),
        work_emails=_clean(work),
        personal_emails=_clean(personal),
        phones=_clean(phones),
        fetched_at=fetched_at,
    )
    if not profile.get("fetchedAt") and not contact.data_types:
        return None
    return contact


def parse_answer(answer: Answer) -> KasprContact | None:
    payload = json.loads(answer.payload or "null")
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    return parse_profile(payload, answer.key.split("|", 1)[0], answer.fetched_at)


def contacts_frame(contacts: Sequence[KasprContact]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            (
                c.linkedin_slug,
                c.name,
                c.title,
                c.company_name,
                c.work_emails,
                c.personal_emails,
                c.phones,
                c.fetched_at,
            )
            for c in contacts
        ],
        schema=CONTACT_SCHEMA,
        orient="row",
    )


async def fetch_profile(
    client: ApiClient, key: str, *, names: dict[str, str], data: Sequence[str]
) -> Answer:
    """``POST /profile/linkedin`` for the slug in ``key``."""
    slug = key.split("|", 1)[0]
    body = {"id": slug, "name": names[key], "dataToGet": list(data), "requiredData": []}
    response = await client.request("POST", "/profile/linkedin", json=body)
    status, now = response.status_code, datetime.now(UTC)
    if status == 200:
        return Answer(SOURCE, key, status, now, response.text)
    if status == 404:
        return Answer(SOURCE, key, status, now)
    if status == 401:
        raise BadApiKey("Kaspr rejected the API key (401): bad API key; check MA_KASPR_API_KEY")
    if status == 402:
        raise CreditsExhausted(
            "Kaspr credits exhausted (402) for the requested data; what was fetched is cached"
        )
    raise RequestFailed(f"http_{status}", f"HTTP {status}: {response.text[:200]}", status)


def _credits(answer: Answer) -> float:
    contact = parse_answer(answer) if answer.payload else None
    return float(contact.data_types) if contact else 0.0


class KasprResource(ApiResource):
    """Kaspr API (key in MA_KASPR_API_KEY, sent as a Bearer token); without a key, the sandbox.

    Meant for a shortlist: each day spends at most ``daily_credit_budget`` credits, counted in
    ``enrichment.api_usage``; a run makes at most (credits left) / (data types asked) calls,
    and the people beyond are reported as ``over_budget``.
    """

    source: ClassVar[str] = SOURCE
    live_rate_per_second: ClassVar[float | None] = 2.0
    sandbox_rate_per_second: ClassVar[float | None] = None

    # Fields left None take these variables when a run launches (settings.LaunchSettings).
    from_settings: ClassVar[dict[str, str]] = {
        "api_key": "MA_KASPR_API_KEY",
        "daily_credit_budget": "MA_KASPR_DAILY_CREDITS",
    }

    base_url: str = Field(default="https://api.developers.kaspr.io", description="Kaspr API root")
    concurrency: int = Field(default=2, description="Requests in flight at most")
    rate_per_minute: float | None = Field(
        default=60.0, description="Requests per minute at most (Kaspr's default plan: 60)"
    )
    cache_ttl_hours: float = Field(
        default=6.0, description="Age after which a cached answer is fetched again"
    )
    daily_credit_budget: int | None = Field(
        default=200, description="MA_KASPR_DAILY_CREDITS: credits one day may spend"
    )
    data_to_get: list[str] = Field(
        default=["workEmail", "phone"], description="Kaspr dataToGet: workEmail, directEmail, phone"
    )
    sandbox_seed: int = Field(default=2026, description="Seed of the sandbox's answers")

    def headers(self) -> dict[str, str]:
        headers = {
            "accept-version": "v2.0",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def sandbox_transport(self) -> httpx.AsyncBaseTransport:
        return KasprSandbox(seed=self.sandbox_seed)

    def lookup(
        self, people: Sequence[KasprQuery], warehouse: Warehouse, now: datetime | None = None
    ) -> EnrichmentRun[KasprContact]:
        """Contacts of ``people``, from the cache within 6 h, else from Kaspr within the day's
        budget. A person without a usable LinkedIn slug fails as ``invalid_slug``, uncalled."""
        unknown = sorted(set(self.data_to_get) - set(DATA_TYPES))
        if unknown:  # Kaspr answers an unknown data type with a 500, which would be retried
            raise ValueError(f"unknown Kaspr data type(s): {', '.join(unknown)}")
        now = now or datetime.now(UTC)
        data = sorted(self.data_to_get)
        names: dict[str, str] = {}
        invalid: list[str] = []
        for person in people:
            slug = linkedin_slug(person.linkedin)
            if slug is None:
                invalid.append(person.linkedin)
            else:
                names[f"{slug}|{','.join(data)}"] = person.name
        # A call costs up to one credit per data type, so the calls allowed never overspend.
        left = self.daily_credit_budget - ApiUsage(warehouse, SOURCE).credits_spent(today(now))
        run = self._enrich(
            list(names),
            warehouse,
            fetch=partial(fetch_profile, names=names, data=data),
            parse=parse_answer,
            credits=_credits,
            now=now,
            budget=max(0, int(left // len(data))),
        )
        for value in invalid:
            run.failures[value] = KeyFailure(value, "invalid_slug", "not a LinkedIn profile slug")
        run.requested += len(invalid)
        return run
