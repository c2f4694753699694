"""Ingest: read a customer file (CSV or Parquet), map columns onto canonical names, derive RFM from
transactions, and normalise types. Every failure names the file, the column and example rows."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from tasks.errors import InputError

RFM = ("recency_days", "frequency", "monetary")
NUMERIC = {"recency_days": pl.Float64, "frequency": pl.Float64, "monetary": pl.Float64, "age": pl.Float64}
TRUE_WORDS = {"true", "t", "yes", "y", "1", "opt-in", "opted_in", "subscribed"}
FALSE_WORDS = {"false", "f", "no", "n", "0", "opt-out", "opted_out", "unsubscribed"}


def read_table(path: str | Path) -> pl.DataFrame:
    """CSV (full schema inference, so a late decimal does not break a column) or Parquet."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema_length=None, encoding="utf8-lossy", try_parse_dates=False)
    except (pl.exceptions.PolarsError, OSError, UnicodeError) as e:
        raise InputError(f"{path}: cannot be read as a table: {e}") from None


def examples(df: pl.DataFrame, mask: pl.Expr, columns: list[str], limit: int = 5) -> str:
    """Example rows (1-based data row numbers) where `mask` holds, as text for an error message."""
    bad = df.with_row_index("row", offset=1).filter(mask).head(limit)
    keep = ["row"] + [c for c in columns if c in bad.columns]
    return "; ".join(", ".join(f"{k}={r[k]!r}" for k in keep) for r in bad.select(keep).to_dicts())


def map_columns(df: pl.DataFrame, mapping: dict[str, str], source: Path) -> pl.DataFrame:
    """Rename source columns onto canonical names (`--column recency_days=last_engagement_days`)."""
    missing = {canon: src for canon, src in mapping.items() if src not in df.columns}
    if missing:
        canon, src = next(iter(missing.items()))
        raise InputError(f"{source}: column '{src}' (mapped to '{canon}') is not in the file; "
                         f"columns are: {', '.join(df.columns)}")
    clashes = [c for c in mapping if c in df.columns and mapping[c] != c]
    df = df.drop(clashes)  # the mapped source wins over an existing column of the canonical name
    return df.rename({src: canon for canon, src in mapping.items()})


def require(df: pl.DataFrame, columns: list[str], source: Path, hint: str = "") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{source}: required column(s) {', '.join(missing)} missing; columns are: "
                         f"{', '.join(df.columns)}{hint}")


def to_number(df: pl.DataFrame, column: str, source: Path) -> pl.DataFrame:
    """Cast a column to float; values that are present but not numbers are an input error."""
    if column not in df.columns or df.schema[column].is_numeric():
        return df.with_columns(pl.col(column).cast(pl.Float64)) if column in df.columns else df
    cleaned = pl.col(column).cast(pl.String).str.strip_chars().str.replace_all(r"[$,]", "")
    parsed = cleaned.cast(pl.Float64, strict=False)
    bad = parsed.is_null() & cleaned.is_not_null() & (cleaned != "")
    if df.select(bad.any()).item():
        raise InputError(f"{source}: column '{column}' must be numeric; bad rows: "
                         f"{examples(df, bad, ['customer_id', column])}")
    return df.with_columns(parsed.alias(column))


def to_boolean(df: pl.DataFrame, column: str, source: Path) -> pl.DataFrame:
    if column not in df.columns or df.schema[column] == pl.Boolean:
        return df
    word = pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
    value = (pl.when(word.is_in(TRUE_WORDS)).then(True).when(word.is_in(FALSE_WORDS)).then(False)
             .otherwise(None))
    bad = value.is_null() & word.is_not_null() & (word != "")
    if df.select(bad.any()).item():
        raise InputError(f"{source}: column '{column}' must be true/false (or yes/no, 1/0); bad rows: "
                         f"{examples(df, bad, ['customer_id', column])}")
    return df.with_columns(value.alias(column))


def rfm_from_transactions(tx: pl.DataFrame, source: Path) -> pl.DataFrame:
    """Recency (days before the day after the last transaction), frequency (count), monetary (sum)."""
    require(tx, ["customer_id", "date", "amount"], source)
    tx = to_number(tx.with_columns(pl.col("customer_id").cast(pl.String)), "amount", source)
    day = pl.col("date").cast(pl.String).str.strip_chars().str.to_date(strict=False)
    bad = day.is_null()
    if tx.select(bad.any()).item():
        raise InputError(f"{source}: column 'date' must hold dates (YYYY-MM-DD); bad rows: "
                         f"{examples(tx, bad, ['customer_id', 'date'])}")
    tx = tx.with_columns(day.alias("date"))
    as_of = tx["date"].max() + timedelta(days=1)
    return tx.group_by("customer_id").agg(
        ((pl.lit(as_of) - pl.col("date").max()).dt.total_days()).cast(pl.Float64).alias("recency_days"),
        pl.len().cast(pl.Float64).alias("frequency"),
        pl.col("amount").sum().alias("monetary"),
    )


def attach_transactions(customers: pl.DataFrame, rfm: pl.DataFrame, window_days: float) -> pl.DataFrame:
    """Customers with no transaction get frequency 0, monetary 0 and the whole window as recency."""
    base = customers.drop([c for c in RFM if c in customers.columns])
    return base.join(rfm, on="customer_id", how="left").with_columns(
        pl.col("recency_days").fill_null(window_days), pl.col("frequency").fill_null(0.0),
        pl.col("monetary").fill_null(0.0))


def load_customers(path: str | Path, mapping: dict[str, str] | None = None,
                   transactions: str | Path | None = None) -> pl.DataFrame:
    """The customer table with canonical names and types: ids as strings, RFM as floats, opt-in as bool."""
    path = Path(path)
    df = map_columns(read_table(path), mapping or {}, path)
    require(df, ["customer_id"], path, hint=" (map yours with --column customer_id=YOUR_COLUMN)")
    df = df.with_columns(pl.col("customer_id").cast(pl.String).str.strip_chars())
    if transactions:
        tx_path = Path(transactions)
        rfm = rfm_from_transactions(read_table(tx_path), tx_path)
        window = float(rfm["recency_days"].max() or 0) + 1
        df = attach_transactions(df, rfm, window)
    require(df, list(RFM), path, hint=" (map them with --column recency_days=SOURCE, or give --transactions)")
    for column in NUMERIC:
        df = to_number(df, column, path)
    df = to_boolean(df, "email_opt_in", path)
    return df
