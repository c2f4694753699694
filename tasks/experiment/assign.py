"""Assignment: deterministic, hash-based, stratified by segment.

Each customer's position u in [0, 1) is SHA-256(seed:campaign:customer_id). Arms own fixed slices of [0, 1)
within each segment, so a re-run with the same seed gives the same arms and adding customers moves nobody.
"""
from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from tasks.errors import InputError

CONTROL, HOLDOUT = "control", "holdout"


def treatment_arm(slot: int) -> str:
    return f"treatment_{slot}"


def hash_unit(ids, seed: int, salt: str) -> np.ndarray:
    """A uniform number in [0, 1) per id from the first 52 bits of SHA-256(seed:salt:id) (exact in a float64).

    `ids` is a list of strings or a polars Series. The digests come from hashlib in one pass over the ids'
    UTF-8 bytes (taken from polars' buffers), joined into one buffer and cut with numpy; the same bits as
    `int.from_bytes(sha256(...).digest()[:7], "big") >> 4` per id (tests/experiment/test_assign.py checks it)."""
    prefix = f"{seed}:{salt}:".encode()
    raw = (ids if isinstance(ids, pl.Series) else pl.Series(ids, dtype=pl.String)).cast(pl.String).cast(pl.Binary)
    if raw.len() == 0:
        return np.zeros(0, dtype=np.float64)
    sha = hashlib.sha256
    digests = b"".join([sha(prefix + b).digest() for b in raw.to_list()])
    head = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 32)[:, :8].copy().view(">u8").ravel()
    return (head >> np.uint64(12)).astype(np.float64) / float(1 << 52)


def arm_weights(slots: list[int], control_weight: float, configured: dict[str, float] | None = None) -> dict[str, float]:
    """Control keeps its weight; the treatments share the rest evenly, or in the configured proportions
    (renormalised over the arms this segment has)."""
    if not slots:
        return {CONTROL: 1.0}
    arms = [treatment_arm(s) for s in sorted(slots)]
    raw = {a: (configured or {}).get(a, 1.0) for a in arms}
    total = sum(raw.values())
    return {CONTROL: control_weight, **{a: (1 - control_weight) * w / total for a, w in raw.items()}}


def pick_arms(u: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    names = list(weights)
    edges = np.cumsum([weights[n] for n in names])
    return np.array(names, dtype=object)[np.minimum(np.searchsorted(edges, u, side="right"), len(names) - 1)]


def eligible(customers: pl.DataFrame) -> pl.Expr:
    """Who may be emailed: opted in (when the file says) and with an email address (when it has emails)."""
    ok = pl.lit(True)
    if "email_opt_in" in customers.columns:
        ok = ok & pl.col("email_opt_in").fill_null(False)
    if "email" in customers.columns:
        ok = ok & pl.col("email").is_not_null() & (pl.col("email").cast(pl.String).str.strip_chars() != "")
    return ok


def assign(customers: pl.DataFrame, passed: dict[str, dict[int, str]], control_weight: float, seed: int,
           salt: str, holdout_weight: float = 0.0,
           treatment_weights: dict[str, float] | None = None) -> tuple[pl.DataFrame, dict[str, dict[str, float]]]:
    """Arms for eligible customers. `passed` maps segment -> {slot: variant_id} of variants that passed.

    Returns the assignments (customer_id, segment, arm, variant_id) and the intended weights per segment.
    A segment whose slot has no passed variant simply has fewer arms; its weights say so (for the SRM test).
    """
    pool = customers.filter(eligible(customers)).select("customer_id", "segment")
    weights = {segment: arm_weights(list(passed.get(segment, {})), control_weight, treatment_weights)
               for segment in sorted(set(pool["segment"].to_list()))}
    return assign_arms_with(pool, passed, weights, seed, salt, holdout_weight), weights


def assign_arms_with(pool: pl.DataFrame, passed: dict[str, dict[int, str]], weights: dict[str, dict[str, float]],
                     seed: int, salt: str, holdout_weight: float = 0.0) -> pl.DataFrame:
    """Arms for `pool` (customer_id, segment) under given weights per segment: each customer's arm depends on
    its own id and segment only, so any partition of the customers gets the same arms."""
    u = hash_unit(pool["customer_id"], seed, salt)
    held = u < holdout_weight
    u = (u - holdout_weight) / (1 - holdout_weight)  # rescale the rest back onto [0, 1)
    segments = pool["segment"].to_numpy()
    names = [HOLDOUT] + sorted({a for w in weights.values() for a in w})
    code = np.zeros(pool.height, dtype=np.int32)  # index into names; 0 = holdout
    for segment, w in weights.items():
        rows = (segments == segment) & ~held
        if rows.any():
            picked = pick_index(u[rows], w)
            code[rows] = np.array([names.index(a) for a in w], dtype=np.int32)[picked]
    variant_of = {(s, treatment_arm(slot)): vid for s, slots in passed.items() for slot, vid in slots.items()}
    arm = pl.Series("arm", names, dtype=pl.String).gather(code)
    out = pool.with_columns(arm)
    lookup = pl.DataFrame({"segment": [k[0] for k in variant_of], "arm": [k[1] for k in variant_of],
                           "variant_id": list(variant_of.values())},
                          schema={"segment": pool.schema["segment"], "arm": pl.String, "variant_id": pl.String})
    return out.join(lookup, on=["segment", "arm"], how="left", maintain_order="left")


def pick_index(u: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    edges = np.cumsum(list(weights.values()))
    return np.minimum(np.searchsorted(edges, u, side="right"), len(weights) - 1)


def unscreened_sends(assignments: pl.DataFrame, passed: dict[str, dict[int, str]]) -> int:
    """Customers holding a variant that did not pass screening: must be zero before anything is sent."""
    allowed = [vid for slots in passed.values() for vid in slots.values()]
    return assignments.filter(pl.col("variant_id").is_not_null() & ~pl.col("variant_id").is_in(allowed)).height


def eligibility(customers: pl.DataFrame) -> dict:
    """How many customers may be emailed, of how many, and why the others may not (None: the file cannot say)."""
    no_address = pl.col("email").is_null() | (pl.col("email").cast(pl.String).str.strip_chars() == "")
    return {"eligible": customers.select(eligible(customers).sum()).item(), "customers": customers.height,
            "not_opted_in": customers.select((~pl.col("email_opt_in").fill_null(False)).sum()).item()
            if "email_opt_in" in customers.columns else None,
            "no_address": customers.select(no_address.sum()).item() if "email" in customers.columns else None}


def check_eligible(customers: pl.DataFrame, source: str, minimum: int) -> int:
    """Stop before anything is written when too few customers may be emailed; say why they may not."""
    return check_eligibility(eligibility(customers), source, minimum)


def check_eligibility(counts: dict, source: str, minimum: int) -> int:
    """check_eligible from the counts of `eligibility`."""
    n = counts["eligible"]
    if n >= minimum:
        return n
    why = [f"{counts['not_opted_in']} have not opted in"] if counts["not_opted_in"] is not None else []
    why += [f"{counts['no_address']} have no email address"] if counts["no_address"] is not None else []
    raise InputError(f"{source}: only {n} of {counts['customers']} customers may be emailed "
                     f"({'; '.join(why) or 'no reason known'}); the experiment needs at least {minimum} "
                     f"(experiment.min_eligible_customers)")
