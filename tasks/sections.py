"""What the report says: sections built from a run's results, shared by `cpo run` and `cpo analyze`."""
from __future__ import annotations

import polars as pl

from tasks.explain.report import explanation_sections
from tasks.report import Chart, Section, Table, fmt, forest_chart
from tasks.safety.audit import read_rows

SIMULATED = ("> **SIMULATED DATA.** Engagement in this report was simulated from the documented assumptions below; "
             "no email was sent and no lift here was observed. Use it to check the pipeline and the design, "
             "not to claim impact.")


def srm_blocks(srm: list[dict]) -> list:
    fired = [c for c in srm if c["mismatch"]]
    blocks = []
    if fired:
        names = ", ".join(f"{c['segment']} (p={fmt(c['p_value'], 'p')})" for c in fired)
        blocks.append(f"> **ALERT: sample-ratio mismatch** in {names}. Arm sizes differ from the design more than "
                      "chance allows; the assignment or the data export is broken, and the lifts below are not trustworthy.")
    rows = [[c["segment"], " / ".join(c["arms"]), " / ".join(map(str, c["observed"])),
             " / ".join(f"{e:g}" for e in c["expected"]), fmt(c["p_value"], "p"), "MISMATCH" if c["mismatch"] else "ok"]
            for c in srm]
    note = " Intended weights were not given, so equal weights were assumed." if srm and srm[0]["weights_assumed"] else ""
    blocks.append("Sample-ratio check: Pearson chi-square of arm sizes against the intended weights, flagged at "
                  f"p < 0.001.{note}")
    blocks.append(Table(["segment", "arms", "observed", "expected", "p", "status"], rows))
    return blocks


def lift_rows_for(results: pl.DataFrame, segment: str = "all") -> list[list]:
    out = []
    for r in results.filter(pl.col("segment") == segment).to_dicts():
        rate = "rate" if r["metric_type"] == "binary" else ""
        out.append([r["metric"], r["arm"], r["n_treatment"], r["n_control"], fmt(r["rate_treatment"], rate),
                    fmt(r["rate_control"], rate), fmt(r["abs_lift"]), fmt(r["rel_lift"], "pct"),
                    f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]",
                    fmt(r["p_value"], "p"), fmt(r["p_value_adjusted"], "p"), fmt(r["significant"]),
                    fmt(r["mde_rel"], "pct").lstrip("+"), NOTES.get(r["note"], r["note"] or "")])
    return out


NOTES = {"few_events": "few events: CI unreliable", "zero_baseline": "control mean is 0",
         "zero_variance": "no variation", "empty_arm": "empty arm", "insufficient_n": "n < 2"}
LIFT_HEADERS = ["metric", "arm", "n (t)", "n (c)", "treatment", "control", "abs lift", "rel lift", "95% CI (rel)",
                "p", "p adj.", "significant", "MDE (80% power)", "note"]


def experiment_sections(results: pl.DataFrame, srm: list[dict], explanation, alpha: float, correction: str,
                        factors: pl.DataFrame | None = None) -> list[Section]:
    method = {"holm": "Holm", "bh": "Benjamini–Hochberg"}[correction]
    overall = Section("Results: all customers", srm_blocks(srm) + [
        f"Per metric and arm against control. Relative lift = (treatment − control) / control with a delta-method "
        f"{int((1 - alpha) * 100)}% CI (Welch–Satterthwaite degrees of freedom); p-values two-sided, adjusted with "
        f"{method} over the whole family of {results.height} comparisons (arms × metrics × segments). MDE = the "
        "smallest relative lift this sample detects with 80% power.",
        Table(LIFT_HEADERS, lift_rows_for(results))])
    for metric in results["metric"].unique(maintain_order=True).to_list():
        rows = [{"label": f"{r['arm']} · {r['segment']}", "rel_lift": r["rel_lift"], "lo": r["rel_lift_ci_low"],
                 "hi": r["rel_lift_ci_high"], "significant": r["significant"]}
                for r in results.filter(pl.col("metric") == metric).to_dicts()]
        overall.blocks.append(Chart(forest_chart(rows), f"{metric}: relative lift with CI, overall and per segment"))
    segments = [s for s in results["segment"].unique(maintain_order=True).to_list() if s != "all"]
    per_segment = Section("Results by segment", [])
    for s in segments:
        per_segment.blocks += [f"**{s}**", Table(LIFT_HEADERS, lift_rows_for(results, s))]
    return ([overall, cuped_section(results)] + ([per_segment] if segments else [])
            + explanation_sections(explanation, factors))


def cuped_section(results: pl.DataFrame) -> Section:
    rows = [[r["metric"], r["arm"], fmt(r["rel_lift"], "pct"),
             f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]",
             fmt(r["cuped_rel_lift"], "pct"), f"[{fmt(r['cuped_ci_low'], 'pct')}, {fmt(r['cuped_ci_high'], 'pct')}]",
             fmt(r["variance_reduction"], "rate"), fmt(r["chance_to_beat_control"], "rate")]
            for r in results.filter(pl.col("segment") == "all").to_dicts()]
    return Section("Variance reduction (CUPED) and a Bayesian view", [
        "CUPED (Deng et al. 2013) adjusts each metric by a pre-period covariate measured before the send; it "
        "narrows the interval without moving the expected lift. The plain estimate above stays the primary "
        "result. 'Chance to beat control' is a BAYESIAN VIEW (flat prior, normal approximation), not a p-value.",
        Table(["metric", "arm", "rel lift", "95% CI", "CUPED rel lift", "CUPED 95% CI", "variance reduction",
               "chance to beat control"], rows)])


def design_section(design: list[dict], target_lift: float, power: float) -> Section:
    """What the experiment can detect, known before anything is sent."""
    blind = [d for d in design if d["detectable"] is False]
    blocks = []
    if blind:
        worst = max(blind, key=lambda d: d["mde_rel"])
        blocks.append(f"> **WARNING: this campaign is too small** to detect the hoped-for lift of {target_lift:.0%} in "
                      f"{len(blind)} of {len(design)} arm × metric comparisons (e.g. {worst['arm']} on {worst['metric']} "
                      f"can only detect {worst['mde_rel']:.0%}). A non-significant result here means 'not measurable "
                      "at this size', not 'no effect'.")
    blocks.append(f"Minimum detectable relative lift per arm at {power:.0%} power, from baselines known before the send "
                  "(customers' historical open and click rates).")
    blocks.append(Table(["arm", "metric", "n (t)", "n (c)", "baseline", "MDE", f"detects {target_lift:.0%}?"],
                        [[d["arm"], d["metric"], d["n_treatment"], d["n_control"], fmt(d["baseline"], "rate"),
                          fmt(d["mde_rel"], "pct").lstrip("+"), fmt(d["detectable"])] for d in design]))
    return Section("Design power", blocks)


def truth_section(results: pl.DataFrame, truth: dict) -> Section:
    rows = []
    for r in results.filter(pl.col("segment") == "all").to_dicts():
        true = truth.get(r["arm"], {}).get(r["metric"])
        if true is None:
            continue
        covered = r["rel_lift_ci_low"] <= true <= r["rel_lift_ci_high"]
        rows.append([r["metric"], r["arm"], fmt(true, "pct"), fmt(r["rel_lift"], "pct"),
                     f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]", fmt(covered)])
    return Section("Check against the simulator's truth", [
        "The simulator knows each arm's expected lift; a trustworthy analysis covers it with its interval about 95% "
        "of the time.", Table(["metric", "arm", "true rel. lift", "estimate", "95% CI", "covered"], rows)])


def audit_summary(variants, audit_path) -> list[dict]:
    rows = read_rows(audit_path)
    by_rule: dict[str, int] = {}
    for r in rows:
        for rule in filter(None, r["rules_triggered"].split(";")):
            by_rule[rule] = by_rule.get(rule, 0) + 1
    summary = [{"item": "decisions", "count": len(rows)},
               {"item": "pass", "count": sum(r["decision"] == "pass" for r in rows)},
               {"item": "block", "count": sum(r["decision"] == "block" for r in rows)}]
    for cat in ("hate", "self_harm", "sexual", "violence"):
        summary.append({"item": f"{cat} >= 4", "count": sum(int(r[cat]) >= 4 for r in rows)})
    return summary + [{"item": f"rule {k}", "count": v} for k, v in sorted(by_rule.items())]


def campaign_report(facts: dict, results: pl.DataFrame, srm: list[dict], explanation, factors: pl.DataFrame,
                    exp) -> tuple[str, list[Section]]:
    variants, assignments = facts["variants"], facts["assignments"]
    passed = [v for v in variants if v.status == "passed"]
    arms = assignments.group_by("arm").len().sort("arm")
    title = f"Campaign report — {facts['run_id']}"
    blind = [d for d in facts["design"] if d["detectable"] is False]
    power_note = ([f"This design cannot detect the hoped-for {exp.target_lift:.0%} lift in {len(blind)} of "
                   f"{len(facts['design'])} arm × metric comparisons (see Design power)."] if blind else [])
    headline = Section("Headline", [SIMULATED, *headline_lines(results, exp.alpha), *power_note])
    design = Section("Design", [
        f"{facts['customers']} customers in {len(facts['profiles'])} segments; "
        f"{assignments.height} eligible for email (opted in, with an address); "
        f"{facts['customers'] - assignments.height} excluded (opted out or no address) and never assigned.",
        f"Arms: {', '.join(f'{a} ({n})' for a, n in arms.iter_rows())}. Assignment is SHA-256 hash-based on "
        "the customer id, seeded, stratified by segment: each segment's treatment_k sends that segment's k-th variant.",
        consent_line(facts["consent"]),
        f"Backends: {', '.join(f'{k}={v}' for k, v in facts['backends'].items())}. "
        f"Screening policy {facts['policy_version']}.",
        *privacy_lines(facts["personal"], facts["cuped_skipped"]),
        Table(["segment", "customers", "share", "profile", "content retrieved"],
              [[p.name, p.size, f"{p.share:.0%}", p.description, ", ".join(h.document_id for h in facts["hits"][p.name][:4])]
               for p in facts["profiles"]])])
    screening = Section("Variants and screening", [
        f"{len(variants)} variants screened, {len(passed)} passed, {len(variants) - len(passed)} blocked: "
        f"pass rate {len(passed) / max(1, len(variants)):.1%}. Every decision is in audit_log.csv (hash-chained); "
        "blocked variants were regenerated with another strategy and never reached a customer.",
        Table(["variant", "strategy", "subject", "cites", "status", "attempt"],
              [[v.variant_id, v.strategy, v.subject, ", ".join(v.citations), v.status, v.attempt] for v in variants])])
    sim = facts["simulation"]
    assumptions = Section("Simulation assumptions", [
        "Baseline: each customer's own historical open and click rates; "
        f"P(convert | click) = {sim.convert_given_click}. Any treatment: {sim.personalization_lift}. "
        "Planted effects (strategy × attribute):",
        Table(["strategy", "metric", "attribute", "condition", "relative lift"],
              [[e.strategy, e.metric, e.attribute, f"{e.op} {e.value}", fmt(e.rel_lift, "pct")] for e in sim.effects])])
    timing = Section("Seconds per stage", [Table(["stage", "seconds"], [[k, f"{v:.2f}"] for k, v in facts["seconds"].items()])])
    power = design_section(facts["design"], exp.target_lift, exp.power)
    declared = [Section("Declared by the operator", facts["declarations"])] if facts["declarations"] else []
    sections = declared + [headline, design, power, screening] + experiment_sections(results, srm, explanation, exp.alpha, exp.correction, factors)
    return title, sections + [truth_section(results, facts["truth"]), assumptions, timing]


def consent_line(consent: dict) -> str:
    if consent.get("basis"):
        return f"Consent: DECLARED for the whole file by the operator (\"{consent['basis']}\"), not read from a column."
    return f"Consent: read from column '{consent['column']}' ({consent['rule']}); only opted-in customers were assigned."


def privacy_lines(personal: dict[str, str], cuped_skipped: dict[str, str]) -> list[str]:
    lines = []
    if personal:
        lines.append("Personal data, never used as a model feature or shown in a table: "
                     + ", ".join(f"{c} ({k})" for c, k in personal.items()) + ".")
    if cuped_skipped:
        lines.append("CUPED not applied for " + ", ".join(f"{m} (column {c} is not in the customer file)"
                                                          for m, c in cuped_skipped.items()) + ".")
    return lines


def headline_lines(results: pl.DataFrame, alpha: float) -> list[str]:
    lines = []
    overall = results.filter((pl.col("segment") == "all") & pl.col("rel_lift").is_not_nan())
    for metric in overall["metric"].unique(maintain_order=True).to_list():
        best = overall.filter(pl.col("metric") == metric).sort("rel_lift", descending=True).row(0, named=True)
        verdict = "significant" if best["significant"] else "not significant"
        caveat = "; too few events, the interval is unreliable" if best["note"] == "few_events" else ""
        lines.append(f"- **{metric}**: best arm {best['arm']} {fmt(best['rel_lift'], 'pct')} "
                     f"(95% CI {fmt(best['rel_lift_ci_low'], 'pct')} to {fmt(best['rel_lift_ci_high'], 'pct')}, "
                     f"adjusted p {fmt(best['p_value_adjusted'], 'p')}, {verdict} at α={alpha}{caveat}).")
    return lines or ["No comparison could be computed."]
