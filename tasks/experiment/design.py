"""Design-time power: before anything is sent, the smallest lift each arm can detect.

Baselines come from what is known before the send: each customer's historical open and click rates
(P(click) = historical_click_rate; P(convert) = P(click) x the assumed conversion rate). For a binary
metric with baseline p the per-customer variance is p(1 - p); the MDE is the normal-approximation
formula in stats.mde (two-sided alpha, 80% power).
"""
from __future__ import annotations

import polars as pl

from tasks.experiment.assign import CONTROL, HOLDOUT
from tasks.experiment.stats import mde


def expected_baselines(frame: pl.DataFrame, default_open: float, default_click_given_open: float,
                       convert_given_click: float) -> dict[str, float]:
    def mean(col: str, default: float) -> float:
        return float(frame[col].cast(pl.Float64).mean()) if col in frame.columns and frame[col].null_count() < frame.height else default
    p_open = mean("historical_open_rate", default_open)
    p_click = mean("historical_click_rate", p_open * default_click_given_open)
    return {"opened": p_open, "clicked": p_click, "converted": p_click * convert_given_click}


def design_power(assignments: pl.DataFrame, baselines: dict[str, float], alpha: float = 0.05,
                 power: float = 0.8, target_lift: float | None = None) -> list[dict]:
    """Per treatment arm and metric: n, baseline, MDE, and whether the hoped-for lift is detectable."""
    counts = dict(assignments.filter(pl.col("arm") != HOLDOUT).group_by("arm").len().iter_rows())
    n_c = counts.get(CONTROL, 0)
    rows = []
    for arm in sorted(a for a in counts if a != CONTROL):
        for metric, p in baselines.items():
            m = mde(counts[arm], n_c, p, p * (1 - p), alpha, power)
            rows.append({"arm": arm, "metric": metric, "n_treatment": counts[arm], "n_control": n_c,
                         "baseline": p, "mde_rel": m,
                         "detectable": None if target_lift is None else bool(m == m and m <= target_lift)})
    return rows


def design_record(run_id: str, profiles, variants, assignments: pl.DataFrame, weights: dict, exp, power_rows: list[dict],
                  declarations: list[str], consent: dict, policy_version: str, send: dict | None = None) -> dict:
    """What would be sent, for the manager to approve: sealed (its SHA-256 is in the approval's audit row).
    `send`: how (simulate or export), the control message, suppression and seed counts."""
    arms = assignments.group_by("segment", "arm").len().sort("segment", "arm")
    return {"send": send or {"mode": "simulate"},
        "run_id": run_id, "declarations": declarations, "consent": consent, "policy_version": policy_version,
        "segments": [{"name": p.name, "customers": p.size, "description": p.description} for p in profiles],
        "variants": [{"variant_id": v.variant_id, "segment": v.segment, "arm": f"treatment_{v.slot}",
                      "strategy": v.strategy, "subject": v.subject, "citations": v.citations,
                      "decision": v.status} for v in variants],
        "arms": [{"segment": s, "arm": a, "customers": n} for s, a, n in arms.iter_rows()],
        "weights": weights,
        "primary_metric": exp.primary, "metrics": exp.metrics, "alpha": exp.alpha, "correction": exp.correction,
        "power": exp.power, "target_lift": exp.target_lift,
        "smallest_detectable_lift": [{k: r[k] for k in ("arm", "metric", "n_treatment", "n_control", "mde_rel",
                                                        "detectable")} for r in power_rows],
    }


def design_markdown(design: dict) -> str:
    """The design as a manager reads it (design.md, and the summary above Prefect's Resume form)."""
    def pct(x):
        return "–" if x is None or x != x else f"{x:.1%}"
    lines = [f"# Experiment design — {design['run_id']}", ""]
    lines += [f"> **{d}**" for d in design["declarations"]] + ([""] if design["declarations"] else [])
    sizes = {}
    for a in design["arms"]:
        sizes[a["arm"]] = sizes.get(a["arm"], 0) + a["customers"]
    lines += [f"Primary metric **{design['primary_metric']}** (pre-registered); all metrics: "
              f"{', '.join(design['metrics'])}; α = {design['alpha']}, correction {design['correction']}, "
              f"power {design['power']:.0%} for a hoped-for {design['target_lift']:.0%} lift.",
              f"Arms: {', '.join(f'{a} ({n})' for a, n in sorted(sizes.items()))}. "
              f"Screening policy {design['policy_version']}.", "",
              "| segment | customers | profile |", "| --- | --- | --- |"]
    lines += [f"| {s['name']} | {s['customers']} | {s['description']} |" for s in design["segments"]]
    lines += ["", "| variant | arm | strategy | subject | cites | screening |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {v['variant_id']} | {v['arm']} | {v['strategy']} | {v['subject']} | {', '.join(v['citations'])} | "
              f"{v['decision']} |" for v in design["variants"]]
    lines += send_lines(design.get("send") or {})
    primary = [r for r in design["smallest_detectable_lift"] if r["metric"] == design["primary_metric"]]
    lines += ["", f"Smallest detectable lift on {design['primary_metric']}: "
              + (", ".join(f"{r['arm']} {pct(r['mde_rel'])}" for r in primary) or "–"), ""]
    return "\n".join(lines)


def send_lines(send: dict) -> list[str]:
    """How the campaign goes out: what the manager approves besides the variants."""
    mode = send.get("mode", "simulate")
    lines = ["", "**Sending**: " + ("engagement will be SIMULATED; no email is sent." if mode == "simulate" else
                                    "after approval, `sends.csv` is exported for your email service; outcomes come "
                                    "back with `cpo outcomes`.")]
    control = send.get("control_message")
    if control:
        lines.append(f"Control receives the business-as-usual email {control['variant_id']} \"{control['subject']}\" "
                     f"(screening: {control['decision']}).")
    elif "control_message" in send:
        lines.append("Control receives NO email: the comparison is email versus no email.")
    if send.get("suppressed") is not None:
        lines.append(f"{send['suppressed']} customers removed by {send.get('suppression_files', 0)} suppression "
                     "list(s) before segmentation; never assigned, sent or analysed.")
    if rollout := send.get("rollout"):
        lines.append(f"**Rollout** of {rollout['source_run']} ({rollout['source_path']}): each segment's winner on "
                     f"{rollout['primary_metric']} goes to all but a {rollout['holdout']:.0%} holdout, which receives "
                     "control's message so the lift goes on being measured.")
        lines += ["", "| segment | receives | why |", "| --- | --- | --- |"]
        lines += [f"| {r['segment']} | {r['variant_id'] or 'control message'} | {r['why']} |"
                  for r in send.get("rollout_plan") or []]
        lines.append("")
    if send.get("seeds"):
        lines.append(f"{send['seeds']} seed address(es) receive every message; never analysed.")
    return lines
