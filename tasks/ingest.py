"""Ingest: read a customer file (CSV or Parquet), map columns onto canonical names, derive RFM from
transactions, and normalise types. Every failure names the file, the column and example rows."""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from tasks.errors import InputError
from tasks.files import read_table
from tasks.privacy import kind_by_content, kind_by_name, normalise_name, safe_row

RFM = ("recency_days", "frequency", "monetary")
# The largest magnitude a number of the customer or transactions file may have: its squares and cubes, summed
# over billions of customers (the analysis' sufficient statistics), stay finite, so no accepted value can
# overflow the analysis after approval. Money above a quadrillion is a data error, not a customer.
MAX_MAGNITUDE = 1e15
NUMERIC = {"recency_days": pl.Float64, "frequency": pl.Float64, "monetary": pl.Float64, "age": pl.Float64,
           "historical_open_rate": pl.Float64, "historical_click_rate": pl.Float64}


def examples(df: pl.DataFrame, mask: pl.Expr, columns: list[str], limit: int = 5) -> str:
    """Example rows (1-based data row numbers) where `mask` holds, as text for an error message; personal
    data masked (`j***@example.org`)."""
    bad = df.with_row_index("row", offset=1).filter(mask).head(limit)
    keep = ["row"] + [c for c in columns if c in bad.columns]
    pii = {c: k for c in keep[1:] if (k := kind_by_name(c) or kind_by_content(bad[c]))}
    rows = [safe_row(r, pii, show=set(keep)) for r in bad.select(keep).to_dicts()]
    return "; ".join(", ".join(f"{k}={r[k]!r}" for k in keep) for r in rows)


def map_columns(df: pl.DataFrame, mapping: dict[str, str], source: Path) -> pl.DataFrame:
    """Rename source columns onto canonical names (`--column recency_days=last_engagement_days`)."""
    missing = {canon: src for canon, src in mapping.items() if src not in df.columns}
    if missing:
        canon, src = next(iter(missing.items()))
        raise InputError(f"{source}: column '{src}' (mapped to '{canon}') is not in the file; "
                         f"columns are: {', '.join(df.columns)}")
    for canon, src in mapping.items():
        check_consent_mapping(canon, src, canon in df.columns and src != canon, source)
    clashes = [c for c in mapping if c in df.columns and mapping[c] != c]
    df = df.drop(clashes)  # the mapped source wins over an existing column of the canonical name
    return df.rename({src: canon for canon, src in mapping.items()})


def require(df: pl.DataFrame, columns: list[str], source: Path, hint: str = "") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{source}: required column(s) {', '.join(missing)} missing; columns are: "
                         f"{', '.join(df.columns)}{hint}")


def to_number(df: pl.DataFrame, column: str, source: Path) -> pl.DataFrame:
    """Cast a column to float. Accepted: plain numbers, a leading currency sign, US thousands separators
    (1,234.50). Refused with their rows: other text, NaN, infinities and ambiguous forms such as 1.234,50."""
    if column not in df.columns:
        return df
    if df.schema[column].is_numeric():
        value = pl.col(column).cast(pl.Float64)
        bad = value.is_nan() | value.is_infinite()
    else:
        cleaned = pl.col(column).cast(pl.String).str.strip_chars().str.replace(r"^([+-]?)\s*[$€£]\s*", "$1")
        ok = cleaned.str.contains(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$") & cleaned.str.contains(r"\d")
        value = pl.when(ok).then(cleaned.str.replace_all(",", "")).cast(pl.Float64, strict=False)
        bad = ~ok & cleaned.is_not_null() & (cleaned != "")
    if df.select(bad.any()).item():
        raise InputError(f"{source}: column '{column}' must hold numbers (e.g. 1234.50; no NaN, infinity or "
                         f"1.234,50); bad rows: {examples(df, bad, ['customer_id', column])}")
    huge = value.abs() > MAX_MAGNITUDE
    if df.select(huge.any()).item():
        raise InputError(f"{source}: column '{column}' holds numbers beyond ±{MAX_MAGNITUDE:.0e} (the largest "
                         f"magnitude cpo accepts, so that the analysis' sums stay finite); bad rows: "
                         f"{examples(df, huge, ['customer_id', column])}")
    return df.with_columns(value.alias(column))


ISO_DATE = r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ]\S.*)?$"  # year first: YYYY-MM-DD, optionally a time
DAY_MONTH = r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?:[T ]\S.*)?$"  # DD/MM/YYYY or MM/DD/YYYY (also with dots)
DATE_FIX = ("convert the column to ISO dates (YYYY-MM-DD; in a spreadsheet: format the cells as yyyy-mm-dd and "
            "save as CSV)")


def transaction_days(tx: pl.DataFrame, source: Path) -> pl.Series:
    """The `date` column as dates, never guessed: ISO (YYYY-MM-DD, optionally with a time) row by row; a
    DD/MM/YYYY or MM/DD/YYYY form (slashes or dots) only when the whole column decides which: some first number
    above 12 makes every such row day-first, some second number above 12 month-first; both, or neither (every
    number ≤ 12, as in a US file of early days), is refused naming the rows, as is anything else."""
    text = pl.col("date").cast(pl.String).str.strip_chars()
    iso, other = text.str.extract_groups(ISO_DATE), text.str.extract_groups(DAY_MONTH)
    first, second = other.struct.field("1").cast(pl.Int32), other.struct.field("2").cast(pl.Int32)
    facts = tx.select((first > 12).any().alias("day_first"), (second > 12).any().alias("month_first"),
                      text.str.contains(DAY_MONTH).fill_null(False).any().alias("slashed")).row(0, named=True)
    slashed = text.str.contains(DAY_MONTH).fill_null(False)
    if facts["day_first"] and facts["month_first"]:
        raise InputError(f"{source}: column 'date' mixes day-first (DD/MM/YYYY) and month-first (MM/DD/YYYY) dates, "
                         f"e.g. {examples(tx, slashed & ((first > 12) | (second > 12)), ['customer_id', 'date'])}; "
                         f"{DATE_FIX}")
    if facts["slashed"] and not (facts["day_first"] or facts["month_first"]):
        raise InputError(f"{source}: column 'date' holds dates such as 03/04/2025 that read as day-first "
                         "(DD/MM/YYYY) and as month-first (MM/DD/YYYY): no day in the column is above 12, so which "
                         f"is meant cannot be told, e.g. {examples(tx, slashed, ['customer_id', 'date'])}; {DATE_FIX}")
    day, month = (first, second) if facts["day_first"] else (second, first)

    def ymd(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
        return pl.concat_str([y, m.cast(pl.String).str.zfill(2), d.cast(pl.String).str.zfill(2)], separator="-")

    parsed = pl.coalesce(ymd(iso.struct.field("1"), iso.struct.field("2"), iso.struct.field("3")),
                         ymd(other.struct.field("3"), month, day)).str.to_date("%Y-%m-%d", strict=False)
    # a year a transaction can have happened in ("9999-12-31" and "0000-01-01" are placeholders, not purchases)
    bad = parsed.is_null() | (parsed < date(1900, 1, 1)) | (parsed > date(2199, 12, 31))
    if tx.select(bad.any()).item():
        raise InputError(f"{source}: column 'date' must hold dates from 1900 to 2199 (YYYY-MM-DD, optionally with a time; DD/MM/YYYY "
                         "or MM/DD/YYYY when the column shows which); bad rows: "
                         f"{examples(tx, bad, ['customer_id', 'date'])}; {DATE_FIX}")
    return tx.select(parsed.alias("date")).to_series()


def rfm_from_transactions(tx: pl.DataFrame, source: Path) -> pl.DataFrame:
    """Recency (days before the day after the last transaction), frequency (count), monetary (sum)."""
    require(tx, ["customer_id", "date", "amount"], source)
    if tx.height == 0:
        raise InputError(f"{source}: has a header but no transactions")
    tx = to_number(tx.with_columns(pl.col("customer_id").cast(pl.String).str.strip_chars()), "amount", source)
    tx = tx.with_columns(transaction_days(tx, source).alias("date"))
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
    mapping = mapping or {}
    df = map_columns(read_table(path, "customer file", (mapping.get("customer_id", "customer_id"),)), mapping, path)
    require(df, ["customer_id"], path, hint=" (map yours with --column customer_id=YOUR_COLUMN)")
    if df.height == 0:
        raise InputError(f"{path}: has a header but no customer rows")
    cid = pl.col("customer_id").cast(pl.String).str.strip_chars()
    # an id of nothing but spaces or invisible characters is no id: blank, like an empty cell (the customer
    # checkpoint then names its row: "customer_id must be present")
    df = df.with_columns(pl.when(cid.str.replace_all(r"[\s\p{Cf}]", "") != "").then(cid).alias("customer_id"))
    check_distinct_ids(df, path)
    if transactions:
        tx_path = Path(transactions)
        rfm = rfm_from_transactions(read_table(tx_path, "transactions file", ("customer_id",)), tx_path)
        window = float(rfm["recency_days"].max() or 0) + 1
        if not df["customer_id"].is_in(rfm["customer_id"].implode()).any():
            raise InputError(f"{tx_path}: no transaction's customer_id matches a customer in {path} (e.g. "
                             f"{rfm['customer_id'][0]!r} vs {df['customer_id'][0]!r}); check the id columns")
        df = attach_transactions(df, rfm, window)
    require(df, list(RFM), path, hint=" (map them with --column recency_days=SOURCE, or give --transactions)")
    for column in NUMERIC:
        df = to_number(df, column, path)
    for column in RFM:
        empty = pl.col(column).is_null()
        if df.select(empty.any()).item():
            raise InputError(f"{path}: column '{column}' is empty on {df.select(empty.sum()).item()} rows "
                             f"(RFM needs a value for every customer); e.g. {examples(df, empty, ['customer_id', column])}")
    return resolve_address(df, mapping, path)


def check_distinct_ids(df: pl.DataFrame, source: Path) -> None:
    """Ids that differ only by case, Unicode form or invisible characters (C1 / c1, josé / josé,
    C1 / C1 + zero-width space) are one customer written twice: refused, since each would be emailed."""
    import unicodedata

    def canonical(value: str | None) -> str | None:
        if value is None:
            return None
        folded = unicodedata.normalize("NFKC", value).casefold()
        return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf").strip()
    plain = not df.select(pl.col("customer_id").str.contains(r"[^\x00-\x7f]").any()).item()
    folded = (pl.col("customer_id").str.to_lowercase() if plain  # ASCII: case is all that can differ, vectorised
              else pl.col("customer_id").map_elements(canonical, return_dtype=pl.String))
    counts = df.select(pl.col("customer_id").n_unique().alias("ids"), folded.n_unique().alias("canonical"))
    if counts["ids"].item() == counts["canonical"].item():  # no two ids fold onto one: nothing to name
        return
    ids = df.select(pl.col("customer_id"), folded.alias("canonical"))
    clash = ids.filter(pl.col("canonical").is_duplicated() & ~pl.col("customer_id").is_duplicated())
    if clash.height:
        pairs = clash.group_by("canonical", maintain_order=True).agg("customer_id").head(3)
        shown = "; ".join(" / ".join(repr(v) for v in vs) for vs in pairs["customer_id"].to_list())
        raise InputError(f"{source}: customer_id values that differ only by case, Unicode form or invisible "
                         f"characters: {shown}; each customer must have one id")


def resolve_address(df: pl.DataFrame, mapping: dict[str, str], source: Path) -> pl.DataFrame:
    """The email address column: `email`, the column mapped onto it, or the one column that is an address by
    name (Email, Email Address, e-mail ...) or by content. Customers without an address are never emailed."""
    if "email" in df.columns:
        return df
    by_name = [c for c in df.columns if kind_by_name(c) == "email" and not consent_direction(c)]
    found = by_name or [c for c in df.columns if kind_by_content(df[c], share_needed=0.8) == "email"]
    if len(found) > 1:
        raise InputError(f"{source}: several columns could hold the email address ({', '.join(found)}); name the "
                         f"one to use with --column email=COLUMN")
    return df.rename({found[0]: "email"}) if found else df


# Columns that say who agreed to marketing email (normalised names); opt-out columns are read inverted.
OPT_IN_NAMES = {"email_opt_in", "opt_in", "optin", "opted_in", "email_optin", "marketing_opt_in", "marketing_optin",
                "email_marketing_opt_in", "marketing_consent", "email_consent", "email_marketing_consent", "consent",
                "accepts_marketing", "accepts_email_marketing", "accepts_email", "subscribed", "email_subscribed",
                "is_subscribed", "newsletter_opt_in", "can_email", "emailable", "email_permission"}
OPT_OUT_NAMES = {"email_opt_out", "opt_out", "optout", "opted_out", "email_optout", "marketing_opt_out",
                 "unsubscribed", "is_unsubscribed", "email_unsubscribed", "do_not_email", "do_not_contact",
                 "do_not_mail", "dne", "dnc"}


# Beyond those names, a column speaks of opting out when its name (normalised, underscores dropped) contains one of
# these parts: EmailOptOut, HasOptedOutOfEmail, Unsubscribe Date, DoNotEmail. Missing an opt-out column would email
# people who said no, so the rule is broad; a column it reads wrongly stops the run with its name (map it away with
# --column OTHER_NAME=COLUMN). Opt-in columns are only the exact names above: missing one cannot email anyone.
OPT_OUT_PARTS = ("optout", "optedout", "unsubscrib", "donotemail", "donotmail", "donotcontact", "noemail",
                 "nomarketing")
OPT_OUT_NAMES |= {"bounced", "is_bounced", "email_bounced", "hard_bounce", "hard_bounced", "complained",
                  "spam_complaint", "suppressed", "is_suppressed", "email_suppressed", "blacklisted", "blocklisted"}
# A name ending in one of these measures something about opting out (opt_out_rate): not consent.
MEASURES = {"rate", "count", "pct", "percent", "share", "score", "prob", "probability", "propensity", "likelihood",
            "link", "url"}
# A name ending in one of these records when or why it happened (unsubscribed_at, opt_out_reason): any value
# there means it did, an empty one that it did not.
WHEN_SET = {"at", "on", "date", "time", "timestamp", "ts", "dt", "day", "reason", "source", "channel", "method"}


def consent_direction(column: str) -> str | None:
    """"in", "out" (read inverted) or None: whether a column's name says who agreed to marketing email."""
    name = normalise_name(column)
    if name in OPT_OUT_NAMES:
        return "out"
    if column == "email_opt_in" or name in OPT_IN_NAMES:
        return "in"
    tokens = name.split("_")
    if tokens[-1] not in MEASURES and any(part in name.replace("_", "") for part in OPT_OUT_PARTS):
        # "not_opted_out", "never_unsubscribed": the name says the opposite of opting out
        return "in" if NEGATED.search(name) else "out"
    return None


NEGATED = re.compile(r"(?:^|_)(?:not|non|never|has_not|hasnt|havent|didnt|isnt)_?(?:opt|unsub|do_?not|donot)")


def when_set(column: str) -> bool:
    """A consent column that records when or why (unsubscribed_at): set means it happened."""
    return normalise_name(column).split("_")[-1] in WHEN_SET


def check_consent_mapping(canon: str, src: str, replaces: bool, source: Path) -> None:
    """`--column` may not turn consent around (an opt-out column mapped onto email_opt_in) or silently retire a
    consent column the file has (every consent column counts: a customer is emailed only if all say yes)."""
    to, of = consent_direction(canon), consent_direction(src)
    if of and not to:
        raise InputError(f"{source}: --column {canon}={src} would take the consent column '{src}' (opt-{of}) out of "
                         f"consent: every consent column counts, and a customer is emailed only if all say yes. Leave "
                         f"it unmapped, or map it onto a consent name (--column email_opt_{of}={src})")
    if to and of and to != of:
        raise InputError(f"{source}: column '{src}' reads as opt-{of} and cannot be mapped onto '{canon}' "
                         f"(opt-{to}): that would turn every customer's consent around. Leave it unmapped (it is read "
                         f"as opt-{of}) or map it onto an opt-{of} name (--column email_opt_{of}={src})")
    if to and replaces:
        raise InputError(f"{source}: --column {canon}={src} would replace the file's own '{canon}' column, and both "
                         f"speak of consent. Every consent column counts (a customer is emailed only if all say yes): "
                         f"map '{src}' onto another consent name (--column marketing_consent={src}), or remove the "
                         f"column you mean to retire from the file")


# Values that say what they mean whatever the column is called; plain yes/no follow the column's direction.
SAYS_IN = {"opt-in", "opted_in", "opted-in", "optin", "subscribed", "consented", "granted"}
SAYS_OUT = {"opt-out", "opted_out", "opted-out", "optout", "unsubscribed", "cleaned", "revoked", "declined",
            "withdrawn"}
YES, NO = {"true", "t", "yes", "y", "1", "1.0"}, {"false", "f", "no", "n", "0", "0.0"}


def may_email(df: pl.DataFrame, column: str, says_out: bool, source: Path) -> pl.Expr:
    """True where `column` says the customer agreed to marketing email; null where it is empty. A column that
    records when or why (`when_set`) says yes by any value other than a plain no, and no when empty."""
    if df.schema[column] == pl.Boolean:
        return ~pl.col(column) if says_out else pl.col(column)
    word = pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
    if when_set(column):
        happened = word.is_not_null() & (word != "") & ~word.is_in(NO)
        return ~happened if says_out else happened
    value = (pl.when(word.is_in(SAYS_IN)).then(True).when(word.is_in(SAYS_OUT)).then(False)
             .when(word.is_in(YES)).then(not says_out).when(word.is_in(NO)).then(says_out).otherwise(None))
    bad = value.is_null() & word.is_not_null() & (word != "")
    if df.select(bad.any()).item():
        raise InputError(f"{source}: consent column '{column}' must say yes/no, true/false, 1/0, opted in or "
                         f"opted out; bad rows: {examples(df, bad, ['customer_id', column])}")
    return value


def resolve_consent(df: pl.DataFrame, mapping: dict[str, str], all_opted_in_basis: str | None,
                    source: Path) -> tuple[pl.DataFrame, dict]:
    """Who agreed to be emailed. Every column that speaks of consent counts: `email_opt_in` (or the column
    mapped onto it) and each column whose name says opt-in or opt-out (read inverted); a customer may be
    emailed only if all of them say yes, and an empty value is a no. Without such a column, only the
    operator's explicit statement that the whole file consented will do: consent is never assumed."""
    columns = {c: d == "out" for c in df.columns if (d := consent_direction(c))}
    if columns:
        agreed = pl.all_horizontal([may_email(df, c, out, source).fill_null(False) for c, out in columns.items()])
        named = [mapping.get(c, c) if c in mapping else c for c in columns]
        rule = ("all must say yes: " if len(columns) > 1 else "") + ", ".join(
            f"{n} ({'opt-out, read inverted' if out else 'opt-in'})" for n, out in zip(named, columns.values()))
        return by_address(df.with_columns(agreed.alias("email_opt_in")), {"column": ", ".join(named), "rule": rule})
    if all_opted_in_basis:
        return by_address(df.with_columns(pl.lit(True).alias("email_opt_in")),
                          {"column": None, "rule": "declared: every customer in the file opted in",
                           "basis": all_opted_in_basis})
    raise InputError(
        f"{source}: no consent column. cpo emails only customers who opted in, and no column says who did "
        f"(columns are: {', '.join(df.columns)}). Map yours with --column email_opt_in=YOUR_COLUMN "
        f"(true/yes/1 = opted in), or, if every customer in the file consented, declare it with "
        f"--all-opted-in 'WHY' (or consent.all_opted_in_basis in campaign.yaml); the statement is recorded "
        f"in the manifest and the report.")


def by_address(df: pl.DataFrame, consent: dict) -> tuple[pl.DataFrame, dict]:
    """Consent belongs to a person, and a person is an address: where records share an address (compared as
    suppression lists compare them), a no on any of them is a no for all, and only the first record that may be
    emailed is, so one address gets one message. `consent` says how many records each rule held back."""
    from tasks.privacy import email_key

    if "email" not in df.columns:
        return df, consent
    key = email_key(pl.col("email"))
    shared = key.is_not_null() & (key != "")
    agreed = pl.col("email_opt_in")
    no_elsewhere = agreed & shared & (~agreed).any().over(key)
    repeated = agreed & ~no_elsewhere & shared & ((agreed & ~no_elsewhere).cast(pl.Int64).cum_sum().over(key) > 1)
    flags = df.select(no_elsewhere.alias("no"), repeated.alias("repeated"))
    held_no, held_repeated = int(flags["no"].sum()), int(flags["repeated"].sum())
    if not held_no and not held_repeated:
        return df, consent
    out = df.with_columns((agreed & ~flags["no"] & ~flags["repeated"]).alias("email_opt_in"))
    rule = (f"{consent['rule']}; by address: {held_no} record(s) not emailed because another record of the same "
            f"address says no, {held_repeated} because an earlier record of the address is emailed")
    return out, {**consent, "rule": rule, "same_address": {"opted_out_elsewhere": held_no, "repeated": held_repeated}}
