"""BODACC notices (DILA's ``annonces-commerciales`` dataset), and what the pipeline derives.

Read from the open-data portal's exports dropped in the landing folder as ``bodacc*.csv`` (the
``exports/csv`` form: ``;``-separated, raw field names), ``bodacc*.jsonl`` (one record per line)
or ``bodacc*.json`` (an ``exports/json`` array, or an ODS v1 ``records/1.0/search`` answer whose
records hold ``fields``). The quirks handled (``OPEN_DATA.md`` §2):

- ``registre`` lists every SIREN the notice names, each twice ("880878145,880 878 145"; an array
  in v2.1 JSON): kept once each, spaces removed, only valid SIRENs;
- ``acte``, ``jugement``, ``depot``, ``modificationsgenerales``, ``listeprecedentproprietaire``,
  ``listeprecedentexploitant`` and ``parutionavisprecedent`` are JSON written as strings;
- an ``annulation`` cancels the notice its ``parutionavisprecedent`` names, and a
  ``rectificatif`` replaces it (the notice id is the publication's letter, the parution number and
  the notice number: ``{"nomPublication": "BODACC A", "numeroParution": "20220227",
  "numeroAnnonce": 446}`` is ``A20220227446``);
- text decoded twice (``clÃ´ture``) is repaired.

Derived, each row naming its notice (``reference``) and ``source = bodacc``:

- ``events``: a ``vente`` notice is a ``cession`` of the **seller** (``registre`` and
  ``listepersonnes`` name the buyer too): the SIREN of ``listeprecedentproprietaire`` (the
  business's owner) or ``listeprecedentexploitant`` (its operator), on the ``dateEffet`` of
  ``acte.vente`` when given, else the publication date. No real vente record was available to
  build against: these field names come from third-party code, so a vente notice without them
  is skipped and counted, never guessed. A ``modification`` whose ``descriptif`` speaks of a
  merger, an absorption, a TUP or a dissolution without liquidation is a ``fusion_absorption``
  of the companies in ``registre``.
- ``procedures``: a ``collective`` notice's judgement (family, nature, date).
- ``accounts_filed``: a ``dpc`` notice's closing date, kind of filing and whether the accounts are
  confidential (the L. 232-25 declaration).
"""

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from ma_pipeline.contracts.siren import siren_problem
from ma_pipeline.ingestion.landing import Download

BODACC_FILE = re.compile(r"^bodacc.*\.(csv|jsonl?)$", re.IGNORECASE)
SOURCE = "bodacc"
JSON_FIELDS = (
    "acte",
    "jugement",
    "depot",
    "modificationsgenerales",
    "listepersonnes",
    "listeprecedentproprietaire",
    "listeprecedentexploitant",
    "parutionavisprecedent",
)
NOTICE_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "dateparution": pl.Date(),
    "typeavis": pl.String(),
    "familleavis": pl.String(),
    "sirens": pl.List(pl.String()),
    "replaces": pl.String(),  # the notice an annulation or a rectificatif is about
    **{name: pl.String() for name in JSON_FIELDS if name != "parutionavisprecedent"},
    "file": pl.String(),
}
EVENT_COLUMNS: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "event_date": pl.Date(),
    "event_type": pl.String(),
    "source": pl.String(),
    "reference": pl.String(),
}
PROCEDURE_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "date_jugement": pl.Date(),
    "famille": pl.String(),
    "nature": pl.String(),
    "source": pl.String(),
    "reference": pl.String(),
}
ACCOUNTS_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "date_cloture": pl.Date(),
    "type_depot": pl.String(),
    "confidentiel": pl.Boolean(),
    "date_parution": pl.Date(),
    "source": pl.String(),
    "reference": pl.String(),
}
# Case-insensitive inline, as polars reads the pattern on its own.
MERGER = re.compile(
    r"(?i)fusion|absorption|transmission universelle|\bTUP\b|dissolution sans liquidation"
)
CONFIDENTIAL = re.compile(r"confidentialit|L\.?\s*232-25", re.IGNORECASE)
_MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf]")


class BodaccFileError(ValueError):
    """A BODACC export that cannot be read: names the file and the problem."""


@dataclass
class Derived:
    """What the notices gave, and what they could not (vente notices without a seller)."""

    events: pl.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)


def repaired(text: str) -> str:
    """``text`` decoded once more when it was UTF-8 read as Latin-1 ("clÃ´ture" → "clôture")."""
    if not _MOJIBAKE.search(text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The raw records of one export file, whichever of the portal's forms it is."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                yield from csv.DictReader(handle, delimiter=";")
        elif path.suffix.lower() == ".jsonl":
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        yield json.loads(line)
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data.get("records", []) if isinstance(data, dict) else data
            for row in rows:
                yield row.get("fields", row)
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise BodaccFileError(f"{path.name}: not a BODACC export ({exc})") from exc


def _sirens(registre: Any) -> list[str]:
    values = registre if isinstance(registre, list) else str(registre or "").split(",")
    cleaned = (str(v).replace(" ", "").replace("\u00a0", "") for v in values)
    return sorted({v for v in cleaned if siren_problem(v) is None})


def _json(value: Any) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, dict | list):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return None


def _text(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return repaired(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def _previous_id(value: Any) -> str | None:
    previous = _json(value)
    if not isinstance(previous, dict) or not previous.get("nomPublication"):
        return None
    letter = str(previous["nomPublication"]).strip()[-1:]
    return f"{letter}{previous.get('numeroParution', '')}{previous.get('numeroAnnonce', '')}"


def notices(rows: Iterable[dict[str, Any]], file: str) -> pl.DataFrame:
    """One row per notice, in ``NOTICE_SCHEMA``: SIRENs cleaned, JSON fields kept as repaired
    text, the notice an annulation or rectificatif is about resolved to its id."""
    parsed = [
        {
            "id": str(row.get("id") or ""),
            "dateparution": row.get("dateparution") or None,
            "typeavis": row.get("typeavis") or "annonce",
            "familleavis": row.get("familleavis"),
            "sirens": _sirens(row.get("registre")),
            "replaces": _previous_id(row.get("parutionavisprecedent")),
            **{
                name: _text(row.get(name))
                for name in JSON_FIELDS
                if name != "parutionavisprecedent"
            },
            "file": file,
        }
        for row in rows
    ]
    frame = pl.DataFrame(
        parsed, schema={**NOTICE_SCHEMA, "dateparution": pl.String()}, orient="row"
    )
    missing = frame.filter((pl.col("id") == "") | pl.col("dateparution").is_null())
    if missing.height:
        raise BodaccFileError(f"{file}: {missing.height} notice(s) without an id or dateparution")
    return frame.with_columns(pl.col("dateparution").str.to_date("%Y-%m-%d", strict=False))


def read_notices(paths: list[Path]) -> pl.DataFrame:
    """Every notice of the export files, each id once (the last file that has it wins)."""
    frames = [notices(records(path), path.name) for path in paths]
    if not frames:
        return pl.DataFrame(schema=NOTICE_SCHEMA)
    return pl.concat(frames).unique("id", keep="last", maintain_order=True)


def current(all_notices: pl.DataFrame) -> pl.DataFrame:
    """The notices that stand: annulations and what they cancel removed, a rectificatif in
    place of the notice it corrects."""
    amending = all_notices.filter(pl.col("typeavis").is_in(["annulation", "rectificatif"]))
    gone = amending["replaces"].drop_nulls().implode()
    return all_notices.filter((pl.col("typeavis") != "annulation") & ~pl.col("id").is_in(gone))


def _people(block: Any) -> list[dict[str, Any]]:
    person = block.get("personne") if isinstance(block, dict) else None
    if isinstance(person, list):
        return [p for p in person if isinstance(p, dict)]
    return [person] if isinstance(person, dict) else []


def _siren_of(person: dict[str, Any]) -> str | None:
    rcs = person.get("numeroImmatriculation") or {}
    rm = person.get("inscriptionRM") or {}
    for raw in (rcs.get("numeroIdentification"), rm.get("numeroIdentificationRM")):
        value = str(raw or "").replace(" ", "")
        if siren_problem(value) is None:
            return value
    return None


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def events(standing: pl.DataFrame) -> Derived:
    """Sales and mergers (``EVENT_COLUMNS``) from the notices that stand."""
    rows: list[dict[str, Any]] = []
    skipped = {"vente_without_seller": 0}
    for notice in standing.filter(pl.col("familleavis") == "vente").iter_rows(named=True):
        sellers = {
            siren
            for name in ("listeprecedentproprietaire", "listeprecedentexploitant")
            for person in _people(_json(notice[name]))
            if (siren := _siren_of(person)) is not None
        }
        if not sellers:
            skipped["vente_without_seller"] += 1  # a "mise en activité", or an unknown shape
            continue
        acte = _json(notice["acte"]) or {}
        vente = acte.get("vente") if isinstance(acte, dict) else None
        effective = _date((vente or {}).get("dateEffet")) if isinstance(vente, dict) else None
        rows += [
            {
                "siren": siren,
                "event_date": effective or notice["dateparution"],
                "event_type": "cession",
                "source": SOURCE,
                "reference": notice["id"],
            }
            for siren in sorted(sellers)
        ]
    mergers = standing.filter(
        (pl.col("familleavis") == "modification")
        & pl.col("modificationsgenerales")
        .str.contains(MERGER.pattern, literal=False)
        .fill_null(False)
    )
    for notice in mergers.iter_rows(named=True):
        rows += [
            {
                "siren": siren,
                "event_date": notice["dateparution"],
                "event_type": "fusion_absorption",
                "source": SOURCE,
                "reference": notice["id"],
            }
            for siren in notice["sirens"]
        ]
    return Derived(pl.DataFrame(rows, schema=EVENT_COLUMNS, orient="row"), skipped)


def _per_siren(
    standing: pl.DataFrame, family: str, field: str
) -> Iterator[tuple[dict[str, Any], dict[str, Any], str]]:
    """(notice, its ``field`` parsed, one SIREN it names) for the standing notices of
    ``family`` whose ``field`` holds a JSON object."""
    for notice in standing.filter(pl.col("familleavis") == family).iter_rows(named=True):
        parsed = _json(notice[field])
        if isinstance(parsed, dict):
            for siren in notice["sirens"]:
                yield notice, parsed, siren


def procedures(standing: pl.DataFrame) -> pl.DataFrame:
    """Collective procedures' judgements (``PROCEDURE_SCHEMA``), one row per SIREN named."""
    rows = [
        {
            "siren": siren,
            "date_jugement": _date(judgement.get("date")) or notice["dateparution"],
            "famille": judgement.get("famille"),
            "nature": judgement.get("nature"),
            "source": SOURCE,
            "reference": notice["id"],
        }
        for notice, judgement, siren in _per_siren(standing, "collective", "jugement")
    ]
    return pl.DataFrame(rows, schema=PROCEDURE_SCHEMA, orient="row")


def accounts_filed(standing: pl.DataFrame) -> pl.DataFrame:
    """Accounts filed (``ACCOUNTS_SCHEMA``): when, which kind, whether confidential."""
    rows = [
        {
            "siren": siren,
            "date_cloture": _date(depot.get("dateCloture")),
            "type_depot": depot.get("typeDepot"),
            "confidentiel": bool(CONFIDENTIAL.search(depot.get("descriptif") or "")),
            "date_parution": notice["dateparution"],
            "source": SOURCE,
            "reference": notice["id"],
        }
        for notice, depot, siren in _per_siren(standing, "dpc", "depot")
    ]
    return pl.DataFrame(rows, schema=ACCOUNTS_SCHEMA, orient="row")


DOWNLOAD = Download(
    BODACC_FILE, "bodacc*.csv, bodacc*.json or bodacc*.jsonl", read_notices, BodaccFileError
)
