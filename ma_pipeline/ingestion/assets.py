"""raw_companies: the company universe of each day, and the rows that could not be used;
target_companies: who of them is enriched, featured and scored; and the BODACC notices of the
exports dropped in the landing folder, with the procedures and filings they give, and INPI's
financial ratios and SIRENE's succession links."""

import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import polars as pl

from ma_pipeline.contracts import keys, tables
from ma_pipeline.contracts.siren import siren_blocks
from ma_pipeline.contracts.sirene import OUTPUT_COLUMNS, REJECTED_SCHEMA
from ma_pipeline.ingestion import bodacc as notices
from ma_pipeline.ingestion import inpi_ratios as ratios
from ma_pipeline.ingestion import sirene, source, succession, targets
from ma_pipeline.ingestion.landing import Download
from ma_pipeline.ingestion.sirene import SireneFileError, rejected_by_reason
from ma_pipeline.ingestion.source import SireneSource, Stock
from ma_pipeline.ingestion.targets import TargetRules, select_targets
from ma_pipeline.lib import owners
from ma_pipeline.lib.metadata import preview
from ma_pipeline.lib.versions import source_version
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.warehouse import PARTITION_COLUMN, WAREHOUSE_POOL, Warehouse, WarehouseResource

VERSION = source_version(sys.modules[__name__], sirene, source)
# Units target_companies reads at a time (the rules' columns of a block in memory).
RULE_BLOCK_ROWS = 1_000_000


STOCK_DAYS_SCHEMA = {
    PARTITION_COLUMN: pl.Date(),
    "stock_date": pl.Date(),
    "source": pl.String(),
    "fingerprint": pl.String(),
}


def _out(key: dg.AssetKey, description: str, **kwargs: object) -> dg.AssetOut:
    return dg.AssetOut(
        key=key,
        kinds={"polars"},
        owners=owners.DATA,
        code_version=VERSION,
        description=description,
        **kwargs,  # type: ignore[arg-type]
    )


def raw_companies_view() -> str:
    """The SELECT of ``ingestion.raw_companies``: each day's rows are its stock's."""
    columns = ", ".join(f's."{c}"' for c in OUTPUT_COLUMNS)
    return (
        f'SELECT d."{PARTITION_COLUMN}", {columns}'
        f" FROM {tables.RAW_COMPANIES_DAYS.sql} AS d"
        f' JOIN {tables.SIRENE_STOCKS.sql} AS s ON s."{PARTITION_COLUMN}" = d."stock_date"'
    )


def stock_rows(backend: Warehouse, dated: date, *, any_row: bool = False) -> int:
    """Rows stored for the stock of ``dated`` (0: not stored), counted in that partition only;
    with ``any_row``, 1 as soon as one row is found."""
    if not backend.columns(tables.SIRENE_STOCKS):
        return 0
    where = f'FROM {tables.SIRENE_STOCKS.sql} WHERE "{PARTITION_COLUMN}" = $1'
    sql = (
        f"SELECT count(*) AS n FROM (SELECT 1 {where} LIMIT 1) AS one"
        if any_row
        else (f"SELECT count(*) AS n {where}")
    )
    return int(backend.query(sql, (dated,))["n"][0])


def stored_fingerprints(backend: Warehouse, dates: list[date]) -> dict[date, set[str]]:
    """For each of ``dates`` whose stock is stored: the fingerprints of the files that served
    days from it (a file replaced in place leaves its older days with the old fingerprint)."""
    if not backend.columns(tables.RAW_COMPANIES_DAYS):
        return {}
    served = backend.lookup(tables.RAW_COMPANIES_DAYS, pl.DataFrame({"stock_date": dates}))
    fingerprints: dict[date, set[str]] = {}
    for dated, fingerprint in served.select("stock_date", "fingerprint").iter_rows():
        fingerprints.setdefault(dated, set()).add(fingerprint)
    return {d: f for d, f in fingerprints.items() if stock_rows(backend, d, any_row=True)}


def previous_stock(
    backend: Warehouse, dated: date, ingested: dict[date, int]
) -> tuple[date, int] | None:
    """The landing-file stock served before one dated ``dated`` (the newest dated on or before
    it: for a file replaced in place, its old version) and its rows, among the stocks that served
    days and those ``ingested`` earlier in this run (date: rows); None: none (the sandbox's
    stocks do not count)."""
    found = {d: n for d, n in ingested.items() if d <= dated}
    if backend.columns(tables.RAW_COMPANIES_DAYS):
        served = backend.query(
            f'SELECT max("stock_date") AS d FROM {tables.RAW_COMPANIES_DAYS.sql}'
            """ WHERE "stock_date" <= $1 AND "source" <> 'sandbox'""",
            (dated,),
        )["d"][0]
        if served is not None and served not in found:
            found[served] = stock_rows(backend, served)
    found = {d: n for d, n in found.items() if n}
    return max(found.items()) if found else None


def check_rows_kept(
    backend: Warehouse, stock: Stock, kept: int, ratio: float, ingested: dict[date, int]
) -> None:
    """Fail when a landing file keeps fewer than ``ratio`` of the rows of the stock served
    before it (not a first stock, nor with ``ratio`` 0), before anything is written."""
    if stock.path is None or ratio <= 0:
        return
    before = previous_stock(backend, stock.dated, ingested)
    if before is None or kept >= ratio * before[1]:
        return
    raise SireneFileError(
        f"{stock.origin}: keeps {kept} rows, fewer than MA_SIRENE_MIN_ROWS_RATIO = {ratio:g} of"
        f" the {before[1]} rows of the stock served before it (dated {before[0]}); nothing is"
        " stored and that stock stays served. If the drop is expected, lower the setting"
        " (0: no check)"
    )


@dg.multi_asset(
    outs={
        "sirene_stocks": _out(
            keys.SIRENE_STOCKS,
            "Each SIRENE stock once, under its date (a landing file's date; the sandbox: its"
            " day): one row per valid SIREN, columns in snake_case; ceased units kept with etat C.",
            dagster_type=dg.Nothing,
        ),
        "raw_companies_rejected": _out(
            keys.RAW_COMPANIES_REJECTED,
            "Rows of each stock that were not kept, under the stock's date: the value as given"
            " (JSON), its row number and the reason.",
            dagster_type=dg.Nothing,
        ),
        "raw_companies_days": _out(
            keys.RAW_COMPANIES_DAYS,
            "Which stock serves each day: the newest landing file dated on or before it.",
        ),
        "raw_companies": _out(
            keys.RAW_COMPANIES,
            "The company universe of each day (a view: the rows of the stock serving the day),"
            " one row per valid SIREN; ceased units kept with etat C.",
            io_manager_key="view_io_manager",
        ),
    },
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingestion",
    pool=WAREHOUSE_POOL,
)
def raw_companies(
    context: dg.AssetExecutionContext, sirene: SireneSource, warehouse: WarehouseResource
) -> Iterator[dg.Output[Any]]:
    """Each day is served by a stock, stored once under its own date: a day served by a stock
    already stored (same file, unchanged) writes one row, not a copy of the universe, and a
    file that lands late is stored at its date. A replaced file (new size or modification
    time) is read again."""
    days = [date.fromisoformat(k) for k in context.partition_keys]
    backend = warehouse.backend()
    try:
        serving = {day: sirene.stock_for(day) for day in days}
        stocks_needed = {s.dated: s for s in serving.values()}
        stored = stored_fingerprints(backend, list(stocks_needed))
        per_stock, reasons = [], Counter[str]()
        ingested: dict[date, int] = {}  # landing files stored by this run: date -> rows
        for stock in stocks_needed.values():
            if stock.fingerprint in stored.get(stock.dated, set()):
                per_stock.append(
                    {
                        "stock_date": str(stock.dated),
                        "source": stock.origin,
                        "ingested": False,
                        "kept": stock_rows(backend, stock.dated),
                    }
                )
                continue
            stamp = pl.lit(stock.dated).alias(PARTITION_COLUMN)
            with sirene.load(stock) as load:
                check_rows_kept(backend, stock, load.kept_rows, sirene.rows_ratio, ingested)
                report = backend.replace_partitions(
                    tables.SIRENE_STOCKS,
                    load.kept().stamped(PARTITION_COLUMN, stock.dated),
                    [stock.dated],
                )
                rejected = load.rejected.select(stamp, *REJECTED_SCHEMA)
                backend.replace_partitions(tables.RAW_COMPANIES_REJECTED, rejected, [stock.dated])
                reasons.update(rejected_by_reason(rejected))
                if stock.path is not None:
                    ingested[stock.dated] = report.rows
                per_stock.append(
                    {
                        "stock_date": str(stock.dated),
                        "source": stock.origin,
                        "ingested": True,
                        "rows_read": load.rows_read,
                        "blank_lines": load.blank_lines,
                        "kept": report.rows,
                        "rejected": rejected.height,
                        "encoding": load.encoding,
                    }
                )
    except (SireneFileError, FileNotFoundError) as exc:
        raise dg.Failure(description=str(exc)) from exc

    ingested = [s for s in per_stock if s["ingested"]]
    decoded = {
        s["source"]: s["encoding"] for s in ingested if s["encoding"] not in ("utf-8", "parquet")
    }
    if decoded:
        context.log.warning(f"not UTF-8, decoded as a legacy encoding: {decoded}")
    stocks = pl.DataFrame(per_stock)
    summary = {
        "stocks_ingested": len(ingested),
        "stocks_reused": len(per_stock) - len(ingested),
        "rows_read": sum(s["rows_read"] for s in ingested),
        "blank_lines": sum(s["blank_lines"] for s in ingested),
        "decoded_as": decoded,
        "kept": sum(s["kept"] for s in ingested),
        "rejected": sum(s["rejected"] for s in ingested),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "stocks": preview(stocks, stocks.height),
    }
    context.log.info(
        f"{len(days)} day(s) served by {len(per_stock)} stock(s):"
        f" {summary['stocks_ingested']} ingested ({summary['kept']} companies kept,"
        f" {summary['rejected']} rejected), {summary['stocks_reused']} already stored"
    )
    yield dg.Output(
        None,
        output_name="sirene_stocks",
        metadata={k: summary[k] for k in ("stocks_ingested", "stocks_reused", "kept", "stocks")},
    )
    yield dg.Output(
        None,
        output_name="raw_companies_rejected",
        metadata={"rejected_by_reason": summary["rejected_by_reason"]},
    )
    served = pl.DataFrame(
        [(day, s.dated, s.origin, s.fingerprint) for day, s in serving.items()],
        schema=STOCK_DAYS_SCHEMA,
        orient="row",
    )
    yield dg.Output(served, output_name="raw_companies_days")
    backend.replace_view(tables.RAW_COMPANIES, raw_companies_view())
    sources = {str(day): s.origin for day, s in serving.items()}
    rows = {date.fromisoformat(s["stock_date"]): s["kept"] for s in per_stock}
    yield dg.Output(
        None,
        output_name="raw_companies",
        metadata={
            **summary,
            "source": sources[str(days[-1])] if len(days) == 1 else sources,
            "dagster/row_count": sum(rows[s.dated] for s in serving.values()),
        },
    )


@dg.asset(
    key=keys.TARGET_COMPANIES,
    group_name="ingestion",
    deps=[keys.RAW_COMPANIES],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    kinds={"polars"},
    owners=owners.DATA,
    code_version=source_version(sys.modules[__name__], targets),
)
def target_companies(
    context: dg.AssetExecutionContext, config: TargetRules, warehouse: WarehouseResource
) -> dg.Output[pl.DataFrame]:
    """The SIRENs of each day's raw_companies that pass every target rule
    (``ingestion.targets``): only they are enriched, featured and scored. The metadata shows
    how many units each rule kept and dropped. Days are read one at a time, each in blocks of
    ``RULE_BLOCK_ROWS`` units in SIREN order, and only the columns the rules use: memory holds
    the day's SIRENs, one block's columns and the targets."""
    days = [date.fromisoformat(k) for k in context.partition_keys]
    backend = warehouse.backend()
    chosen_by_day, funnels, units = [], [], 0
    for day in days:
        sirens = backend.read(tables.RAW_COMPANIES, start=day, end=day, columns=["siren"])
        for block in siren_blocks(sirens["siren"], RULE_BLOCK_ROWS):
            rows = backend.read(
                tables.RAW_COMPANIES,
                start=day,
                end=day,
                columns=targets.RULE_COLUMNS,
                sirens=block,
            )
            units += rows.height
            selection = select_targets(rows, day, config)
            chosen_by_day.append(selection.targets)
            funnels.append(selection.funnel.select(pl.lit(str(day)).alias("partition"), pl.all()))
    funnel = (
        pl.concat(funnels)
        .group_by("partition", "rule", maintain_order=True)
        .agg(pl.col("kept", "dropped").sum())
    )
    chosen = pl.concat(chosen_by_day).sort(PARTITION_COLUMN, "siren")
    if chosen.is_empty() and units:
        context.log.warning(f"no target company over {len(days)} day(s): check the rules")
    context.log.info(f"{chosen.height} target companies of {units} units over {len(days)} day(s)")
    totals = funnel.group_by("rule", maintain_order=True).agg(pl.col("kept", "dropped").sum())
    return dg.Output(
        chosen,
        metadata={
            "units": units,
            "targets": chosen.height,
            "kept_and_dropped_by_rule": {
                rule: {"kept": kept, "dropped": dropped} for rule, kept, dropped in totals.rows()
            },
            "funnel_by_partition": preview(funnel, funnel.height),
            "rules": config.model_dump(),
        },
    )


def _open_data(key: dg.AssetKey, rules: ModuleType, description: str) -> Any:
    """The decorator of a table of the ``open_data`` group, read from files the user downloads
    and materialized on demand; ``rules`` is the module that reads them."""
    return dg.asset(
        key=key,
        group_name="open_data",
        owners=owners.DATA,
        code_version=source_version(rules),
        kinds={"polars"},
        pool=WAREHOUSE_POOL,
        description=description,
    )


def _read_landed(landing_dir: Path, download: Download) -> tuple[list[Path], pl.DataFrame]:
    """The files of ``download`` and what they hold; a failure that says what to download, and
    where, when there is no file, or which file is wrong."""
    files = download.files(landing_dir)
    if not files:
        raise dg.Failure(
            description=f"no {download.named} in {landing_dir}: download it first (README, Real"
            " open data)",
            allow_retries=False,
        )
    try:
        return files, download.read(files)
    except download.error as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


@dg.multi_asset(
    outs={
        "bodacc_notices": _out(
            keys.BODACC_NOTICES,
            "Every notice of the BODACC exports in the landing folder (bodacc*.csv|json|jsonl):"
            " id, publication date, kind, family, the SIRENs it names, the notice it cancels or"
            " corrects, whether it stands, and its file. No person's name is kept: the id leads"
            " to the notice on bodacc.fr.",
        ),
        "bodacc_procedures": _out(
            keys.BODACC_PROCEDURES,
            "Collective procedures' judgements of the standing notices: SIREN, date, family,"
            " nature, and the notice (reference).",
        ),
        "bodacc_accounts_filed": _out(
            keys.BODACC_ACCOUNTS_FILED,
            "Accounts filed, from the standing dépôts des comptes: SIREN, closing date, kind,"
            " whether confidential, publication date, and the notice (reference).",
        ),
    },
    group_name="open_data",  # materialized on demand, once the exports are downloaded
    pool=WAREHOUSE_POOL,
)
def bodacc(
    context: dg.AssetExecutionContext, sirene: SireneSource
) -> Iterator[dg.Output[pl.DataFrame]]:
    """The BODACC exports the user downloaded (README, "Real open data"), read by
    ``ingestion.bodacc``; ma_events reads the sales and mergers from the same files."""
    exports, every = _read_landed(sirene.landing_dir, notices.DOWNLOAD)
    standing = notices.current(every)
    stored = every.select(
        "id", "dateparution", "typeavis", "familleavis", "sirens", "replaces", "file"
    ).with_columns(standing=pl.col("id").is_in(standing["id"].implode()))
    families = stored.group_by("familleavis").len().sort("familleavis")
    context.log.info(f"{every.height} BODACC notices read, {standing.height} standing")
    yield dg.Output(
        stored,
        "bodacc_notices",
        metadata={
            "files": [path.name for path in exports],
            "notices": every.height,
            "standing": standing.height,
            "cancelled_or_corrected": every.height - standing.height,
            "by_family": dict(
                zip(families["familleavis"].fill_null("?"), families["len"].to_list(), strict=True)
            ),
        },
    )
    for name, derive in (
        ("bodacc_procedures", notices.procedures),
        ("bodacc_accounts_filed", notices.accounts_filed),
    ):
        frame = derive(standing)
        yield dg.Output(frame, name, metadata={"preview": preview(frame)})


@_open_data(
    keys.INPI_RATIOS,
    ratios,
    "INPI's financial ratios per SIREN, closing date and kind of accounts (K, C, S),"
    " from ratios_inpi*.csv|json in the landing folder: revenue, net income, EBE, margins, debt"
    " and liquidity; the legal entity's row of each year chosen (C, else S, else K), implausible"
    " values flagged, each row's file line or record id as reference.",
)
def inpi_ratios(context: dg.AssetExecutionContext, sirene: SireneSource) -> dg.Output[pl.DataFrame]:
    """``ingestion.inpi_ratios`` holds the rules (deduplication, choice, flags)."""
    files, frame = _read_landed(sirene.landing_dir, ratios.DOWNLOAD)
    if frame.is_empty():
        raise dg.Failure(
            description=f"{[p.name for p in files]}: no row with a SIREN, a closing"
            " date and a type_bilan",
            allow_retries=False,
        )
    flagged = frame.filter(pl.col("implausible").is_not_null())
    context.log.info(f"{frame.height} ratio rows, {flagged.height} flagged implausible")
    return dg.Output(
        frame,
        metadata={
            "files": [path.name for path in files],
            "companies": frame["siren"].n_unique(),
            "chosen": int(frame["chosen"].sum()),
            "implausible": flagged.height,
            "implausible_rows": preview(flagged),
        },
    )


@_open_data(
    keys.SUCCESSION_CANDIDATES,
    succession,
    "Candidate transfers of a business between legal units, from SIRENE's"
    " succession links (StockEtablissementLiensSuccession*.csv in the landing folder): the"
    " predecessor's SIREN, the successor's, the date, the link as reference. Weaker evidence"
    " than a BODACC sale: not used as M&A labels.",
)
def succession_candidates(
    context: dg.AssetExecutionContext, sirene: SireneSource
) -> dg.Output[pl.DataFrame]:
    """``ingestion.succession`` holds the rule (another unit, economic continuity, not a move
    of the head office)."""
    files, frame = _read_landed(sirene.landing_dir, succession.DOWNLOAD)
    context.log.info(f"{frame.height} candidate transfers between legal units")
    return dg.Output(
        frame,
        metadata={
            "files": [path.name for path in files],
            "companies": frame["siren"].n_unique(),
            "preview": preview(frame),
        },
    )
