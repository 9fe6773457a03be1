"""Request and response models: the API's contract, with the examples the OpenAPI docs show."""

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ma_pipeline.contracts.answers import (
    EXAMPLE_DATE,
    EXAMPLE_SIREN,
    Reason,
    Siren,
    examples,
)

# ASCII classes, not \d: the pattern engine's \d also matches "６２" and Arabic-Indic digits.
NAF_PATTERN = r"^([0-9]{2}\.[0-9]{2}[A-Z]|[0-9]{2}|[A-U])$"
DEPARTEMENT_PATTERN = r"^([0-9]{2}|2[AB]|97[0-9])$"
REGION_PATTERN = r"^[0-9]{2}$"
# Documented, not enforced by the pattern: valid_siren checks it and says what is wrong.
SIREN_PATTERN = r"^[0-9]{9}$"
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` from a client: pydantic alone reads ``0`` or ``1700000000`` as Unix
    times (``to=0`` was 1970-01-01)."""
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date", "must be a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
SortKey = Literal["score_ma", "score_croissance", "score_stabilite"]
ScoreName = Literal["ma", "croissance", "stabilite"]
_EXAMPLE_REASONS = [
    {"feature": "age_dirigeant_max", "value": None, "contribution": 0.84},
    {"feature": "croissance_ca_1an", "value": "-0.12", "contribution": 0.31},
]


class Error(BaseModel):
    detail: str = Field(description="What went wrong, for a human")
    model_config = examples({"detail": "siren '443061842': check digit is wrong (Luhn)"})


class ScoreValues(BaseModel):
    ma: float | None
    croissance: float | None
    stabilite: float | None


class ScoreBands(BaseModel):
    ma: str | None = Field(description="A (top 5 %), B (next 15 %), C, D, E (bottom 20 %)")
    croissance: str | None
    stabilite: str | None


class ScoreVersions(BaseModel):
    ma: str | None
    croissance: str | None
    stabilite: str | None


class ScoreReasons(BaseModel):
    ma: list[Reason] = Field(description="Top reasons, strongest first")
    croissance: list[Reason]
    stabilite: list[Reason]


class HistoryPoint(BaseModel):
    date: dt.date
    scores: ScoreValues
    confidence: float | None
    scorer: str
    model_versions: ScoreVersions
    reasons: ScoreReasons = Field(description="Each score's top reasons on that day")


class CompanyHistory(BaseModel):
    siren: str
    items: list[HistoryPoint] = Field(description="One point per published day, oldest first")
    model_config = examples(
        {
            "siren": EXAMPLE_SIREN,
            "items": [
                {
                    "date": EXAMPLE_DATE,
                    "scores": {"ma": 81.5, "croissance": 42.0, "stabilite": 66.3},
                    "confidence": 88.0,
                    "scorer": "champion",
                    "model_versions": {
                        "ma": "ma_pipeline_ma/3",
                        "croissance": "ma_pipeline_croissance/3",
                        "stabilite": "ma_pipeline_stabilite/3",
                    },
                    "reasons": {"ma": _EXAMPLE_REASONS, "croissance": [], "stabilite": []},
                }
            ],
        }
    )


class ScoreQuery(BaseModel):
    """Filters, sort and page of GET /v1/scores."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    date: IsoDate | None = Field(None, description="A published date; default: the newest")
    min_score_ma: float | None = Field(None, ge=0, le=100)
    min_score_croissance: float | None = Field(None, ge=0, le=100)
    min_score_stabilite: float | None = Field(None, ge=0, le=100)
    min_rank_ma: float | None = Field(
        None, ge=0, le=100, description="Percentile rank: 80 keeps bands A and B, the top 20 %"
    )
    min_rank_croissance: float | None = Field(None, ge=0, le=100)
    min_rank_stabilite: float | None = Field(None, ge=0, le=100)
    naf: str | None = Field(
        None,
        pattern=NAF_PATTERN,
        description="A NAF sous-classe (62.01Z, matched on activite_principale), a division"
        " (62) or a section (J)",
        examples=["62.01Z", "62", "J"],
    )
    departement: str | None = Field(None, pattern=DEPARTEMENT_PATTERN, examples=["75", "2A"])
    region: str | None = Field(
        None, pattern=REGION_PATTERN, description="A région (COG code)", examples=["11"]
    )
    sort: SortKey = Field("score_ma", description="Descending; ties broken by SIREN")
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(
        None,
        min_length=1,
        description="next_cursor of the previous page, with the same filters and sort",
    )
    reasons: bool = Field(False, description="Add each company's top reasons for the sorted score")


class ScoreListItem(BaseModel):
    siren: str
    nom_entreprise: str | None
    activite_principale: str | None
    departement: str | None
    scores: ScoreValues
    ranks: ScoreValues = Field(description="Percentile ranks, 0-100")
    bands: ScoreBands
    confidence: float | None
    reasons: list[Reason] | None = Field(
        None, description="With reasons=true: the top reasons of the sorted score"
    )


class ScorePage(BaseModel):
    date: dt.date
    sort: SortKey
    items: list[ScoreListItem]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")
    model_config = examples(
        {
            "date": EXAMPLE_DATE,
            "sort": "score_ma",
            "items": [
                {
                    "siren": EXAMPLE_SIREN,
                    "nom_entreprise": "SOCIETE EXEMPLE",
                    "activite_principale": "62.01Z",
                    "departement": "75",
                    "scores": {"ma": 14.2, "croissance": None, "stabilite": 98.1},
                    "ranks": {"ma": 97.5, "croissance": None, "stabilite": 41.0},
                    "bands": {"ma": "A", "croissance": None, "stabilite": "C"},
                    "confidence": 88.0,
                }
            ],
            "next_cursor": "eyJhZnRlciI6WzgxLjUsIjQ0MzA2MTg0MSJdfQ",
        }
    )


class Sector(BaseModel):
    naf_division: str | None
    region: str | None = Field(None, description="With by_region=true: the région (COG code)")
    companies: int
    mean_score_ma: float | None
    p90_score_ma: float | None
    share_score_ma_75: float | None = Field(description="Share of companies with score_ma >= 75")


class SectorList(BaseModel):
    date: dt.date
    items: list[Sector]
    model_config = examples(
        {
            "date": EXAMPLE_DATE,
            "items": [
                {
                    "naf_division": "62",
                    "region": None,
                    "companies": 41230,
                    "mean_score_ma": 38.2,
                    "p90_score_ma": 71.9,
                    "share_score_ma_75": 0.07,
                }
            ],
        }
    )


class MovedReason(BaseModel):
    feature: str
    value: str | None = Field(description="Its value as shown: the day's, else the day before's")
    contribution: float = Field(description="On the day (0 when no longer a top reason)")
    previous_contribution: float = Field(description="The day before (0 when not a top reason)")


class Mover(BaseModel):
    siren: str
    nom_entreprise: str | None
    activite_principale: str | None
    departement: str | None
    score: float
    previous_score: float
    change: float
    band: str | None
    reasons: list[MovedReason] = Field(
        description="The top reasons whose contribution changed most, largest change first"
    )


class MoverList(BaseModel):
    date: dt.date
    previous_date: dt.date | None = Field(
        description="The published day compared with; null when none is older (no movers)"
    )
    score: ScoreName
    rises: list[Mover] = Field(description="Largest rises first")
    falls: list[Mover] = Field(description="Largest falls first")
    model_config = examples(
        {
            "date": EXAMPLE_DATE,
            "previous_date": "2026-11-19",
            "score": "ma",
            "rises": [
                {
                    "siren": EXAMPLE_SIREN,
                    "nom_entreprise": "SOCIETE EXEMPLE",
                    "activite_principale": "62.01Z",
                    "departement": "75",
                    "score": 81.5,
                    "previous_score": 62.0,
                    "change": 19.5,
                    "band": "A",
                    "reasons": [
                        {
                            "feature": "croissance_ca_1an",
                            "value": "-0.12",
                            "contribution": 0.31,
                            "previous_contribution": 0.0,
                        }
                    ],
                }
            ],
            "falls": [],
        }
    )


class ModelVersion(BaseModel):
    score: str
    model_name: str
    version: str
    run_id: str | None
    created_at: dt.datetime | None
    metrics: dict[str, Any]
    decision: str | None


class ModelList(BaseModel):
    items: list[ModelVersion] = Field(description="The champion of each score")
    model_config = examples(
        {
            "items": [
                {
                    "score": "ma",
                    "model_name": "ma_pipeline_ma",
                    "version": "3",
                    "run_id": "5f2c0d9e8a7b4c1d",
                    "created_at": "2026-11-18T03:12:00Z",
                    "metrics": {"auc": 0.81, "average_precision": 0.34},
                    "decision": "promoted: auc +0.012 over the previous champion",
                }
            ]
        }
    )


class Contact(BaseModel):
    nom: str | None
    prenom: str | None
    qualite: str | None
    linkedin_slug: str | None
    work_email: str | None
    phone: str | None
    status: str = Field(description="found, not_found, no_slug or over_budget")
    fetched_at: dt.datetime | None


class ContactList(BaseModel):
    siren: str
    items: list[Contact] = Field(description="The company's latest contact lookup")
    model_config = examples(
        {
            "siren": EXAMPLE_SIREN,
            "items": [
                {
                    "nom": "MARTIN",
                    "prenom": "Claire",
                    "qualite": "Présidente",
                    "linkedin_slug": "claire-martin",
                    "work_email": "claire.martin@exemple.fr",
                    "phone": "+33 1 23 45 67 89",
                    "status": "found",
                    "fetched_at": "2026-11-19T09:30:00Z",
                }
            ],
        }
    )


class ScoreRequestIn(BaseModel):
    siren: Siren = Field(json_schema_extra={"pattern": SIREN_PATTERN})
    model_config = examples({"siren": EXAMPLE_SIREN})


class ScoreRequestOut(BaseModel):
    id: uuid.UUID
    siren: str
    status: Literal["pending", "completed", "failed"]
    created_at: dt.datetime
    updated_at: dt.datetime
    result: dict[str, Any] | None = Field(
        description="Once completed: the company's scores, reasons and profile as a Company"
        " (the shape of GET /v1/companies/{siren}), computed with the champion as of `date`"
    )
    failure_reason: str | None
    model_config = examples(
        {
            "id": "0b6f3c1e-4f1a-4f7e-9d59-2b8f0f0e6c11",
            "siren": EXAMPLE_SIREN,
            "status": "pending",
            "created_at": "2026-11-20T10:00:00Z",
            "updated_at": "2026-11-20T10:00:00Z",
            "result": None,
            "failure_reason": None,
        }
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, Literal["ok", "failing"]] = Field(description="Per dependency")
    served_date: dt.date | None = Field(description="The partition in memory; null before any")
    model_config = examples(
        {"status": "ok", "checks": {"scores": "ok", "api_db": "ok"}, "served_date": EXAMPLE_DATE}
    )
