"""The report's explanation sections: drivers with their Qini, lift by attribute, variant factors, targeting."""
from __future__ import annotations

import polars as pl

from tasks.report import Bullets, Callout, Chart, Paragraph, Section, Table, bar_chart, fmt, line_chart


def drivers_section(expl) -> Section:
    section = Section("What drives the effect", [Paragraph(
        "Per arm and metric, a cross-fitted R-learner (gradient boosting; Nie & Wager 2021) estimates each customer's "
        "effect after removing what drives the outcome in every arm; an attribute's importance is how far the estimated "
        f"effect moves when that attribute is shuffled on held-out customers. Models were fitted on {expl.n_fit:,} of "
        f"{expl.n_total:,} rows (seeded subsample). The Qini coefficient compares targeting by the model with random "
        "targeting on held-out customers; only a model whose Qini beats random (permutation p < 0.05, up to 199 random "
        "rankings, stopping early once 10 of them beat the model) is called reliable. Only attributes known before the "
        "send are used; the excluded columns and why are listed below.")])
    section.blocks.append(excluded_table(expl))
    if expl.attribution.is_empty():
        section.blocks.append(Paragraph("Not enough customers per arm to fit effect models."))
        return section
    rows, reliable_pairs = [], []
    for (metric, arm), g in expl.attribution.group_by(["metric", "arm"], maintain_order=True):
        top = g.sort("rank").head(3)["feature"].to_list()
        q = expl.qini[(metric, arm)]
        verdict = "reliable" if q.reliable else "no reliable driver (Qini ≈ random)"
        rows.append([metric, arm, ", ".join(top), f"{q.coefficient:.3g}", fmt(q.p_value, "p"), verdict])
        if q.reliable:
            reliable_pairs.append((metric, arm, g))
    if not reliable_pairs:
        section.blocks.append(Callout("No reliable driver was found.", "For every arm and metric the effect model "
                                      "ranks customers no better than random targeting, so the attribute ranking below "
                                      "is noise and should not be acted on.", "alert"))
    section.blocks.append(Table(["metric", "arm", "top drivers (rank 1 first)", "Qini", "Qini p", "verdict"], rows))
    for metric, arm, g in reliable_pairs[:6]:
        bars = [(r["feature"], r["importance"]) for r in g.sort("rank").head(8).to_dicts()]
        section.blocks.append(Chart(bar_chart(bars), f"{arm}, {metric}: attribute importance (reliable model)"))
    curves = [(f"{arm} · {metric}", [float(v) for v in q.curve]) for (metric, arm), q in list(expl.qini.items())[:6]]
    section.blocks.append(Chart(line_chart(curves), "Qini curves: incremental outcomes (y) when targeting the top "
                                                    "share of customers (x) by the model (blue) vs random targeting "
                                                    "(dashed)"))
    return section


def excluded_table(expl) -> Table | Paragraph:
    excluded = getattr(expl, "excluded", {}) or {}
    if not excluded:
        return Paragraph("Excluded columns: none.")
    return Table(["Excluded columns", "why"], [[c, why] for c, why in excluded.items()])


def buckets_section(buckets: pl.DataFrame) -> Section:
    section = Section("Lift by attribute", [Paragraph(
        "The transparent view, on every row: lift per attribute bucket (quartiles for numbers, levels for categories, "
        f"missing as its own bucket), p-values corrected together over all {buckets.height} bucket comparisons (the "
        "family 'attribute buckets', separate from the headline).")])
    if buckets.is_empty():
        return section
    shown = buckets.filter(pl.col("significant")).sort("p_value_adjusted")
    if shown.is_empty():
        section.blocks.append(Paragraph("No bucket's lift differs from zero after correction; the strongest (lowest "
                                        "raw p) were:"))
        shown = buckets.sort("p_value")
    section.blocks.append(Table(
        ["attribute", "bucket", "metric", "arm", "n (t)", "n (c)", "rel lift", "95% CI", "p adj.", "significant"],
        [[r["feature"], r["bucket"], r["metric"], r["arm"], r["n_treatment"], r["n_control"], fmt(r["rel_lift"], "pct"),
          f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]", fmt(r["p_value_adjusted"], "p"),
          fmt(r["significant"])] for r in shown.head(15).to_dicts()]))
    return section


def factors_section(factors: pl.DataFrame) -> Section:
    section = Section("Variant factors", [Paragraph(
        "Which strategy, offer type and cited document go with higher lift: each variant's per-segment lift, pooled "
        "per factor level with inverse-variance weights (fixed-effect). Associations across few variants, not causal.")])
    if factors.is_empty():
        section.blocks.append(Paragraph("No variant-level lift could be estimated."))
        return section
    section.blocks.append(Table(["metric", "factor", "level", "variants", "rel lift", "95% CI"],
                                [[r["metric"], r["factor"], r["level"], r["variants"], fmt(r["rel_lift"], "pct"),
                                  f"[{fmt(r['ci_low'], 'pct')}, {fmt(r['ci_high'], 'pct')}]"] for r in factors.to_dicts()
                                 if r["factor"] != "cited_document" or r["variants"] >= 2]))
    return section


def recommendation_section(targeting: dict) -> Section:
    section = Section("Recommendation: whom to send what", [])
    if not targeting:
        section.blocks.append(Paragraph("Too few customers per arm to learn a targeting policy."))
        return section
    metric, best = targeting["metric"], targeting["best_single_arm"]
    per_k = 1000 * targeting["gain"]
    lo, hi = 1000 * targeting["gain_ci_low"], 1000 * targeting["gain_ci_high"]
    if targeting["gain_ci_low"] > 0:
        verdict = (f"Targeting beats sending {best} to everyone: about {per_k:+.1f} more '{metric}' per 1,000 customers "
                   f"(95% CI {lo:+.1f} to {hi:+.1f}), measured on held-out customers.")
    else:
        verdict = (f"There is no evidence that targeting beats sending the best single arm ({best}) to everyone: "
                   f"{per_k:+.1f} '{metric}' per 1,000 customers (95% CI {lo:+.1f} to {hi:+.1f}). Send {best} to all, "
                   "or collect more data before targeting.")
    section.blocks += [Paragraph(verdict),
                       Paragraph("The learned policy, described by a shallow tree (an approximation, for reading):"),
                       Bullets(list(targeting["rules"]))]
    return section


def explanation_sections(expl, factors: pl.DataFrame | None = None) -> list[Section]:
    sections = [drivers_section(expl), buckets_section(expl.buckets)]
    if factors is not None:
        sections.append(factors_section(factors))
    return sections + [recommendation_section(expl.targeting)]
