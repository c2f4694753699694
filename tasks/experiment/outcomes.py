"""Outcome files from a real send (or any randomized experiment exported as a table), read robustly."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.errors import InputError
from tasks.files import read_table
from tasks.ingest import examples

KNOWN_METRICS = ["opened", "clicked", "converted", "revenue", "spend", "purchased", "orders", "unsubscribed",
                 "open", "click", "conversion", "order_value"]
# Names that are outcomes of a send wherever they appear: never an attribute to explain an effect with.
OUTCOME_NAMES = set(KNOWN_METRICS) | {"visit", "visits", "visited", "complained", "complaint", "bounced", "bounce",
                                      "delivered", "unsubscribe", "opens", "clicks", "conversions", "purchase",
                                      "order", "sales", "amount", "value", "engaged", "replied", "churned"}


def is_id(column: str) -> bool:
    c = column.lower()
    return c in ("id", "customer_id", "user_id", "email") or c.endswith("_id")


def read_outcomes(path: str | Path) -> pl.DataFrame:
    """Header names stripped (a BOM or stray spaces), fully blank lines dropped."""
    df = read_table(path)
    df = df.rename({c: c.replace("\ufeff", "").strip() for c in df.columns})
    return df.filter(~pl.all_horizontal(pl.all().is_null()))


def resolve(df: pl.DataFrame, source: Path, arm: str, control: str | None, metrics: list[str] | None,
            segment: str | None) -> tuple[str, list[str]]:
    """Check the named columns exist and the metrics are numbers; pick the control label and the metrics."""
    if arm not in df.columns:
        raise InputError(f"{source}: arm column '{arm}' not found (use --arm-column); columns are: {', '.join(df.columns)}")
    labels = sorted(df[arm].drop_nulls().cast(pl.String).unique().to_list())
    control = control or ("control" if "control" in labels else None)
    if control not in labels:
        raise InputError(f"{source}: control label {control!r} is not among the arms {labels} (use --control)")
    if len(labels) < 2:
        raise InputError(f"{source}: column '{arm}' has a single arm {labels}; an experiment needs two or more")
    metrics = metrics or [c for c in df.columns if c.lower() in KNOWN_METRICS]
    if not metrics:
        raise InputError(f"{source}: no metric columns found; name them with --metrics (columns: {', '.join(df.columns)})")
    for m in metrics + ([segment] if segment else []):
        if m not in df.columns:
            raise InputError(f"{source}: column '{m}' not found; columns are: {', '.join(df.columns)}")
    for m in metrics:
        if not df.schema[m].is_numeric() and df.schema[m] != pl.Boolean:
            bad = pl.col(m).cast(pl.Float64, strict=False).is_null() & pl.col(m).is_not_null()
            raise InputError(f"{source}: metric column '{m}' must be numeric (0/1 or amounts); bad rows: "
                             f"{examples(df, bad, [arm, m])}")
    return control, metrics


def is_outcome(column: str) -> bool:
    """An outcome by name (opened, clicked, visit, conversion, spend, unsubscribed, complained ...)."""
    c = column.lower()
    return c in OUTCOME_NAMES or c.removesuffix("_rate").removesuffix("_count") in OUTCOME_NAMES and not c.startswith(
        ("historical_", "prior_", "pre_"))


def check_weights(weights: dict[str, float] | None, labels: list[str], source: str = "--weights") -> None:
    """Intended weights must name every arm in the data, each with a positive finite weight, and nothing else."""
    if not weights:
        return
    unknown = sorted(set(weights) - set(labels))
    missing = sorted(set(labels) - set(weights))
    bad = sorted(a for a, w in weights.items() if not (w > 0 and w < float("inf")))
    problems = []
    if unknown:
        problems.append(f"names arm(s) not in the data: {', '.join(map(repr, unknown))}")
    if missing:
        problems.append(f"leaves out arm(s) {', '.join(map(repr, missing))}")
    if bad:
        problems.append(f"needs a positive weight for {', '.join(map(repr, bad))}")
    if problems:
        raise InputError(f"{source} {'; '.join(problems)}. The arms in the data are {labels}; give every one a "
                         f"positive weight, e.g. {','.join(f'{a}=1' for a in labels)}")


def check_covariates(df: pl.DataFrame, covariates: dict[str, str] | None, metrics: list[str], source) -> None:
    """Each CUPED covariate names a metric being analysed and an existing numeric column."""
    for metric, column in (covariates or {}).items():
        if metric not in metrics:
            raise InputError(f"--covariate {metric}={column}: '{metric}' is not one of the metrics {metrics}")
        if column not in df.columns:
            raise InputError(f"{source}: covariate column '{column}' (for {metric}) not found; columns are: "
                             f"{', '.join(df.columns)}")
        if not df.schema[column].is_numeric():
            bad = pl.col(column).cast(pl.Float64, strict=False).is_null() & pl.col(column).is_not_null()
            raise InputError(f"{source}: covariate column '{column}' must be numeric; bad rows: "
                             f"{examples(df, bad, [column])}")


def parse_weights(text: str | None, source: str = "--weights") -> dict[str, float] | None:
    """'control=0.25,treatment_1=0.75' -> {'control': 0.25, 'treatment_1': 0.75}."""
    if not text:
        return None
    try:
        pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
        return {k.strip(): float(v) for k, v in pairs}
    except ValueError:
        raise InputError(f"{source}: expected ARM=WEIGHT,... (e.g. control=0.5,treatment=0.5), got {text!r}") from None
