"""kaspr_contacts: work e-mails and phones of the dirigeants of the day's top targets.

Personal data. The table holds names, professional e-mails and phone numbers of real people: it
is flagged (column ``personal_data``, a table comment, the asset tag ``ma/personal_data``), stored
apart from the scores, never copied into a mart, and served by the API only to keys with the
``contacts:read`` scope. Dagster metadata shows counts, never a person.

Who is looked up. The top ``top_n`` companies by ``score_ma`` of the day's checked ml_scores
partition (the blocking checks stop the run before this asset when they fail);
their dirigeants who are people (not companies, not auditors). Kaspr needs a LinkedIn slug per
person: slugs come from ``$MA_DATA_DIR/landing/linkedin_profiles*.csv`` (columns ``siren``,
``nom``, ``prenom``, ``linkedin_slug``; the slug may be a profile URL; a person matches on SIREN,
surname and first first name, compared without accents or case). Without such a file and with
Kaspr on its sandbox, a deterministic rule gives about half of the dirigeants a slug, so the demo
exercises every status; with a real Kaspr key and no file, nobody has a slug (no credit is ever
spent on an invented one).

Status of each person: ``found`` (contacts returned), ``not_found`` (Kaspr has no profile),
``no_slug`` (no known LinkedIn slug: not looked up), ``over_budget`` (the day's credit budget,
or the account's credits, ran out first). A lookup that failed otherwise (network, 5xx after
retries, an unreadable answer) goes to ``scoring.kaspr_contacts_failures`` instead, with its cause.
The API reads the day's contacts from their published copy (``publication``).
"""

import hashlib
import sys
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import dagster as dg
import polars as pl
from pydantic import Field

from ma_pipeline import settings
from ma_pipeline.contracts import keys, tables
from ma_pipeline.contracts.scores import CONTACTS_SCHEMA
from ma_pipeline.enrichment.assets import api_cache_events
from ma_pipeline.enrichment.kaspr import KasprContact, KasprQuery, KasprResource, linkedin_slug
from ma_pipeline.enrichment.runner import BadApiKey, EnrichmentRun
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.lib import owners
from ma_pipeline.lib.metadata import preview
from ma_pipeline.lib.versions import source_version
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.scoring.publication import PERSONAL_DATA_COMMENT
from ma_pipeline.warehouse import PARTITION_COLUMN, WAREHOUSE_POOL, Warehouse, WarehouseResource

LINKEDIN_FILES = "linkedin_profiles*.csv"
FOUND, NOT_FOUND, NO_SLUG, OVER_BUDGET = "found", "not_found", "no_slug", "over_budget"
STATUSES = (FOUND, NOT_FOUND, NO_SLUG, OVER_BUDGET)
# Failures that mean "not looked up today for lack of credits", not "broken".
_OUT_OF_CREDITS = {"over_budget", "credits_exhausted"}

FAILURES_SCHEMA: dict[str, pl.DataType] = {
    PARTITION_COLUMN: pl.Date(),
    "siren": pl.String(),
    "nom": pl.String(),
    "prenom": pl.String(),
    "linkedin_slug": pl.String(),
    "kind": pl.String(),
    "http_status": pl.Int64(),
    "message": pl.String(),
}


def _plain(text: str) -> str:
    """Upper case without accents: how names are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper().strip()


def _first_name(prenom: str | None) -> str:
    return _plain(prenom or "").split(" ")[0]


def top_targets(published: pl.DataFrame, n: int) -> pl.DataFrame:
    """The ``n`` companies with the highest ``score_ma`` (ties by SIREN)."""
    return published.sort(["score_ma", "siren"], descending=[True, False]).head(n)


def dirigeants_of(dirigeants: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """The people (not companies, not auditors) among the dirigeants of ``targets``, best target
    first and in the register's order, which is the order the credit budget is spent in."""
    ranked = targets.select("siren").with_row_index("target_rank")
    return (
        dirigeants.filter(
            ~pl.col("personne_morale").fill_null(False)
            & ~pl.col("commissaire_aux_comptes").fill_null(False)
            & pl.col("nom").is_not_null()
        )
        .join(ranked, on="siren")
        .sort("target_rank", "rang")
        .select("siren", "nom", "prenom", "qualite")
        .unique(maintain_order=True)
    )


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        _nom=pl.col("nom").map_elements(_plain, return_dtype=pl.String),
        _prenom=pl.col("prenom").map_elements(_first_name, return_dtype=pl.String),
    )


def slugs_from_files(people: pl.DataFrame, files: list[Path]) -> pl.DataFrame:
    """``people`` with the ``linkedin_slug`` the landing files give them (null if none)."""
    known = pl.concat(
        pl.read_csv(f, columns=["siren", "nom", "prenom", "linkedin_slug"], infer_schema=False)
        for f in files
    )
    known = _keyed(known.filter(pl.col("linkedin_slug").is_not_null())).unique(
        ["siren", "_nom", "_prenom"], keep="first", maintain_order=True
    )
    return (
        _keyed(people)
        .join(
            known.select("siren", "_nom", "_prenom", "linkedin_slug"),
            on=["siren", "_nom", "_prenom"],
            how="left",
        )
        .drop("_nom", "_prenom")
    )


def _sandbox_slug(siren: str, nom: str, prenom: str | None) -> str | None:
    digest = hashlib.blake2b(f"{siren}|{nom}|{prenom}".encode(), digest_size=8).hexdigest()
    if int(digest[0], 16) >= 8:  # about half the people have no known profile
        return None
    parts = [_first_name(prenom), _plain(nom)]
    name = "-".join("".join(c if c.isalnum() else "-" for c in p).lower() for p in parts if p)
    return f"{name}-{digest[1:7]}"


def sandbox_slugs(people: pl.DataFrame) -> pl.DataFrame:
    """``people`` with a deterministic sandbox slug for about half of them."""
    slugs = [_sandbox_slug(*row) for row in people.select("siren", "nom", "prenom").iter_rows()]
    return people.with_columns(linkedin_slug=pl.Series(slugs, dtype=pl.String))


def contact_rows(
    day: date, people: pl.DataFrame, run: EnrichmentRun[KasprContact] | None, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The day's contacts (one row per person) and the lookups that failed otherwise."""
    found = {key.split("|", 1)[0]: c for key, c in run.records.items()} if run else {}
    missed = {key.split("|", 1)[0] for key in run.negatives} if run else set()
    failed = {key.split("|", 1)[0]: f for key, f in run.failures.items()} if run else {}
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for person in people.iter_rows(named=True):
        slug = linkedin_slug(person["linkedin_slug"] or "")
        row = {
            PARTITION_COLUMN: day,
            **{k: person[k] for k in ("siren", "nom", "prenom", "qualite")},
            "linkedin_slug": slug,
            "work_email": None,
            "phone": None,
            "fetched_at": None,
            "personal_data": True,
        }
        if slug is None:
            rows.append({**row, "status": NO_SLUG})
        elif slug in found:
            contact = found[slug]
            rows.append(
                {
                    **row,
                    "status": FOUND,
                    "work_email": next(iter(contact.work_emails), None),
                    "phone": next(iter(contact.phones), None),
                    "fetched_at": contact.fetched_at,
                }
            )
        elif slug in missed:
            rows.append({**row, "status": NOT_FOUND, "fetched_at": now})
        elif slug in failed and failed[slug].kind in _OUT_OF_CREDITS:
            rows.append({**row, "status": OVER_BUDGET})
        else:
            failure = failed.get(slug)
            failures.append(
                {
                    **{k: row[k] for k in (PARTITION_COLUMN, "siren", "nom", "prenom")},
                    "linkedin_slug": slug,
                    "kind": failure.kind if failure else "no_answer",
                    "http_status": failure.status if failure else None,
                    "message": failure.message if failure else "no answer recorded",
                }
            )
    return (
        pl.DataFrame(rows, schema=CONTACTS_SCHEMA, orient="row"),
        pl.DataFrame(failures, schema=FAILURES_SCHEMA, orient="row"),
    )


class KasprContactsConfig(dg.Config):
    """How many targets a day enriches (None: MA_KASPR_TOP_N at launch); the daily credit
    budget is the Kaspr resource's (MA_KASPR_DAILY_CREDITS)."""

    top_n: int | None = Field(
        default=None,
        description="Companies of the day's checked ml_scores, by score_ma, whose dirigeants"
        " are looked up",
    )
    launch = settings.launch_defaults(top_n="MA_KASPR_TOP_N")


def _with_slugs(
    people: pl.DataFrame, files: list[Path], kaspr: KasprResource
) -> tuple[pl.DataFrame, str]:
    if files:
        return slugs_from_files(people, files), ", ".join(f.name for f in files)
    if kaspr.mode == "sandbox":
        return sandbox_slugs(people), "sandbox rule (no linkedin_profiles*.csv)"
    return people.with_columns(linkedin_slug=pl.lit(None, pl.String)), "none: no CSV"


class DayContacts(NamedTuple):
    contacts: pl.DataFrame
    failures: pl.DataFrame
    summary: dict[str, Any]  # counts only: Dagster metadata never shows a person
    run: EnrichmentRun[KasprContact] | None


def _day(
    day: date, top_n: int, files: list[Path], kaspr: KasprResource, backend: Warehouse
) -> DayContacts:
    scores = backend.read(tables.ML_SCORES, start=day, end=day, columns=["siren", "score_ma"])
    targets = top_targets(scores, top_n)
    # Only the targets' dirigeants, not the day's millions: a keyed lookup in the warehouse.
    keys = targets.select(pl.lit(day).alias(PARTITION_COLUMN), "siren")
    dirigeants = backend.lookup(tables.PAPPERS_DIRIGEANTS, keys)
    people, slug_source = _with_slugs(dirigeants_of(dirigeants, targets), files, kaspr)
    queries = [
        KasprQuery(slug, f"{prenom or ''} {nom}".strip())
        for slug, prenom, nom in people.select("linkedin_slug", "prenom", "nom").iter_rows()
        if slug and linkedin_slug(slug)
    ]
    now = datetime.now(UTC)
    run = kaspr.lookup(queries, backend, now=now) if queries else None
    if run is not None and isinstance(run.fatal, BadApiKey):
        raise dg.Failure(description=str(run.fatal), metadata=run.metadata())
    contacts, failures = contact_rows(day, people, run, now)
    counts = dict(contacts["status"].value_counts().iter_rows())
    summary = {
        "partition": str(day),
        "targets": targets.height,
        "people": people.height,
        "slugs_from": slug_source,
        **{s: counts.get(s, 0) for s in STATUSES},
        "failed": failures.height,
        "credits": run.credits if run else 0.0,
        "cache_hits": run.cache_hits if run else 0,
    }
    return DayContacts(contacts, failures, summary, run)


VERSION = source_version(sys.modules[__name__], sys.modules[KasprResource.__module__])


def _personal_out(key: dg.AssetKey, description: str) -> dg.AssetOut:
    """An output holding personal data: tagged, and said so first in its description."""
    return dg.AssetOut(
        key=key,
        kinds={"polars"},
        owners=owners.DATA,
        code_version=VERSION,
        tags={"ma/personal_data": "true"},
        description=f"PERSONAL DATA. {description}",
    )


@dg.multi_asset(
    outs={
        "kaspr_contacts": _personal_out(
            keys.KASPR_CONTACTS,
            "Work e-mails and phones of the dirigeants of the day's top targets, from Kaspr"
            " within the daily credit budget; one row per person with a status.",
        ),
        "kaspr_contacts_failures": _personal_out(
            keys.KASPR_CONTACTS_FAILURES,
            "Look-ups that failed for another reason than a miss or the budget (network, 5xx"
            " after retries, an unreadable answer), with the cause.",
        ),
    },
    deps=[keys.ML_SCORES, keys.PAPPERS_DIRIGEANTS, keys.API_CACHE, keys.API_USAGE],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="scoring",
    pool=WAREHOUSE_POOL,
)
def kaspr_contacts(
    context: dg.AssetExecutionContext,
    config: KasprContactsConfig,
    kaspr: KasprResource,
    sirene: SireneSource,
    warehouse: WarehouseResource,
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetMaterialization]:
    """The top ``top_n`` companies of each day by ``score_ma``: their dirigeants' contacts (see
    the module). Newest day first, so a backfill spends the budget on the day that matters;
    each run replaces its days' rows."""
    days = sorted(context.partition_keys, reverse=True)
    files = sorted(sirene.landing_dir.glob(LINKEDIN_FILES))
    if kaspr.mode == "sandbox":
        context.log.warning("MA_KASPR_API_KEY is not set: contacts come from the Kaspr sandbox")
    backend = warehouse.backend()
    results = [_day(date.fromisoformat(k), config.top_n, files, kaspr, backend) for k in days]
    yield from api_cache_events(r.run for r in results)
    by_day = pl.DataFrame([r.summary for r in results])
    totals = by_day.drop("partition", "slugs_from").sum().row(0, named=True)
    context.log.info(f"{len(days)} day(s) of contacts: {totals}")
    yield dg.Output(
        pl.concat([r.contacts for r in results]),
        output_name="kaspr_contacts",
        metadata={"by_partition": preview(by_day, by_day.height), "personal_data": True},
    )
    yield dg.Output(pl.concat([r.failures for r in results]), output_name="kaspr_contacts_failures")
    backend.execute(f"COMMENT ON TABLE {tables.KASPR_CONTACTS.sql} IS '{PERSONAL_DATA_COMMENT}'")
