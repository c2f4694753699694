"""What the report says: sections built from a run's results, shared by `cpo run` and `cpo analyze`."""
from __future__ import annotations

import math

import polars as pl

from tasks.explain.report import explanation_sections
from tasks.report import Bullets, Callout, Chart, Paragraph, Section, Table, fmt, forest_chart
from tasks.safety.audit import read_rows, screening_rows

SIMULATED = Callout("SIMULATED DATA.", "Engagement in this report was simulated from the documented assumptions "
                    "below; no email was sent and no lift here was observed. Use it to check the pipeline and the "
                    "design, not to claim impact.", "simulated")
MEASURED = Callout("MEASURED OUTCOMES.", "The emails in sends.csv were sent by the email service; the outcomes below "
                   "were read back from its events (`cpo outcomes`). Nothing here was simulated.", "note")


def srm_blocks(srm: list[dict]) -> list:
    fired = [c for c in srm if c["mismatch"]]
    blocks = []
    if fired:
        names = ", ".join(f"{c['segment']} (p={fmt(c['p_value'], 'p')})" for c in fired)
        blocks.append(Callout("ALERT: sample-ratio mismatch", f"in {names}. Arm sizes differ from the design more "
                              "than chance allows; the assignment or the data export is broken, and the lifts below "
                              "are not trustworthy.", "alert"))
    rows = [[c["segment"], " / ".join(c["arms"]), " / ".join(map(str, c["observed"])),
             " / ".join(f"{e:g}" for e in c["expected"]), fmt(c["p_value"], "p"), "MISMATCH" if c["mismatch"] else "ok"]
            for c in srm]
    note = " Intended weights were not given, so equal weights were assumed." if srm and srm[0]["weights_assumed"] else ""
    blocks.append(Paragraph("Sample-ratio check: Pearson chi-square of arm sizes against the intended weights, "
                            f"flagged at p < 0.001.{note}"))
    blocks.append(Table(["segment", "arms", "observed", "expected", "p", "status"], rows))
    return blocks


def lift_rows_for(results: pl.DataFrame, segment: str = "all") -> list[list]:
    out = []
    for r in results.filter(pl.col("segment") == segment).to_dicts():
        rate = "rate" if r["metric_type"] == "binary" else ""
        undefined = r["rel_lift"] is None or math.isnan(r["rel_lift"])
        rel = "undefined" if undefined else fmt(r["rel_lift"], "pct")
        ci = "–" if undefined else f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]"
        out.append([r["metric"], r["arm"], r["n_treatment"], r["n_control"], fmt(r["rate_treatment"], rate),
                    fmt(r["rate_control"], rate), fmt(r["abs_lift"]),
                    f"[{fmt(r['abs_lift_ci_low'])}, {fmt(r['abs_lift_ci_high'])}]", rel, ci,
                    TESTS.get(r["test"], r["test"]), fmt(r["p_value"], "p"), fmt(r["p_value_adjusted"], "p"),
                    fmt(r["significant"]), fmt(r["mde_rel"], "pct").lstrip("+"), NOTES.get(r["note"], r["note"] or "")])
    return out


NOTES = {"few_events": "few non-zero values: not called significant",
         "zero_baseline": "relative lift undefined: control mean is 0",
         "rel_ci_unbounded": "relative CI unbounded: control mean not distinguishable from 0",
         "zero_variance": "no variation in either arm", "empty_arm": "empty arm", "insufficient_n": "n < 2",
         "non_finite": "non-finite values"}
TESTS = {"welch": "Welch t", "score": "MN score", "none": "–"}
LIFT_HEADERS = ["metric", "arm", "n (t)", "n (c)", "treatment", "control", "abs lift", "95% CI (abs)", "rel lift",
                "95% CI (rel)", "test", "p", "p adj.", "significant", "MDE (80% power)", "note"]
METHOD_NAMES = {"holm": "Holm", "bh": "Benjamini–Hochberg"}


def method_text(alpha: float) -> str:
    return (f"Each row has one test: Welch's t on the difference of means, or, for a rate with fewer than 10 events "
            "(or non-events) in an arm, the Miettinen–Nurminen score test. Both intervals invert that same test — the "
            "absolute one directly, the relative one by Fieller's method (score: the score interval for the ratio) — so "
            f"a {int((1 - alpha) * 100)}% interval excludes 0 exactly when p < {alpha}, and a relative interval on a "
            "rate never goes below −100%. When the control mean is 0 the relative lift is undefined and the absolute "
            "test still stands. MDE = the smallest relative lift this sample detects with 80% power.")


def forest_rows(results: pl.DataFrame, metric: str) -> list[dict]:
    return [{"label": f"{r['arm']} · {r['segment']}", "rel_lift": r["rel_lift"], "lo": r["rel_lift_ci_low"],
             "hi": r["rel_lift_ci_high"], "significant": r["significant"],
             "reason": NOTES.get(r["note"], "") + (f" (abs {fmt(r['abs_lift'])}, p {fmt(r['p_value'], 'p')})"
                                                   if r["note"] in ("zero_baseline", "rel_ci_unbounded") else "")}
            for r in results.filter(pl.col("metric") == metric).to_dicts()]


def experiment_sections(results: pl.DataFrame, srm: list[dict], explanation, alpha: float, correction: str,
                        factors: pl.DataFrame | None = None) -> list[Section]:
    method = METHOD_NAMES[correction]
    headline = results.filter(pl.col("segment") == "all")
    overall = Section("Results: all customers", srm_blocks(srm) + [
        Paragraph(method_text(alpha)),
        Paragraph(f"Family 'headline': the {headline.height} comparisons below (treatment arms × pre-registered "
                  f"metrics), adjusted together with {method}. Segment breakdowns are families of their own and never "
                  "change these numbers. results.csv names each row's family in the column `family`."),
        Table(LIFT_HEADERS, lift_rows_for(results))])
    for metric in results["metric"].unique(maintain_order=True).to_list():
        overall.blocks.append(Chart(forest_chart(forest_rows(results, metric)),
                                    f"{metric}: relative lift with its 95% CI, overall and per segment"))
    segments = [s for s in results["segment"].unique(maintain_order=True).to_list() if s != "all"]
    per_segment = Section("Results by segment", [])
    for family in results.filter(pl.col("segment") != "all")["family"].unique(maintain_order=True).to_list():
        size = results.filter(pl.col("family") == family).height
        per_segment.blocks.append(Paragraph(f"Family '{family}': its {size} comparisons (segments × arms × metrics) "
                                            f"are adjusted together with {method}, apart from the headline."))
    for s in segments:
        per_segment.blocks += [Paragraph(f"Segment: {s}"), Table(LIFT_HEADERS, lift_rows_for(results, s))]
    return ([overall, cuped_section(results), tails_section(results)] + ([per_segment] if segments else [])
            + explanation_sections(explanation, factors))


def tails_section(results: pl.DataFrame) -> Section:
    """Heavy tails: the winsorising cap and the bootstrap check, for the metrics that have them."""
    rows = [[r["metric"], r["arm"], fmt(r["capped_at"]), fmt(r["rel_lift"], "pct"),
             f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]",
             f"[{fmt(r['boot_ci_low'], 'pct')}, {fmt(r['boot_ci_high'], 'pct')}]"]
            for r in results.filter(pl.col("segment") == "all").to_dicts()
            if not math.isnan(r["capped_at"]) or not math.isnan(r["boot_ci_low"])]
    section = Section("Heavy tails: capping and a bootstrap check", [Paragraph(
        "Revenue-like metrics are winsorised before any test: values above the cap (a stated percentile of the "
        "metric's non-zero values, pooled over all arms and segments) are set to the cap, so a few huge orders cannot "
        "decide the experiment; the lifts above are of the capped metric. Skewed metrics also get a percentile "
        "bootstrap interval (2,000 resamples per arm) as a check on the analytic one.")])
    if not rows:
        section.blocks.append(Paragraph("No metric in this run was capped or skewed enough for a bootstrap check."))
        return section
    section.blocks.append(Table(["metric", "arm", "capped at", "rel lift", "95% CI (Fieller)", "95% CI (bootstrap)"], rows))
    return section


def cuped_section(results: pl.DataFrame) -> Section:
    rows = [[r["metric"], r["arm"], fmt(r["rel_lift"], "pct"),
             f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]",
             fmt(r["cuped_rel_lift"], "pct"), f"[{fmt(r['cuped_ci_low'], 'pct')}, {fmt(r['cuped_ci_high'], 'pct')}]",
             fmt(r["cuped_rho2"], "rate"), fmt(r["variance_reduction"], "rate"), fmt(r["chance_to_beat_control"], "rate")]
            for r in results.filter(pl.col("segment") == "all").to_dicts()]
    return Section("Variance reduction (CUPED) and a Bayesian view", [
        Paragraph("CUPED (Deng et al. 2013) adjusts each metric by a pre-period covariate measured before the send; it "
                  "narrows the interval without moving the expected lift. The plain estimate above stays the primary "
                  "result. ρ² is the squared within-arm correlation of the outcome with its covariate (the share of "
                  "the outcome's variance the covariate explains); 'variance of the lift −' is the reduction actually "
                  "achieved in the variance of the lift estimate. 'Chance to beat control' is a BAYESIAN VIEW (flat "
                  "priors: Beta posteriors for rates, a normal approximation for means), not a p-value."),
        Table(["metric", "arm", "rel lift", "95% CI", "CUPED rel lift", "CUPED 95% CI", "ρ² (outcome, covariate)",
               "variance of the lift −", "chance to beat control"], rows)])


def design_section(design: list[dict], target_lift: float, power: float) -> Section:
    """What the experiment can detect, known before anything is sent."""
    blind = [d for d in design if d["detectable"] is False]
    blocks = []
    if blind:
        worst = max(blind, key=lambda d: d["mde_rel"])
        blocks.append(Callout("WARNING: this campaign is too small", f"to detect the hoped-for lift of "
                              f"{target_lift:.0%} in {len(blind)} of {len(design)} arm × metric comparisons (e.g. "
                              f"{worst['arm']} on {worst['metric']} can only detect {worst['mde_rel']:.0%}). A "
                              "non-significant result here means 'not measurable at this size', not 'no effect'.",
                              "warning"))
    blocks.append(Paragraph(f"Minimum detectable relative lift per arm at {power:.0%} power, from baselines known "
                            "before the send (customers' historical open and click rates)."))
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
        covered = r["rel_lift_ci_low"] <= true <= r["rel_lift_ci_high"] if not math.isnan(r["rel_lift_ci_low"]) else None
        rows.append([r["metric"], r["arm"], fmt(true, "pct"), fmt(r["rel_lift"], "pct"),
                     f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]", fmt(covered)])
    return Section("Check against the simulator's truth", [
        Paragraph("The simulator knows each arm's expected lift; a trustworthy analysis covers it with its interval "
                  "about 95% of the time."), Table(["metric", "arm", "true rel. lift", "estimate", "95% CI", "covered"], rows)])


def audit_summary(variants, audit_path) -> list[dict]:
    rows = screening_rows(read_rows(audit_path))  # approval and other event rows are not screening decisions
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
    power_note = ([Paragraph(f"This design cannot detect the hoped-for {exp.target_lift:.0%} lift in {len(blind)} "
                             f"of {len(facts['design'])} arm × metric comparisons (see Design power).")] if blind else [])
    real = facts.get("outcome_counts") is not None
    headline = Section("Headline", [MEASURED if real else SIMULATED, Bullets(headline_lines(results, exp.alpha)),
                                    *power_note])
    design = Section("Design", [
        Paragraph(f"{facts['customers']} customers in {len(facts['profiles'])} segments; "
                  f"{assignments.height} eligible for email (opted in, with an address); "
                  f"{facts['customers'] - assignments.height} excluded (opted out or no address) and never assigned."),
        Paragraph(f"Arms: {', '.join(f'{a} ({n})' for a, n in arms.iter_rows())}. Assignment is SHA-256 hash-based "
                  "on the customer id, seeded, stratified by segment: each segment's treatment_k sends that segment's "
                  "k-th variant."),
        Paragraph(consent_line(facts["consent"])),
        Paragraph(f"Backends: {', '.join(f'{k}={v}' for k, v in facts['backends'].items())}. "
                  f"Screening policy {facts['policy_version']}."),
        *[Paragraph(line) for line in privacy_lines(facts["personal"], facts["cuped_skipped"])],
        Table(["segment", "customers", "share", "profile", "content retrieved"],
              [[p.name, p.size, f"{p.share:.0%}", p.description, ", ".join(h.document_id for h in facts["hits"][p.name][:4])]
               for p in facts["profiles"]])])
    screening = Section("Variants and screening", [
        Paragraph(f"{len(variants)} variants screened, {len(passed)} passed, {len(variants) - len(passed)} blocked: "
                  f"pass rate {len(passed) / max(1, len(variants)):.1%}. Every decision is in audit_log.csv "
                  "(hash-chained); blocked variants were regenerated with another strategy and never reached a customer."),
        Table(["variant", "strategy", "subject", "cites", "status", "attempt"],
              [[v.variant_id, v.strategy, v.subject, ", ".join(v.citations), v.status, v.attempt] for v in variants])])
    sim = facts["simulation"]
    assumptions = Section("Simulation assumptions", [
        Paragraph("Baseline: each customer's own historical open and click rates; "
                  f"P(convert | click) = {sim.convert_given_click}. Any treatment: {sim.personalization_lift}. "
                  "Planted effects (strategy × attribute):"),
        Table(["strategy", "metric", "attribute", "condition", "relative lift"],
              [[e.strategy, e.metric, e.attribute, f"{e.op} {e.value}", fmt(e.rel_lift, "pct")] for e in sim.effects])])
    timing = Section("Seconds per stage", [Table(["stage", "seconds"], [[k, f"{v:.2f}"] for k, v in facts["seconds"].items()])])
    power = design_section(facts["design"], exp.target_lift, exp.power)
    declared = ([Section("Declared by the operator", [Callout("Declared, not proven by the data", d, "alert")
                                                      for d in facts["declarations"]])]
                if facts["declarations"] else [])
    sections = declared + [headline, design, sending_section(facts), power, screening]
    sections += experiment_sections(results, srm, explanation, exp.alpha, exp.correction, factors)
    sections += [guardrail_section(facts["guardrails"], exp.alpha), winner_section(facts["winners"], exp.primary)]
    if real:
        return title, sections + [outcomes_section(facts["outcome_counts"]), timing]
    return title, sections + [truth_section(results, facts["truth"]), assumptions, timing]


def sending_section(facts: dict) -> Section:
    """How the campaign went out: simulated or exported, the control message, suppression and seeds."""
    from tasks.experiment.design import send_lines

    send = facts.get("send") or {}
    blocks = [Paragraph(line.replace("**", "")) for line in send_lines(send) if line and not line.startswith("|")]
    if send.get("rollout_plan"):
        blocks.append(Table(["segment", "receives", "why"], [[r["segment"], r["variant_id"] or "control message",
                                                              r["why"]] for r in send["rollout_plan"]]))
    return Section("Sending", blocks)


def guardrail_section(guards: pl.DataFrame, alpha: float) -> Section:
    if guards is None or guards.is_empty():
        return Section("Guardrails", [Paragraph("No guardrail metric (unsubscribed, complained) is in the outcomes: "
                                                "the simulator does not draw them. Real outcomes carry both.")])
    flagged = guards.filter(pl.col("flagged"))
    blocks = [Paragraph(f"Unsubscribe and complaint rates, each treatment arm against control: Fisher's exact test, "
                        f"one-sided (does the arm raise the rate?), at α = {alpha} without correction, so a harmful "
                        "arm is rather stopped than missed. A flagged arm cannot win.")]
    if flagged.height:
        blocks.append(Callout("Guardrail flagged", "; ".join(
            f"{r['arm']} in {r['segment']} raises {r['metric']} ({fmt(r['rate_treatment'], 'rate')} vs "
            f"{fmt(r['rate_control'], 'rate')}, p {fmt(r['p_value_one_sided'], 'p')})"
            for r in flagged.iter_rows(named=True)), "alert"))
    rows = guards.filter(pl.col("segment") == "all")
    blocks.append(Table(["metric", "arm", "treatment", "control", "one-sided p", "flagged"],
                        [[r["metric"], r["arm"], fmt(r["rate_treatment"], "rate"), fmt(r["rate_control"], "rate"),
                          fmt(r["p_value_one_sided"], "p"), "FLAGGED" if r["flagged"] else "ok"]
                         for r in rows.iter_rows(named=True)]))
    return Section("Guardrails", blocks)


def winner_section(wins: list[dict], primary: str) -> Section:
    return Section("Winner per segment", [
        Paragraph(f"On the pre-registered primary metric {primary}: the treatment arm with the largest significant "
                  "lift that no guardrail flagged, otherwise control. `cpo rollout` sends these."),
        Table(["segment", "winner", "relative lift", "why"],
              [[w["segment"], w["arm"], fmt(w["rel_lift"], "pct") if w["arm"] != "control" else "–", w["reason"]]
               for w in wins or []])])


def outcomes_section(counts: dict) -> Section:
    """What the email service's events said, and what was dropped: counted, never named."""
    skip = {"format", "population", "events_sha256"}
    return Section("Outcomes read back", [
        Paragraph(f"Events file ({counts.get('format')}, SHA-256 {str(counts.get('events_sha256', ''))[:12]}…) read "
                  f"into one row per recipient; analysed: {counts.get('population')}. Duplicate events count once, "
                  "machine opens are not opens, a bounce is not a delivery, seeds and unknown recipients are dropped."),
        Table(["what", "count"], [[k.replace("_", " "), v] for k, v in counts.items()
                                  if k not in skip and isinstance(v, (int, float))])])


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
    overall = results.filter(pl.col("segment") == "all")
    for metric in overall["metric"].unique(maintain_order=True).to_list():
        rows = overall.filter(pl.col("metric") == metric)
        defined = rows.filter(pl.col("rel_lift").is_not_nan())
        best = (defined if defined.height else rows).sort("abs_lift", descending=True, nulls_last=True).row(0, named=True)
        verdict = "significant" if best["significant"] else "not significant"
        caveat = f"; {NOTES[best['note']]}" if best["note"] in NOTES else ""
        if math.isnan(best["rel_lift"]):
            effect = (f"absolute lift {fmt(best['abs_lift'])} (95% CI {fmt(best['abs_lift_ci_low'])} to "
                      f"{fmt(best['abs_lift_ci_high'])})")
        else:
            effect = (f"{fmt(best['rel_lift'], 'pct')} (95% CI {fmt(best['rel_lift_ci_low'], 'pct')} to "
                      f"{fmt(best['rel_lift_ci_high'], 'pct')})")
        lines.append(f"{metric}: best arm {best['arm']} {effect}, adjusted p {fmt(best['p_value_adjusted'], 'p')} "
                     f"(headline family), {verdict} at α={alpha}{caveat}.")
    return lines or ["No comparison could be computed."]
