"""raw_companies: the company universe of each day, and the rows that could not be used; and
target_companies: who of them is enriched, featured and scored."""

import sys
from collections import Counter
from datetime import date

import dagster as dg
import polars as pl

from ma_pipeline.contracts import keys
from ma_pipeline.contracts.sirene import OUTPUT_COLUMNS, REJECTED_SCHEMA
from ma_pipeline.ingestion import sirene, source, targets
from ma_pipeline.ingestion.sirene import SireneFileError
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.ingestion.targets import TargetRules, select_targets
from ma_pipeline.lib import owners
from ma_pipeline.lib.metadata import preview
from ma_pipeline.lib.versions import source_version
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.warehouse import PARTITION_COLUMN, WAREHOUSE_POOL

VERSION = source_version(sys.modules[__name__], sirene, source)


@dg.multi_asset(
    outs={
        "raw_companies": dg.AssetOut(
            key_prefix="ingestion",
            kinds={"polars"},
            owners=owners.DATA,
            code_version=VERSION,
            description="The INSEE StockUniteLegale of the day (landing file or sandbox), one row"
            " per valid SIREN, columns in snake_case; ceased units are kept with etat C.",
        ),
        "raw_companies_rejected": dg.AssetOut(
            key_prefix="ingestion",
            kinds={"polars"},
            owners=owners.DATA,
            code_version=VERSION,
            description="Rows of the day's stock that were not kept: the value as given (JSON),"
            " its row number and the reason.",
        ),
    },
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingestion",
    pool=WAREHOUSE_POOL,
)
def raw_companies(context: dg.AssetExecutionContext, sirene: SireneSource):
    days = [date.fromisoformat(k) for k in context.partition_keys]
    kept, rejected, sources, per_day = [], [], {}, []
    reasons: Counter[str] = Counter()
    try:
        for daily in sirene.daily_stocks(days):
            stamp = pl.lit(daily.day).alias(PARTITION_COLUMN)
            kept.append(daily.stock.kept.select(stamp, *OUTPUT_COLUMNS))
            rejected.append(daily.stock.rejected.select(stamp, *REJECTED_SCHEMA))
            reasons.update(daily.stock.rejected_by_reason())
            sources[str(daily.day)] = daily.origin
            per_day.append(
                {
                    "partition": str(daily.day),
                    "source": daily.origin,
                    "rows_read": daily.stock.rows_read,
                    "blank_lines": daily.stock.blank_lines,
                    "kept": daily.stock.kept.height,
                    "rejected": daily.stock.rejected.height,
                    "encoding": daily.stock.encoding,
                }
            )
    except (SireneFileError, FileNotFoundError) as exc:
        raise dg.Failure(description=str(exc)) from exc

    companies, rejects = pl.concat(kept), pl.concat(rejected)
    decoded = {
        d["source"]: d["encoding"] for d in per_day if d["encoding"] not in ("utf-8", "parquet")
    }
    if decoded:
        context.log.warning(f"not UTF-8, decoded as a legacy encoding: {decoded}")
    summary = {
        "source": sources[str(days[-1])] if len(days) == 1 else sources,
        "rows_read": sum(d["rows_read"] for d in per_day),
        "blank_lines": sum(d["blank_lines"] for d in per_day),
        "decoded_as": decoded,
        "kept": companies.height,
        "rejected": rejects.height,
        "rejected_by_reason": dict(sorted(reasons.items())),
        "per_partition": preview(pl.DataFrame(per_day), rows=len(per_day)),
    }
    context.log.info(
        f"{summary['kept']} companies kept, {summary['rejected']} rejected over {len(days)} day(s)"
    )
    yield dg.Output(
        companies, output_name="raw_companies", metadata={**summary, "preview": preview(companies)}
    )
    yield dg.Output(
        rejects,
        output_name="raw_companies_rejected",
        metadata={"rejected_by_reason": dict(sorted(reasons.items())), "preview": preview(rejects)},
    )


@dg.asset(
    key=keys.TARGET_COMPANIES,
    group_name="ingestion",
    ins={"raw_companies": dg.AssetIn(key=keys.RAW_COMPANIES)},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    kinds={"polars"},
    owners=owners.DATA,
    code_version=source_version(sys.modules[__name__], targets),
)
def target_companies(
    context: dg.AssetExecutionContext, config: TargetRules, raw_companies: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """The SIRENs of each day's raw_companies that pass every target rule
    (``ingestion.targets``): only they are enriched, featured and scored. The metadata shows
    how many units each rule kept and dropped."""
    days = [date.fromisoformat(k) for k in context.partition_keys]
    by_day = {day: raw_companies.filter(pl.col(PARTITION_COLUMN) == day) for day in days}
    selections = {day: select_targets(rows, day, config) for day, rows in by_day.items()}
    funnel = pl.concat(
        s.funnel.select(pl.lit(str(day)).alias("partition"), pl.all())
        for day, s in selections.items()
    )
    chosen = pl.concat(s.targets for s in selections.values())
    if chosen.is_empty() and raw_companies.height:
        context.log.warning(f"no target company over {len(days)} day(s): check the rules")
    context.log.info(
        f"{chosen.height} target companies of {raw_companies.height} units over {len(days)} day(s)"
    )
    totals = funnel.group_by("rule", maintain_order=True).agg(pl.col("kept", "dropped").sum())
    return dg.Output(
        chosen,
        metadata={
            "units": raw_companies.height,
            "targets": chosen.height,
            "kept_and_dropped_by_rule": {
                rule: {"kept": kept, "dropped": dropped} for rule, kept, dropped in totals.rows()
            },
            "funnel_by_partition": preview(funnel, funnel.height),
            "rules": config.model_dump(),
        },
    )
