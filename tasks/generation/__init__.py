"""Generation: variants (subject + body) per segment, every fact quoted from and citing approved content.

One interface, backends chosen by settings. Whatever the backend writes, the brand footer (unsubscribe
link, postal address) is added here, in code, so no model can forget it.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

import polars as pl

from config import Brand
from tasks.records import Document, SegmentProfile, Variant

MERGE_FIELD = re.compile(r"\{(\w+)\}")
MERGE_FALLBACK = {"first_name": "there"}
MAX_NAME = 40
# A merge value is pasted into screened copy only when it reads as a name: a letter of any script first, then
# letters (with their combining marks), spaces, hyphens, apostrophes and periods, at most MAX_NAME characters,
# and no period before two letters (a domain such as evil.example). A link, an address, digits, markup, a
# newline or a sentence with punctuation gets the fallback, as a missing value does.
NAME = r"^\p{L}[\p{L}\p{M} '’.\-]*$"
DOMAIN_LIKE = r"\.\s*\p{L}{2}|\p{L}{2}\.\p{L}"
MAX_NAME_WORDS = 3
# letters drawn to look like others (small capitals, IPA: "ᴠɪsɪᴛ") and stacked combining marks (zalgo)
NOT_LETTERS = r"[\x{0250}-\x{02AF}\x{1D00}-\x{1DBF}]|\p{Latin}\p{Mn}{2,}|\p{Mn}{3,}"


@lru_cache(maxsize=1)
def not_names() -> str:
    """A regex of the words that are not names (config/merge_fields.yaml), matched as whole words."""
    import yaml

    from config import CONFIG_DIR

    words = yaml.safe_load((CONFIG_DIR / "merge_fields.yaml").read_text("utf-8"))["not_names"]
    return r"(?i)(?:^|[\s.\-])(?:" + "|".join(sorted(map(re.escape, map(str, words)), key=len, reverse=True)) + \
        r")(?:$|[\s.\-])"


class Generator(Protocol):
    name: str

    def generate(self, profile: SegmentProfile, documents: list[Document], strategy: str, slot: int,
                 attempt: int, avoid: set[str]) -> Variant:
        """One variant for `profile` in `strategy`, built only from `documents`; `avoid` lists document
        ids whose copy was blocked in an earlier attempt of this slot."""
        ...


def footer(brand: Brand) -> str:
    return (f"\n\n{brand.signature or brand.company_name}\n{brand.postal_address}\n"
            f"You receive this email because you opted in to news from {brand.company_name}. "
            f"Unsubscribe at any time: {brand.unsubscribe_url}")


def variant_id(segment: str, slot: int, strategy: str) -> str:
    return f"{segment}.t{slot}.{strategy}"


def merge_text(expr: pl.Expr) -> pl.Expr:
    """A merge value as text: any space (a no-break space from a spreadsheet) a space, trimmed, runs made one."""
    return (expr.cast(pl.String).str.normalize("NFC").str.replace_all(r"\p{Zs}", " ").str.strip_chars()
            .str.replace_all(" {2,}", " "))


def name_like(text: pl.Expr) -> pl.Expr:
    """Whether a merge value (merge_text) may be used: it reads as a name (NAME, DOMAIN_LIKE, MAX_NAME)."""
    return (text.str.contains(NAME) & ~text.str.contains(DOMAIN_LIKE) & ~text.str.contains(NOT_LETTERS)
            & ~text.str.contains(not_names()) & (text.str.count_matches(" ") < MAX_NAME_WORDS)
            & (text.str.len_chars() <= MAX_NAME)).fill_null(False)


def merge_value(expr: pl.Expr, fallback: str) -> pl.Expr:
    """The value a message shows for a merge field: the customer's when it reads as a name, else `fallback`."""
    text = merge_text(expr)
    return pl.when(name_like(text)).then(text).otherwise(pl.lit(fallback, pl.String))


def render(text: str, customer: dict) -> str:
    """Fill merge fields such as {first_name} for one customer: the value when it reads as a name, else a
    neutral fallback (as when the value is missing)."""
    def fill(m: re.Match) -> str:
        fallback = MERGE_FALLBACK.get(m.group(1), m.group(0))
        return pl.select(merge_value(pl.lit(customer.get(m.group(1)), pl.String), fallback)).item()
    return MERGE_FIELD.sub(fill, text)


def make_generator(kind: str, brand: Brand, subject_max_chars: int, policy=None):
    """`policy` (the run's screening policy) lets a model-backed generator pre-check drafts with it."""
    if kind == "local":
        from tasks.generation.local import LocalGenerator
        return LocalGenerator(brand, subject_max_chars)
    if kind in ("openai", "azure-openai"):
        from tasks.generation.openai import OpenAIGenerator  # lazy: the SDK loads only when chosen
        return OpenAIGenerator.from_env(kind, brand, subject_max_chars, policy=policy)
    raise ValueError(f"unknown generator {kind!r}")


def first_strategies(strategies: list[str], n: int) -> dict[int, str]:
    """Slot k starts with the k-th strategy of the preference list."""
    return {slot: strategies[slot - 1] for slot in range(1, n + 1)}


def next_strategy(strategies: list[str], used: set[str]) -> str | None:
    """The next strategy not yet tried in this segment (a blocked slot is regenerated with it)."""
    return next((s for s in strategies if s not in used), None)
