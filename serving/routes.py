"""The routes: `/v1` for clients (API key with scopes), `/health` and `/metrics` for operators.

``/companies/{siren}``, ``/scores`` and ``/sectors`` answer from the served partition (its
mapped file); history, contacts and models read the store; score requests read and write the
API's database. Nothing here runs a model.
"""

import base64
import datetime as dt
import json
import logging
import uuid
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, Security
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import AfterValidator, BaseModel

from ma_pipeline.contracts.answers import EXAMPLE_SIREN, Company, valid_siren
from ma_pipeline.contracts.scores import SCORES, TOP_REASONS
from serving.auth import authorize
from serving.movers import movers
from serving.published import Partition, Served
from serving.schemas import (
    SIREN_PATTERN,
    CompanyHistory,
    ContactList,
    Error,
    Health,
    IsoDate,
    ModelList,
    MoverList,
    ScoreName,
    ScorePage,
    ScoreQuery,
    ScoreRequestIn,
    ScoreRequestOut,
    SectorList,
)
from serving.store import (
    ApiKey,
    ApiStore,
    IdempotencyConflict,
    ScoreRequest,
    TooManyPending,
    TooManyToday,
)

log = logging.getLogger(__name__)

SCORES_READ, CONTACTS_READ, REQUESTS_WRITE = "scores:read", "contacts:read", "requests:write"

_ERRORS = {
    401: "No API key, or an invalid or revoked one",
    403: "The API key lacks this route's scope",
    422: "A parameter is not valid; the detail says which and why",
    429: "The API key's rate limit, or this address's failed authentications, exceeded",
}
NOT_PUBLISHED = "Nothing published yet, or not on this date"


def errors(specific: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The documented errors of a route: those of every secured route and its own (every error
    is ``{"detail": "..."}``)."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": Error, "description": description}
        for code, description in (_ERRORS | (specific or {})).items()
    }
    responses[429]["headers"] = {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
    }
    return responses


SirenPath = Annotated[
    str,
    AfterValidator(valid_siren),
    Path(
        description="9 digits, the last one a Luhn check digit",
        examples=[EXAMPLE_SIREN],
        json_schema_extra={"pattern": SIREN_PATTERN},
    ),
]
ScoresKey = Annotated[ApiKey, Security(authorize, scopes=[SCORES_READ])]
DayQuery = Annotated[
    IsoDate | None, Query(alias="date", description="A published date; default: the newest")
]
v1 = APIRouter(prefix="/v1")
ops = APIRouter(tags=["operations"])


def _served(request: Request) -> Served:
    return request.app.state.served


def _scores(row: dict[str, Any], kind: str = "score") -> dict[str, Any]:
    return {s: row[f"{kind}_{s}"] for s in SCORES}


def _reasons(row: dict[str, Any], score: str) -> list[dict[str, Any]]:
    """The score's reasons in a published row, strongest first (absent ones left out)."""
    parts = ("feature", "value", "contribution")
    reasons = [
        {part: row[f"{score}_reason_{k}_{part}"] for part in parts}
        for k in range(1, TOP_REASONS + 1)
    ]
    return [r for r in reasons if r["feature"] is not None]


@v1.get(
    "/companies/{siren}",
    response_model=Company,
    responses=errors({404: "The SIREN is not in the newest published partition"}),
    summary="A company's profile, latest scores and their top reasons",
    tags=["scores"],
)
async def get_company(siren: SirenPath, request: Request, _: ScoresKey) -> Response:
    partition = _served(request).view.latest
    if partition is None:
        raise HTTPException(404, "no partition has been published yet")
    answer = partition.company(siren)
    if answer is None:
        raise HTTPException(
            404, f"siren '{siren}' is not in the scores published for {partition.day}"
        )
    # Rendered from validated rows when the partition was loaded: not validated again per request.
    return Response(answer, media_type="application/json")


@v1.get(
    "/companies/{siren}/scores",
    response_model=CompanyHistory,
    responses=errors({422: "A parameter is not valid, or from is after to"}),
    summary="A company's scores on every published day of [from, to]",
    tags=["scores"],
)
def get_company_history(
    siren: SirenPath,
    request: Request,
    _: ScoresKey,
    start: Annotated[IsoDate | None, Query(alias="from", description="First day, included")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="Last day, included")] = None,
) -> dict[str, Any]:
    start, end = start or dt.date.min, end or dt.date.max
    if start > end:
        raise HTTPException(422, f"from ({start}) is after to ({end})")
    rows = _served(request).store.history(siren, start, end)
    return {
        "siren": siren,
        "items": [
            {
                "date": row["partition_date"],
                "scores": _scores(row),
                "confidence": row["confidence"],
                "scorer": row["scorer"],
                "model_versions": {s: row[f"model_version_{s}"] for s in SCORES},
                "reasons": {s: _reasons(row, s) for s in SCORES},
            }
            for row in rows
        ],
    }


@v1.get(
    "/companies/{siren}/contacts",
    response_model=ContactList,
    responses=errors(),
    summary="The company's contacts (personal data: scope contacts:read)",
    tags=["contacts"],
)
def get_contacts(
    siren: SirenPath,
    request: Request,
    _: Annotated[ApiKey, Security(authorize, scopes=[CONTACTS_READ])],
) -> dict[str, Any]:
    return {"siren": siren, "items": _served(request).store.contacts(siren)}


class Cursor(BaseModel):
    """Where a page of /v1/scores ended, and the query it belongs to."""

    date: dt.date
    filters: dict[str, Any]
    after: tuple[float, str]

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            return cls.model_validate_json(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except ValueError as exc:  # bad base64 (binascii.Error) or bad JSON / fields
            raise HTTPException(400, "cursor is not valid: pass next_cursor as returned") from exc


def _conditions(query: ScoreQuery) -> list[pl.Expr]:
    conditions = [
        pl.col(f"{kind}_{s}") >= minimum
        for kind in ("score", "rank")
        for s in SCORES
        if (minimum := getattr(query, f"min_{kind}_{s}")) is not None
    ]
    if query.naf is not None:
        if "." in query.naf:
            column = "activite_principale"
        else:
            column = "naf_division" if query.naf.isdigit() else "naf_section"
        conditions.append(pl.col(column) == query.naf)
    for column in ("departement", "region"):
        if (value := getattr(query, column)) is not None:
            conditions.append(pl.col(column) == value)
    return conditions


def _partition(request: Request, day: dt.date | None) -> Partition:
    """The partition of ``day`` (default: the newest published); 404 when not published."""
    try:
        return _served(request).partition(day)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


@v1.get(
    "/scores",
    response_model=ScorePage,
    responses=errors(
        {400: "The cursor is malformed or belongs to another query", 404: NOT_PUBLISHED}
    ),
    summary="Companies by score, filtered, with keyset pagination",
    description="Sorted by `sort` descending, ties broken by SIREN. Pages are stable: follow"
    " `next_cursor` with the same filters; a cursor keeps its date even when a newer partition"
    " is published meanwhile.",
    tags=["scores"],
)
def list_scores(
    request: Request, query: Annotated[ScoreQuery, Query()], _: ScoresKey
) -> dict[str, Any]:
    cursor = None if query.cursor is None else Cursor.decode(query.cursor)
    partition = _partition(request, query.date or (cursor.date if cursor else None))
    filters = query.model_dump(mode="json", exclude={"date", "limit", "cursor", "reasons"})
    if cursor is not None and (cursor.date != partition.day or cursor.filters != filters):
        raise HTTPException(400, "cursor belongs to another query: keep the filters and sort")
    rows = partition.page(
        query.sort, _conditions(query), cursor.after if cursor else None, query.limit + 1
    )
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        next_cursor = Cursor(
            date=partition.day, filters=filters, after=(last[query.sort], last["siren"])
        ).encode()
    return {
        "date": partition.day,
        "sort": query.sort,
        "items": [
            {
                "siren": row["siren"],
                "nom_entreprise": row["nom_entreprise"],
                "activite_principale": row["activite_principale"],
                "departement": row["departement"],
                "scores": _scores(row),
                "ranks": _scores(row, "rank"),
                "bands": _scores(row, "band"),
                "confidence": row["confidence"],
                "reasons": (
                    partition.reasons(row["siren"], query.sort.removeprefix("score_"))
                    if query.reasons
                    else None
                ),
            }
            for row in rows
        ],
        "next_cursor": next_cursor,
    }


@v1.get(
    "/sectors",
    response_model=SectorList,
    responses=errors({404: NOT_PUBLISHED}),
    summary="Per NAF division: companies, mean and p90 of score_ma, share with score_ma >= 75",
    tags=["scores"],
)
def list_sectors(
    request: Request,
    _: ScoresKey,
    day: DayQuery = None,
    by_region: Annotated[bool, Query(description="One item per NAF division and région")] = False,
) -> dict[str, Any]:
    partition = _partition(request, day)
    return {
        "date": partition.day,
        "items": partition.sectors_by_region if by_region else partition.sectors,
    }


@v1.get(
    "/movers",
    response_model=MoverList,
    responses=errors({404: NOT_PUBLISHED}),
    summary="The largest rises and falls of a score since the previous published day",
    description="Each mover with the reasons whose contribution changed most. Companies scored"
    " on one of the two days only are left out.",
    tags=["scores"],
)
def list_movers(
    request: Request,
    _: ScoresKey,
    day: DayQuery = None,
    score: ScoreName = "ma",
    limit: Annotated[int, Query(ge=1, le=500, description="Rises, and falls, at most")] = 20,
) -> dict[str, Any]:
    partition = _partition(request, day)
    previous = _served(request).view.before(partition.day)
    answer = {"date": partition.day, "previous_date": previous, "score": score}
    if previous is None:
        return answer | {"rises": [], "falls": []}
    return answer | movers(partition, _partition(request, previous), score, limit)


@v1.get(
    "/models",
    response_model=ModelList,
    responses=errors(),
    summary="The champion model version of each score and its metrics",
    tags=["models"],
)
def list_models(request: Request, _: ScoresKey) -> dict[str, Any]:
    champions = _served(request).store.champions()
    for row in champions:
        row["metrics"] = json.loads(row.pop("metrics_json") or "{}")
    return {"items": champions}


def _request_out(score_request: ScoreRequest) -> dict[str, Any]:
    return {
        "id": score_request.id,
        "siren": score_request.siren,
        "status": score_request.status,
        "created_at": score_request.created_at,
        "updated_at": score_request.updated_at,
        "result": score_request.result,
        "failure_reason": score_request.failure_reason,
    }


def _api_store(request: Request) -> ApiStore:
    return request.app.state.api_store


RequestsKey = Annotated[ApiKey, Security(authorize, scopes=[REQUESTS_WRITE])]


@v1.post(
    "/score-requests",
    status_code=202,
    response_model=ScoreRequestOut,
    responses=errors(
        {
            400: "The body cannot be read: not UTF-8",
            422: "The body is not JSON or its siren is not valid, a header is not valid, or"
            " the Idempotency-Key was used for another SIREN",
            429: "Over the key's rate, pending score requests or score requests today",
        }
    ),
    summary="Ask for a company to be scored; poll the returned id",
    description="Recorded as `pending`; the pipeline scores it with the champion and marks it"
    " `completed` or `failed`. With an `Idempotency-Key`, a retry returns the first request"
    " (the same key for another SIREN is a 422). While the key's request for the same SIREN is"
    " pending, that request is returned; a key may have `MA_API_MAX_PENDING_REQUESTS` pending"
    " requests at most, and make `MA_API_MAX_REQUESTS_PER_DAY` per day (Europe/Paris) at most"
    " (429 beyond, with `Retry-After`).",
    tags=["score requests"],
)
def create_score_request(
    body: ScoreRequestIn,
    request: Request,
    response: Response,
    key: RequestsKey,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=255, description="Makes retries safe")
    ] = None,
) -> dict[str, Any]:
    settings = request.app.state.settings
    try:
        score_request, _ = _api_store(request).create_request(
            body.siren,
            key.id,
            idempotency_key,
            max_pending=settings.max_pending_requests,
            max_per_day=settings.max_requests_per_day,
        )
    except IdempotencyConflict as exc:
        raise HTTPException(422, str(exc)) from exc
    except TooManyPending as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": "60"}) from exc
    except TooManyToday as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    response.headers["Location"] = f"/v1/score-requests/{score_request.id}"
    return _request_out(score_request)


@v1.get(
    "/score-requests/{request_id}",
    response_model=ScoreRequestOut,
    responses=errors({404: "No such request made with this API key"}),
    summary="A score request: pending, completed with its result, or failed with the reason",
    tags=["score requests"],
)
def get_score_request(request_id: uuid.UUID, request: Request, key: RequestsKey) -> dict[str, Any]:
    score_request = _api_store(request).get_request(request_id)
    if score_request is None or score_request.key_id != key.id:
        raise HTTPException(404, f"no score request {request_id} for this API key")
    return _request_out(score_request)


@ops.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency does not answer"}},
    summary="Whether the scores store and the API database answer",
    description="`ok`, or `degraded` (503) with the failing dependency named; the reason goes to"
    " the server's log, never to this unauthenticated answer.",
)
def health(request: Request, response: Response) -> dict[str, Any]:
    served = _served(request)
    checks = {}
    for name, check in (("scores", served.store.check), ("api_db", _api_store(request).ping)):
        try:
            check()
            checks[name] = "ok"
        except Exception:  # any failure is the answer: log why, never raise nor tell the client
            log.warning("health check %s failed", name, exc_info=True)
            checks[name] = "failing"
    healthy = all(v == "ok" for v in checks.values())
    response.status_code = 200 if healthy else 503
    latest = served.view.latest
    return {
        "status": "ok" if healthy else "degraded",
        "checks": checks,
        "served_date": None if latest is None else latest.day,
    }


@ops.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics of this process",
)
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
