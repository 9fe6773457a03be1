"""The filtered target list as CSV, page after page of the API's keyset pagination: an export
of 100,000 companies asks for one page of answers at a time and holds only the CSV text."""

import csv
import io
from typing import Any

from app.client import Api, ApiError
from app.labels import SCORES
from app.reasons import summary

COLUMNS = [
    "siren",
    "nom_entreprise",
    "activite_principale",
    "departement",
    *(f"{kind}_{s}" for s in SCORES for kind in ("score", "rank", "band")),
    "confidence",
    "top_reasons",
]


def row(item: dict[str, Any]) -> dict[str, Any]:
    """A list item of /v1/scores as a flat row of ``COLUMNS``."""
    flat = {c: item.get(c) for c in COLUMNS[:4]} | {"confidence": item["confidence"]}
    for s in SCORES:
        flat |= {
            f"score_{s}": item["scores"][s],
            f"rank_{s}": item["ranks"][s],
            f"band_{s}": item["bands"][s],
        }
    return flat | {"top_reasons": summary(item.get("reasons"))}


def export_csv(api: Api, filters: dict[str, Any]) -> bytes:
    """The header, then one line per listed company, read page by page; an error ends the file
    with a line that says so, rather than a silently short file."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS)
    writer.writeheader()
    try:
        for item in api.pages("/v1/scores", **filters, reasons=True):
            writer.writerow(row(item))
    except ApiError as exc:
        buffer.write(f"# export stopped: {exc}\n")
    return buffer.getvalue().encode()
