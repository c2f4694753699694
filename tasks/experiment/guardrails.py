"""Guardrails and the winner: an arm that raises unsubscribes or complaints significantly cannot win.

A guardrail is a harm rate (unsubscribed, complained). Each treatment arm is tested against control with
Fisher's exact test, one-sided (H1: the treatment's rate is higher), per segment and over all customers, at the
experiment's alpha and without a multiplicity correction: a guardrail should rather stop a harmless arm than
let a harmful one through, and rare events (complaints are often under 0.1%) need an exact test.

The winner of a segment is the treatment arm with the largest significant lift on the sealed primary metric
(Holm/BH-adjusted, as results.csv says) that no guardrail stops (see `flags`); otherwise control.
"""
from __future__ import annotations

import math

import polars as pl
from scipy.stats import fisher_exact

from tasks.experiment.analysis import ALL

GUARDRAIL_COLUMNS = ["metric", "segment", "arm", "control_arm", "n_treatment", "n_control", "rate_treatment",
                     "rate_control", "abs_lift", "p_value_one_sided", "flagged"]


def guardrail_table(df: pl.DataFrame, guardrails: list[str], control: str, alpha: float,
                    segment: str | None = "segment") -> pl.DataFrame:
    """One row per guardrail × segment (and `all`) × treatment arm."""
    present = [g for g in guardrails if g in df.columns]
    rows = []
    groups = [(ALL, df)]
    if segment and segment in df.columns:
        groups += sorted(((str(k[0]), g) for k, g in df.group_by(segment)), key=lambda x: x[0])
    for metric in present:
        for name, frame in groups:
            counts = (frame.group_by("arm").agg(pl.len().alias("n"), pl.col(metric).fill_null(0).clip(0, 1).sum()
                                                .alias("events")))
            by_arm = {r["arm"]: (r["n"], int(r["events"])) for r in counts.iter_rows(named=True)}
            if control not in by_arm:
                continue
            n_c, e_c = by_arm[control]
            for arm in sorted(a for a in by_arm if a != control):
                n_t, e_t = by_arm[arm]
                p = float(fisher_exact([[e_t, n_t - e_t], [e_c, n_c - e_c]], alternative="greater").pvalue) \
                    if n_t and n_c else math.nan
                rate_t, rate_c = e_t / n_t if n_t else math.nan, e_c / n_c if n_c else math.nan
                rows.append({"metric": metric, "segment": name, "arm": arm, "control_arm": control,
                             "n_treatment": n_t, "n_control": n_c, "rate_treatment": rate_t, "rate_control": rate_c,
                             "abs_lift": rate_t - rate_c, "p_value_one_sided": p,
                             "flagged": bool(p < alpha) if not math.isnan(p) else False})
    schema = {"metric": pl.String, "segment": pl.String, "arm": pl.String, "control_arm": pl.String,
              "n_treatment": pl.Int64, "n_control": pl.Int64, "rate_treatment": pl.Float64,
              "rate_control": pl.Float64, "abs_lift": pl.Float64, "p_value_one_sided": pl.Float64,
              "flagged": pl.Boolean}
    return pl.DataFrame(rows, schema=schema).select(GUARDRAIL_COLUMNS)


def flags(guardrails: pl.DataFrame, segment: str, arm: str) -> list[str]:
    """The guardrails that stop `arm` in `segment`: flagged in the segment, or flagged over all customers while
    the segment's own rate is above control's too. (A segment's treatment_k is that segment's own message; the
    pooled test has the power a small segment lacks, and a segment whose own data points the other way is not
    vetoed by the others'.)"""
    if guardrails.is_empty():
        return []
    own = guardrails.filter((pl.col("arm") == arm) & (pl.col("segment") == segment))
    pooled = {r["metric"] for r in guardrails.filter((pl.col("arm") == arm) & (pl.col("segment") == ALL)
                                                     & pl.col("flagged")).iter_rows(named=True)}
    return sorted({r["metric"] for r in own.iter_rows(named=True)
                   if r["flagged"] or (r["metric"] in pooled and r["abs_lift"] > 0)})


def winners(results: pl.DataFrame, guardrails: pl.DataFrame, primary: str, control: str,
            segments: list[str]) -> list[dict]:
    """Per segment: the winning arm on the primary metric, or control, and why."""
    out = []
    for seg in segments:
        rows = results.filter((pl.col("metric") == primary) & (pl.col("segment") == seg) & (pl.col("arm") != control))
        candidates = []
        for r in rows.iter_rows(named=True):
            if not (r["significant"] and r["abs_lift"] > 0):
                continue
            stopped = flags(guardrails, seg, r["arm"])
            candidates.append((r, stopped))
        clean = [(r, s) for r, s in candidates if not s]
        if clean:
            best = max(clean, key=lambda x: x[0]["abs_lift"])[0]
            lift = (f"by {best['rel_lift']:+.1%}" if math.isfinite(best["rel_lift"])
                    else f"from {best['rate_control']:.2%} to {best['rate_treatment']:.2%}")
            why = f"{best['arm']} raised {primary} {lift} (adjusted p {best['p_value_adjusted']:.3g}) and no guardrail flagged it"
            out.append({"segment": seg, "arm": best["arm"], "rel_lift": best["rel_lift"],
                        "rel_lift_ci_low": best["rel_lift_ci_low"], "rel_lift_ci_high": best["rel_lift_ci_high"],
                        "reason": why})
            continue
        if candidates:
            why = "; ".join(f"{r['arm']} won on {primary} but raised {', '.join(s)}" for r, s in candidates)
        else:
            why = f"no treatment arm raised {primary} significantly"
        out.append({"segment": seg, "arm": control, "rel_lift": 0.0, "rel_lift_ci_low": math.nan,
                    "rel_lift_ci_high": math.nan, "reason": f"{why}: control's message stays"})
    return out
