"""Real sends: suppression and seed lists, the control message, and `sends.csv` rendered per recipient.

Pure functions, polars in and out. What a recipient receives is the screened text of their arm's message with
its merge fields filled (a configured fallback when the customer has none or one that does not read as a name;
a placeholder never survives) and the
brand's unsubscribe link made theirs (`?r=<token>`); the List-Unsubscribe headers follow RFC 2369/8058
(one-click POST), and a column says which generator wrote the copy, for the service's AI-provenance header.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import polars as pl

from config import Brand, ControlMessage
from tasks.errors import InputError, SafetyGateError
from tasks.experiment.assign import CONTROL, HOLDOUT, eligible
from tasks.files import is_formula, read_table
from tasks.generation import MERGE_FIELD, footer, merge_text, merge_value, name_like
from tasks.privacy import EMAIL, email_key, id_key, mask
from tasks.records import Variant

CONTROL_ID = "control.bau"
SENDS_COLUMNS = ["customer_id", "email", "segment", "arm", "variant_id", "subject", "preheader", "body",
                 "unsubscribe_url", "list_unsubscribe", "list_unsubscribe_post", "generator", "ai_generated", "seed"]
SENDS_SCHEMA = {c: pl.Int8 if c in ("ai_generated", "seed") else pl.String for c in SENDS_COLUMNS}
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058: the List-Unsubscribe-Post header's only value
UNSUBSCRIBE_MARK = "\x00unsubscribe\x00"
# What the email service sends as it is: sends.csv, written like every CSV cpo writes, must not quote them.
SENT_AS_IS = ("email", "subject", "preheader", "body", "unsubscribe_url", "list_unsubscribe", "list_unsubscribe_post")


# ------------------------------------------------------------------------------------- suppression, seeds

def read_suppression(paths: list[str | Path]) -> tuple[set[str], set[str], list[dict]]:
    """Emails and customer ids to suppress, as keys (tasks.privacy.email_key / id_key), from CSV files of
    either: a column `email` / `customer_id`, or one column without a known header, whose every value (the
    header too) is an address when it holds an @ and an id otherwise. Everything is read as text (ids keep
    their zeros). Returns (emails, ids, one summary per file, without personal data)."""
    emails, ids, files = set(), set(), []
    for path in paths:
        df = read_table(path, "suppression list", text_columns=("*",))
        names = {c.strip().lower().replace(" ", "_"): c for c in df.columns}
        email_col = names.get("email") or names.get("email_address") or names.get("address")
        id_col = names.get("customer_id") or names.get("id")
        if not email_col and not id_col and df.width == 1:
            only = df.columns[0]
            values = pl.concat([pl.DataFrame({"v": [only]}), df.select(pl.col(only).cast(pl.String).alias("v"))])
            values = values.filter(pl.col("v").is_not_null())
            found_e = set(values.filter(pl.col("v").str.contains("@")).select(email_key(pl.col("v"))).to_series())
            found_i = set(values.filter(~pl.col("v").str.contains("@")).select(id_key(pl.col("v"))).to_series())
        elif email_col or id_col:
            found_e = set(df.select(email_key(pl.col(email_col))).to_series().drop_nulls()) if email_col else set()
            found_i = set(df.select(id_key(pl.col(id_col))).to_series().drop_nulls()) if id_col else set()
        else:
            raise InputError(f"{path}: a suppression list needs an `email` or a `customer_id` column; columns are: "
                             f"{', '.join(df.columns)}")
        found_e.discard("")
        found_i.discard("")
        emails |= found_e
        ids |= found_i
        files.append({"file": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                      "emails": len(found_e), "customer_ids": len(found_i)})
    return emails, ids, files


def suppress(customers: pl.DataFrame, emails: set[str], ids: set[str]) -> tuple[pl.DataFrame, int]:
    """Customers on a suppression list leave the frame before anything else sees them (segmentation, every
    model, assignment, sends, analysis). Returns the rest and how many were removed."""
    if not emails and not ids:
        return customers, 0
    hit = id_key(pl.col("customer_id")).is_in(list(ids)).fill_null(False)
    if "email" in customers.columns and emails:
        hit = hit | email_key(pl.col("email")).is_in(list(emails)).fill_null(False)
    kept = customers.filter(~hit)
    return kept, customers.height - kept.height


def read_seed_list(path: str | Path) -> pl.DataFrame:
    """Internal addresses that receive every message (never analysed): `email` and optional `first_name`."""
    df = read_table(path, "seed list")
    names = {c.strip().lower(): c for c in df.columns}
    column = names.get("email") or (df.columns[0] if df.width == 1 else None)
    if column is None:
        raise InputError(f"{path}: a seed list needs an `email` column; columns are: {', '.join(df.columns)}")
    out = df.select(pl.col(column).cast(pl.String).str.strip_chars().alias("email"),
                    (pl.col(names["first_name"]).cast(pl.String) if "first_name" in names
                     else pl.lit(None, pl.String)).alias("first_name")).filter(pl.col("email").is_not_null())
    bad = [e for e in out["email"].to_list() if not EMAIL.fullmatch(e)]
    if bad:
        raise InputError(f"{path}: {len(bad)} seed address(es) are not email addresses (first: row with "
                         f"{bad[0][:1]}***); a seed list holds internal addresses only")
    if out.is_empty():
        raise InputError(f"{path}: the seed list holds no address")
    return out.unique("email", keep="first", maintain_order=True)


def check_seeds(customers: pl.DataFrame, seed_emails: tuple[str, ...], off_emails: set[str], source) -> None:
    """A seed receives every message, so a seed address that a customer record says may not be emailed (opted
    out, or held back by address) or that a suppression list names is refused: a seed list is for internal
    addresses that agreed to receive the campaign, not a way round a customer's no."""
    if not seed_emails:
        return
    seeds = pl.DataFrame({"seed": list(seed_emails)}).with_columns(email_key(pl.col("seed")).alias("key"))
    off = set(off_emails)
    if "email" in customers.columns and "email_opt_in" in customers.columns:
        # an address no record of which may be emailed (a repeated record of an emailed address is not a no)
        by_key = customers.group_by(email_key(pl.col("email")).alias("key")).agg(
            pl.col("email_opt_in").fill_null(False).any().alias("emailed"))
        off |= set(by_key.filter(~pl.col("emailed"))["key"].drop_nulls().to_list())
    refused = seeds.filter(pl.col("key").is_in(list(off)))["seed"].to_list()
    if refused:
        raise InputError(f"seed list: {len(refused)} address(es) belong to customers in {source} who may not be "
                         f"emailed (opted out, or on a suppression list), e.g. {mask(refused[0], 'email')}; remove them "
                         "from the seed list")


def seed_ids(seeds: pl.DataFrame | None) -> list[str]:
    """The customer ids the seed addresses are sent under (seed-001 …): no customer may have one."""
    return [f"seed-{i + 1:03d}" for i in range(seeds.height if seeds is not None else 0)]


# ----------------------------------------------------------------------------------------- the control message

def control_variant(message: ControlMessage, brand: Brand) -> Variant | None:
    """The business-as-usual email as a message to screen (None when control receives no email). It cites no
    document, so every fact in it must hold for the whole approved library (the rules check it that way)."""
    if not message.email:
        return None
    return Variant(variant_id=CONTROL_ID, segment="all", slot=0, strategy="control", subject=message.subject.strip(),
                   preheader=message.preheader.strip(), body=message.body.strip() + footer(brand), citations=[],
                   generator="brand (business as usual)")


# ------------------------------------------------------------------------------------------------ rendering

def unsubscribe_urls(customer_ids: pl.Expr, run_id: str, base: str) -> pl.Expr:
    """Each recipient's own link: the brand's URL with an opaque token (the first 24 hex digits of
    SHA-256(run id, customer id)), which the brand's unsubscribe endpoint maps back through sends.csv."""
    joiner = "&" if "?" in base else "?"
    token = customer_ids.map_batches(
        lambda s: pl.Series([hashlib.sha256(f"{run_id}:{c}".encode()).hexdigest()[:24] for c in s.to_list()],
                            dtype=pl.String), return_dtype=pl.String)
    return pl.concat_str([pl.lit(f"{base}{joiner}r="), token])


def clean_field(expr: pl.Expr, fallback: str) -> pl.Expr:
    """A merge value as it may be shown: the customer's when it reads as a name (tasks.generation.NAME: letters
    of any script, spaces, hyphen, apostrophe, period, at most 40 characters; so no link, address, digit,
    markup, control character or newline), else the fallback, as for a missing value."""
    return merge_value(expr, fallback)


def merge_values_unused(recipients: pl.DataFrame, fields: list[str]) -> int:
    """How many customers (not seeds) have a value for a merge field that was not used because it does not read
    as a name: counted, never named."""
    given = [c for c in fields if c in recipients.columns]
    if not given or recipients.is_empty():
        return 0
    rows = recipients.filter(pl.col("seed") == 0) if "seed" in recipients.columns else recipients
    unused = pl.any_horizontal((merge_text(pl.col(c)).fill_null("") != "") & ~name_like(merge_text(pl.col(c)))
                               for c in given)
    return int(rows.select(unused.sum()).item())


def template_expr(template: str, fields: dict[str, pl.Expr], url: pl.Expr | None = None) -> pl.Expr:
    """`template` with each {field} replaced by its column and the unsubscribe mark by `url`, vectorised."""
    parts: list[pl.Expr] = []
    pieces = re.split(f"({re.escape(UNSUBSCRIBE_MARK)}|\\{{\\w+\\}})", template)
    for piece in pieces:
        if not piece:
            continue
        if piece == UNSUBSCRIBE_MARK:
            parts.append(url)
        elif (m := MERGE_FIELD.fullmatch(piece)) and m.group(1) in fields:
            parts.append(fields[m.group(1)])
        elif MERGE_FIELD.fullmatch(piece):
            raise InputError(f"merge field {piece} has no value and no fallback (send.merge_fallbacks)")
        else:
            parts.append(pl.lit(piece))
    return pl.concat_str(parts) if parts else pl.lit("")


def refuse_formula_addresses(df: pl.DataFrame, source: str | Path) -> None:
    """Addresses a spreadsheet would run as a formula (`=x@...`, `-x@...`): sends.csv would have to quote them,
    and the service would then write to another address. Refused before anything is written, masked; only those
    who may be emailed count."""
    if "email" not in df.columns:
        return
    risky = eligible(df) & is_formula(pl.col("email").cast(pl.String).str.strip_chars()).fill_null(False)
    bad = df.with_row_index("row", offset=1).filter(risky)
    if bad.height:
        rows = ", ".join(f"row {r} ({mask(e, 'email')})" for r, e in bad.select("row", "email").head(3).rows())
        raise InputError(f"{source}: {bad.height} email address(es) start with a character a spreadsheet runs as a "
                         f"formula (= + - @), e.g. {rows}; sends.csv would have to change them. Correct them, or "
                         "leave those customers out with --suppress")


def render_sends(assigned: pl.DataFrame, messages: dict[str, Variant], brand: Brand, fallbacks: dict[str, str],
                 run_id: str, mailto: str | None = None, seeds: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per recipient, in `assigned`'s order (the customer file's), then the seeds' messages. `assigned`
    holds customer_id, email, segment, arm, variant_id (the control message's id for control; rows without a
    message, such as control when it gets no email or the holdout, are not recipients) and the merge fields'
    columns. Seeds receive every message once (seed = 1); their ids (seed-NNN) must not be those of a customer
    in `assigned`, recipient or not."""
    for vid, v in messages.items():
        for text in (v.subject, v.preheader, v.body):
            missing = {m.group(1) for m in MERGE_FIELD.finditer(text)} - set(fallbacks)
            if missing:
                raise InputError(f"message {vid} uses merge field(s) {sorted(missing)} without a fallback "
                                 "(send.merge_fallbacks)")
        if brand.postal_address not in v.body or brand.unsubscribe_url not in v.body:
            raise SafetyGateError(f"message {vid} lacks the postal address or the unsubscribe link; nothing was "
                                  "exported")
    recipients = assigned.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_order"),
                                       pl.col("customer_id").cast(pl.String), pl.lit(0, pl.Int8).alias("seed"))
    recipients = recipients.filter(pl.col("variant_id").is_not_null() & ~pl.col("arm").is_in([HOLDOUT]))
    if seeds is not None and not seeds.is_empty():
        ids = seed_ids(seeds)
        seed_rows = [{"customer_id": ids[i], "email": e, "first_name": n, "segment": v.segment,
                      "arm": CONTROL if vid == CONTROL_ID else f"treatment_{v.slot}", "variant_id": vid, "seed": 1}
                     for vid, v in messages.items() for i, (e, n) in enumerate(seeds.select("email", "first_name").rows())]
        # every customer given, recipient or not (control without an email is measured, so its events count)
        taken = set(assigned["customer_id"].cast(pl.String).to_list()) & {r["customer_id"] for r in seed_rows}
        if taken:
            raise InputError(f"customer ids {sorted(taken)[:3]} are the seed list's own ids (seed-NNN); rename those "
                             "customers or leave out --seed-list")
        extra = pl.DataFrame(seed_rows, schema={"customer_id": pl.String, "email": pl.String, "first_name": pl.String,
                                                "segment": pl.String, "arm": pl.String, "variant_id": pl.String,
                                                "seed": pl.Int8}).with_row_index("_order", offset=assigned.height)
        extra = extra.with_columns(pl.col("_order").cast(pl.Int64))
        recipients = pl.concat([recipients, extra], how="diagonal_relaxed")
    fields = {f: clean_field(pl.col(f) if f in recipients.columns else pl.lit(None, pl.String), fb)
              for f, fb in fallbacks.items()}
    url = unsubscribe_urls(pl.col("customer_id").cast(pl.String), run_id, brand.unsubscribe_url)
    frames = []
    for vid, v in messages.items():
        rows = recipients.filter(pl.col("variant_id") == vid)
        if rows.is_empty():
            continue
        body = v.body.replace(brand.unsubscribe_url, UNSUBSCRIBE_MARK)
        frames.append(rows.with_columns(url.alias("unsubscribe_url")).with_columns(
            template_expr(v.subject, fields).alias("subject"),
            template_expr(v.preheader, fields).alias("preheader"),
            template_expr(body, fields, pl.col("unsubscribe_url")).alias("body"),
            pl.lit(v.generator).alias("generator"),
            pl.lit(0 if v.variant_id == CONTROL_ID else 1, pl.Int8).alias("ai_generated")))
    if not frames:
        return pl.DataFrame(schema=SENDS_SCHEMA)
    out = pl.concat(frames, how="vertical_relaxed")
    header = pl.concat_str([pl.lit("<"), pl.col("unsubscribe_url"), pl.lit(">")])
    if mailto:
        header = pl.concat_str([header, pl.lit(f", <mailto:{mailto}?subject=unsubscribe>")])
    out = out.with_columns(header.alias("list_unsubscribe"), pl.lit(ONE_CLICK).alias("list_unsubscribe_post"))
    left = out.filter(pl.any_horizontal(pl.col(c).str.contains(MERGE_FIELD.pattern) for c in ("subject", "preheader",
                                                                                               "body")))
    if left.height:  # a fallback or a value that itself reads as a placeholder: never send it raw
        raise SafetyGateError(f"{left.height} rendered messages still hold a merge placeholder; nothing was exported")
    refuse_formula_addresses(out, "recipients")
    formula = out.filter(pl.any_horizontal(is_formula(pl.col(c)).fill_null(False) for c in SENT_AS_IS[1:]))
    if formula.height:  # the writer would quote the text sent; the message starts with = + - @ (cpo's own text)
        raise SafetyGateError(f"{formula.height} rendered messages start a subject, preheader, body or link with a "
                              "character a spreadsheet runs as a formula (= + - @); nothing was exported")
    return out.sort("_order").select(pl.col(c).cast(t) for c, t in SENDS_SCHEMA.items())


def to_send(assigned: pl.DataFrame, control_id: str | None) -> pl.DataFrame:
    """The assigned customers who are sent something, with the message each gets: the holdout receives nothing,
    control the business-as-usual message (`control_id`; None: no email, yet measured)."""
    return assigned.filter(pl.col("arm") != HOLDOUT).with_columns(
        pl.when(pl.col("arm") == CONTROL).then(pl.lit(control_id, pl.String)).otherwise(pl.col("variant_id"))
        .alias("variant_id"))


def seeds_sent(sends: pl.DataFrame) -> pl.DataFrame:
    """Who was sent what among the seeds (one row per address), to recognise their events when outcomes come back."""
    return (sends.filter(pl.col("seed") == 1).unique("email", keep="first", maintain_order=True)
            .select("customer_id", "email", "segment", "arm", "variant_id", "seed"))
