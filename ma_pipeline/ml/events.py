"""M&A events, the labels of ``score_ma``: dated cessions, changes of control and mergers.

**CSV contract.** ``$MA_DATA_DIR/landing/ma_events*.csv`` (UTF-8, comma- or semicolon-separated,
one header row; every matching file is read, in name order):

============  ========  ====================================================================
column        required  meaning
============  ========  ====================================================================
siren         yes       the company that changed hands (the target), 9 digits; spaces and
                        dots are ignored ("833 310 592"); the Luhn check digit must hold
event_date    yes       the day the event took effect, ``YYYY-MM-DD`` (or ``DD/MM/YYYY``)
event_type    yes       ``cession`` | ``changement_controle`` | ``fusion_absorption``
source        no        where the row comes from (``bodacc``, ``crm:<name>``); default: the
                        file's name
reference     no        the source's identifier (BODACC notice id, CRM deal id)
============  ========  ====================================================================

A row that breaks a rule is reported with its file, line and reason in the materialization's
metadata, never dropped silently; the same (siren, event_date, event_type) given twice is kept
once and the repeat reported as a duplicate. A file without the required columns fails the asset.

**BODACC** (CONTRACTS §4; after dropping notices cancelled by an ``annulation`` and those a
``rectificatif`` supersedes). The portal's exports dropped in the landing folder as
``bodacc*.csv|json|jsonl`` are read by ``ingestion.bodacc``, which applies these rules itself;
their events join the CSV's, a CSV row winning over a notice for the same company, day and type:

- ``familleavis = vente`` (BODACC A, *ventes et cessions*): ``cession``; ``siren`` = the seller
  (``listeprecedentproprietaire`` / ``listeprecedentexploitant``; Pappers shows the same notice as
  ``Achat`` with ``siren_ancien_proprietaire``); ``event_date`` = the date in ``acte`` when
  given, else ``dateparution`` (which lags by days to weeks); ``reference`` = the notice ``id``.
- ``familleavis = modification`` (BODACC B) whose ``modificationsgenerales.descriptif`` mentions
  *fusion*, *absorption*, *transmission universelle du patrimoine* / *TUP* or *dissolution sans
  liquidation*: ``fusion_absorption`` on the absorbed company (``registre``).
- Not events: changes of dirigeants, name, address or legal form alone; a *plan de cession*
  judgement (a distress sale: the collective procedure already feeds ``score_stabilite``).
- Share deals (most PE and M&A transactions) are not published in BODACC: a BODACC-only file
  under-counts ``changement_controle``, which is what CRM lists add.

**CRM deal list**: one row per *closed* deal whose target is a French company: target SIREN,
closing date as ``event_date``; an asset or business sale is ``cession``, a majority stake or
buy-out ``changement_controle``, a merger ``fusion_absorption``; ``source`` = ``crm:<tool>``,
``reference`` = the deal id. Lost or open deals are not events.

**Sandbox** (no CSV in the landing folder, sandbox universe): events are drawn, seeded, from the
world's monthly ``sale_hazard`` (oldest dirigeant reaching 60 and 65, flat revenue, mid size, a
hidden propensity), with label noise like a real source's: a share of true events is never
recorded and a few events happen for no reason the data shows.
"""

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from ma_pipeline.contracts.siren import siren_problem
from ma_pipeline.ingestion import bodacc
from ma_pipeline.ingestion.landing import landed
from ma_pipeline.ml.dataset import add_months
from ma_pipeline.sandbox.world import world

EVENT_TYPES = ("cession", "changement_controle", "fusion_absorption")
EVENTS_FILE = re.compile(r"^ma_events.*\.csv$", re.IGNORECASE)
REQUIRED_COLUMNS = ("siren", "event_date", "event_type")
OPTIONAL_COLUMNS = ("source", "reference")
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "event_date": pl.Date(),
    "event_type": pl.String(),
    "source": pl.String(),
    "reference": pl.String(),
}
REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "line": pl.Int64(),
    "reason": pl.String(),
    "detail": pl.String(),
}

# Sandbox noise: the share of true events no source records, and a monthly rate of events the
# data cannot explain (intra-group reorganisations, say); the mix of event types.
SANDBOX_MISSED = 0.10
SANDBOX_SPURIOUS_MONTHLY = 0.0003
SANDBOX_TYPE_SHARES = (0.6, 0.3, 0.1)
_SANDBOX_STREAM = 0x3AE7  # the events' random stream, apart from the world's


class EventsFileError(ValueError):
    """A CSV that cannot be used at all; the message names the file and the problem."""


@dataclass(frozen=True)
class EventsRead:
    events: pl.DataFrame  # EVENT_SCHEMA, sorted by siren and date
    rejected: pl.DataFrame  # REJECTED_SCHEMA

    def rejected_by_reason(self) -> dict[str, int]:
        counts = self.rejected.group_by("reason").len().sort("reason")
        return dict(zip(counts["reason"], counts["len"].to_list(), strict=True))


def event_files(landing_dir: Path) -> list[Path]:
    return landed(landing_dir, EVENTS_FILE)


def with_bodacc(read: EventsRead, exports: list[Path]) -> tuple[EventsRead, bodacc.Derived]:
    """``read``'s events and those of the BODACC exports, each (siren, day, type) once."""
    derived = bodacc.events(bodacc.current(bodacc.read_notices(exports)))
    both = pl.concat([read.events, derived.events.cast(EVENT_SCHEMA)])  # type: ignore[arg-type]
    unique = both.unique(["siren", "event_date", "event_type"], keep="first", maintain_order=True)
    return EventsRead(unique.sort("siren", "event_date"), read.rejected), derived


def _read_csv(path: Path) -> pl.DataFrame:
    text = path.read_text(encoding="utf-8-sig")
    header = text.partition("\n")[0]
    separator = ";" if header.count(";") > header.count(",") else ","
    rows = pl.read_csv(text.encode(), separator=separator, infer_schema=False)
    rows = rows.rename({c: c.strip().lower() for c in rows.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise EventsFileError(
            f"{path.name}: missing required column(s) {', '.join(missing)}; expected"
            f" {', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
        )
    given = [pl.col(c).str.strip_chars().replace("", None) for c in rows.columns]
    absent = [pl.lit(None, pl.String).alias(c) for c in OPTIONAL_COLUMNS if c not in rows.columns]
    return (
        rows.select(given)
        .with_columns(absent)
        .with_row_index("line", offset=2)  # line 1 is the header
        .with_columns(pl.col("line").cast(pl.Int64), file=pl.lit(path.name))
    )


def read_events(paths: list[Path]) -> EventsRead:
    """The valid events of ``paths`` and the rows that were not kept, with their reason."""
    if not paths:
        return EventsRead(pl.DataFrame(schema=EVENT_SCHEMA), pl.DataFrame(schema=REJECTED_SCHEMA))
    rows = pl.concat([_read_csv(path) for path in paths], how="diagonal_relaxed")
    siren = pl.col("siren").str.replace_all(r"[\s.]", "")
    rows = rows.with_columns(
        siren=siren,
        event_type=pl.col("event_type").str.to_lowercase(),
        event_day=pl.coalesce(
            pl.col("event_date").str.to_date("%Y-%m-%d", strict=False),
            pl.col("event_date").str.to_date("%d/%m/%Y", strict=False),
        ),
        source=pl.coalesce("source", "file"),
    )
    problems = [siren_problem(value) for value in rows["siren"].to_list()]
    rows = rows.with_columns(_siren_problem=pl.Series(problems, dtype=pl.String))
    rules = [
        (pl.col("_siren_problem").is_not_null(), "invalid_siren", "siren '{}' {}"),
        (pl.col("event_day").is_null(), "invalid_event_date", "event_date '{}' is not a date"),
        (
            ~pl.col("event_type").is_in(EVENT_TYPES) | pl.col("event_type").is_null(),
            "invalid_event_type",
            "event_type '{}' is not one of " + ", ".join(EVENT_TYPES),
        ),
    ]
    shown = {
        "invalid_siren": [pl.col("siren").fill_null(""), "_siren_problem"],
        "invalid_event_date": [pl.col("event_date").fill_null("")],
        "invalid_event_type": [pl.col("event_type").fill_null("")],
    }
    reason: pl.Expr = pl.lit(None, pl.String)
    detail: pl.Expr = pl.lit(None, pl.String)
    for condition, code, text in reversed(rules):  # the first rule broken wins
        reason = pl.when(condition).then(pl.lit(code)).otherwise(reason)
        detail = pl.when(condition).then(pl.format(text, *shown[code])).otherwise(detail)
    checked = rows.with_columns(reason=reason, detail=detail)
    valid = checked.filter(pl.col("reason").is_null())
    repeat = pl.struct("siren", "event_day", "event_type").is_first_distinct().not_()
    duplicates = valid.filter(repeat).with_columns(
        reason=pl.lit("duplicate"),
        detail=pl.format("{} {} {} already given", "siren", "event_day", "event_type"),
    )
    events = (
        valid.filter(~repeat)
        .select(
            "siren", pl.col("event_day").alias("event_date"), "event_type", "source", "reference"
        )
        .sort("siren", "event_date")
    )
    rejected = pl.concat([checked.filter(pl.col("reason").is_not_null()), duplicates])
    return EventsRead(events, rejected.select(list(REJECTED_SCHEMA)).sort("file", "line"))


def _month_starts(end: date, months: int) -> list[date]:
    """The 1st of the ``months`` months that end with the month of ``end``."""
    last = end.replace(day=1)
    return [add_months(last, -k) for k in range(months - 1, -1, -1)]


def sandbox_events(n_companies: int, seed: int, end: date, months: int) -> pl.DataFrame:
    """Events of the sandbox universe over the ``months`` months up to ``end`` (EVENT_SCHEMA),
    drawn month by month from ``sale_hazard`` with the module's noise; the same arguments always
    give the same events."""
    truth = world(n_companies, seed)
    starts = _month_starts(end, months)
    hazard = truth.sale_hazard(
        truth.sirens[:, None], np.array(starts, dtype="datetime64[D]")[None, :]
    )
    rng = np.random.default_rng([seed, _SANDBOX_STREAM])
    alive = hazard > 0
    chance = hazard * (1 - SANDBOX_MISSED) + SANDBOX_SPURIOUS_MONTHLY * alive
    company, month = np.nonzero(rng.random(hazard.shape) < chance)
    days = np.array([monthrange(d.year, d.month)[1] for d in starts], dtype=np.int64)[month]
    offset = (rng.random(company.size) * days).astype(np.int64)
    kind = rng.choice(len(EVENT_TYPES), size=company.size, p=SANDBOX_TYPE_SHARES)
    event_date = np.array(starts, dtype="datetime64[D]")[month] + offset
    events = pl.DataFrame(
        {
            "siren": truth.sirens[company].astype(str),
            "event_date": event_date,
            "event_type": np.array(EVENT_TYPES)[kind],
        }
    ).with_columns(
        source=pl.lit("sandbox"),
        reference=pl.format("SBX-{}-{}", "siren", pl.col("event_date").dt.strftime("%Y%m%d")),
    )
    return events.filter(pl.col("event_date") <= end).sort("siren", "event_date").cast(EVENT_SCHEMA)
