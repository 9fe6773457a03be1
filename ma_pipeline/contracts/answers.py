"""The answer a company gets: the published row as the API shows it, and the result a score
request stores (the pipeline renders and validates it, the API serves it as stored)."""

import datetime as dt
from typing import Annotated, Any

import polars as pl
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ma_pipeline.contracts.scores import PROFILE, SCORES, TOP_REASONS
from ma_pipeline.contracts.siren import siren_problem

EXAMPLE_SIREN = "443061841"
EXAMPLE_DATE = "2026-11-20"


def valid_siren(value: str) -> str:
    problem = siren_problem(value)
    if problem is not None:
        raise PydanticCustomError("siren", problem)
    return value


Siren = Annotated[
    str,
    AfterValidator(valid_siren),
    Field(description="9 digits, the last one a Luhn check digit", examples=[EXAMPLE_SIREN]),
]


def examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class Reason(BaseModel):
    feature: str
    value: str | None = Field(description="The feature's value, as shown")
    contribution: float = Field(description="Signed contribution to the score")


class Score(BaseModel):
    value: float | None = Field(
        ge=0,
        le=100,
        description="100 x the model's probability (for stabilite, of no collective procedure);"
        " null when the company is not scored on it (see unscored)",
    )
    rank: float | None = Field(
        ge=0,
        le=100,
        description="Percentile rank: 90 means a higher score than 90 % of the companies the"
        " model was trained on (null for the rule baseline before any training)",
    )
    band: str | None = Field(description="A (top 5 %), B (next 15 %), C, D, E (bottom 20 %)")
    unscored: str | None = Field(description="Why there is no score, when there is none")
    model_version: str | None
    reasons: list[Reason] = Field(description="Top reasons, strongest first")


class Scores(BaseModel):
    ma: Score = Field(description="Likelihood of a change of control")
    croissance: Score
    stabilite: Score


class Profile(BaseModel):
    nom_entreprise: str | None
    activite_principale: str | None = Field(description="NAF sous-classe, e.g. 62.01Z")
    naf_section: str | None
    naf_division: str | None
    departement: str | None = Field(description="COG code: 75, 2A, 974")
    region: str | None = Field(description="COG code")


_REASONS = [
    {"feature": "age_dirigeant_max", "value": "67", "contribution": 8.4},
    {"feature": "croissance_ca_1an", "value": "-0.12", "contribution": 3.1},
]


class Company(BaseModel):
    siren: str
    date: dt.date = Field(
        description="The published partition these scores come from; in a score request's"
        " result, the day they were computed as of"
    )
    profile: Profile
    scores: Scores
    confidence: float | None = Field(ge=0, le=100)
    scorer: str = Field(description="champion or rule_baseline")
    feature_hash: str | None
    calculated_at: dt.datetime
    model_config = examples(
        {
            "siren": EXAMPLE_SIREN,
            "date": EXAMPLE_DATE,
            "profile": {
                "nom_entreprise": "SOCIETE EXEMPLE",
                "activite_principale": "62.01Z",
                "naf_section": "J",
                "naf_division": "62",
                "departement": "75",
                "region": "11",
            },
            "scores": {
                "ma": {
                    "value": 14.2,
                    "rank": 97.5,
                    "band": "A",
                    "unscored": None,
                    "model_version": "ma_pipeline_ma/3",
                    "reasons": _REASONS,
                },
                "croissance": {
                    "value": None,
                    "rank": None,
                    "band": None,
                    "unscored": "not scored without log_ca (no accounts)",
                    "model_version": "ma_pipeline_croissance/3",
                    "reasons": [],
                },
                "stabilite": {
                    "value": 98.1,
                    "rank": 41.0,
                    "band": "C",
                    "unscored": None,
                    "model_version": "ma_pipeline_stabilite/3",
                    "reasons": _REASONS,
                },
            },
            "confidence": 88.0,
            "scorer": "champion",
            "feature_hash": "00000000000000a1",
            "calculated_at": "2026-11-20T02:00:00Z",
        }
    )


# Column names of the company payload, computed once rather than per call.
_REASON_COLUMNS = {
    s: [
        (f"{s}_reason_{k}_feature", f"{s}_reason_{k}_value", f"{s}_reason_{k}_contribution")
        for k in range(1, TOP_REASONS + 1)
    ]
    for s in SCORES
}


def _score(score: str) -> pl.Expr:
    reasons = pl.concat_arr(  # an array, not a list: concat_list of structs is ~50x slower
        pl.struct(feature=f, value=v, contribution=c) for f, v, c in _REASON_COLUMNS[score]
    )
    return pl.struct(
        value=f"score_{score}",
        rank=f"rank_{score}",
        band=f"band_{score}",
        unscored=f"unscored_{score}",
        model_version=pl.col(f"model_version_{score}"),
        reasons=reasons.arr.to_list().list.filter(
            pl.element().struct.field("feature").is_not_null()
        ),
    ).alias(score)


def company_json() -> pl.Expr:
    """Each ml_scores row as the Company response, in JSON (polars writes NaN as null): the
    company lookup answers a published row (rendered once per partition, in Rust), and a
    completed score request the row the pipeline scored for it."""
    return (
        pl.struct(
            siren="siren",
            date=pl.col("partition_date").dt.to_string(),
            profile=pl.struct(*PROFILE),
            scores=pl.struct(*(_score(s) for s in SCORES)),
            confidence="confidence",
            scorer="scorer",
            feature_hash="feature_hash",
            calculated_at=pl.col("calculated_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.6f%:z"),
        )
        .struct.json_encode()
        .alias("answer")
    )
