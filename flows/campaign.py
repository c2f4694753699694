"""The campaign flow: customers -> segments -> content -> variants -> screening -> experiment -> report.

Orchestration only: every decision is made by a function in `tasks/`, wrapped as a task in flows/stages.py.
"""
from __future__ import annotations

import platform
import sys
from datetime import date, datetime, timezone
from importlib import metadata
from pathlib import Path

from prefect import flow

from config import PROJECT_DIR, load_backends, load_settings
from flows import stages
from tasks.content import check_usable, load_documents
from tasks.errors import public_message
from tasks.generation import first_strategies, make_generator, next_strategy
from tasks.report import to_html, to_markdown
from tasks.retrieval import make_retriever
from tasks.rundir import RunDir, sha256_of
from tasks.safety import Screener, make_harm_scorer, passed_by_segment
from tasks.privacy import pii_columns
from tasks.safety.audit import AuditLog
from tasks.safety.rules import Context
from tasks.sections import audit_summary, campaign_report
from tasks.experiment.assign import CONTROL, HOLDOUT, check_eligible
from tasks.experiment.design import design_power, expected_baselines
from tasks.explain.buckets import variant_factors

SAMPLE_CUSTOMERS = PROJECT_DIR / "data" / "sample" / "customers.csv"
SAMPLE_CONTENT = PROJECT_DIR / "data" / "sample" / "content"
PACKAGES = ["prefect", "polars", "great-expectations", "scikit-learn", "pingouin", "numpy", "pydantic"]


def default_run_dir(name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return PROJECT_DIR / "runs" / f"{name}-{stamp}"


@flow(name="campaign", log_prints=True)
def campaign_flow(customers: str | None = None, transactions: str | None = None, content: str | None = None,
                  config: str | None = None, columns: dict[str, str] | None = None, out: str | None = None,
                  seed: int | None = None, variants_per_segment: int | None = None,
                  all_opted_in: str | None = None) -> dict:
    overrides = {"seed": seed, "generation.variants_per_segment": variants_per_segment,
                 "consent.all_opted_in_basis": all_opted_in}
    campaign, policy, brand = load_settings(config, {k: v for k, v in overrides.items() if v is not None})
    backends = load_backends()
    customers, content = str(customers or SAMPLE_CUSTOMERS), str(content or SAMPLE_CONTENT)
    run = RunDir(out or default_run_dir(campaign.name))
    run_id = run.path.name
    # Checks first: settings, content, every backend and the customer file. Nothing is written until they pass.
    today = date.today()
    documents = load_documents(content)
    check_usable(documents, today, content)
    by_id = {d.id: d for d in documents}
    subject_max = campaign.generation.subject_max_chars
    retriever = make_retriever(backends.retriever, documents)
    generator = make_generator(backends.generator, brand, subject_max, policy)
    screener = Screener(make_harm_scorer(backends.screener, brand.competitors), Context(brand, policy, by_id, today, subject_max))
    exp = campaign.experiment
    try:
        with run.stage("ingest"):
            df, consent = stages.ingest(customers, transactions, {**campaign.columns, **(columns or {})},
                                        campaign.consent.all_opted_in_basis)
            stages.validate_customers(df, customers)
            check_eligible(df, customers, exp.min_eligible_customers)
            personal = pii_columns(df)
        with run.stage("segment"):
            seg = campaign.segmentation
            df, profiles = stages.segment(df, seg.method, seg.k_range, seg.min_segment_share, campaign.seed)
        with run.stage("retrieve"):
            hits = stages.retrieve(retriever, profiles, campaign.retrieval.top_k, today)
        with run.stage("generate+screen"):
            audit = AuditLog(run.file("audit_log.csv"), run_id, policy.policy_version)
            variants = generate_and_screen(generator, screener, audit, profiles, hits, by_id, campaign)
            run.write_jsonl("variants.jsonl", [variant_record(v) for v in variants])
            stages.validate_screening(variants, audit)
            passed = passed_by_segment(variants, [p.name for p in profiles], exp.min_passed_variants_per_segment)
        with run.stage("assign"):
            assignments, weights = stages.assign_arms(df, passed, exp.control_weight, campaign.seed, campaign.name,
                                                      exp.holdout_weight, exp.treatment_weights)
            run.write_csv("assignments.csv", assignments.select("customer_id", "segment", "arm", "variant_id"))
            frame = assignments.join(df.drop("segment"), on="customer_id", how="left")
            sim = campaign.simulation
            baselines = expected_baselines(frame, sim.default_open_rate, sim.default_click_given_open,
                                           sim.convert_given_click)
            design = design_power(assignments, baselines, exp.alpha, exp.power, exp.target_lift)
        with run.stage("engage"):
            strategy_of = {v.variant_id: v.strategy for v in variants}
            outcomes, truth = stages.simulate_engagement(frame, strategy_of, campaign.simulation, campaign.seed)
            run.write_csv("outcomes.csv", outcomes.select("customer_id", "arm", *exp.metrics))
        with run.stage("analyze"):
            covariates = {m: c for m, c in exp.covariates.items() if c in df.columns}
            attributes = outcomes.join(df.drop("segment"), on="customer_id", how="left")  # for CUPED and explain
            results, srm = stages.analyze(attributes, exp.metrics, CONTROL, exp.alpha, exp.correction, weights,
                                          covariates=covariates, caps=exp.caps(), seed=campaign.seed)
            run.write_csv("results.csv", results)
        with run.stage("explain"):
            explanation = stages.explain(attributes, exp.metrics, CONTROL, campaign.seed,
                                         {c: f"personal data ({k})" for c, k in personal.items()}, exp.alpha,
                                         exp.correction)
            factors = variant_factors(results, variants, exp.metrics)
            run.write_csv("attribution.csv", explanation.attribution)
            run.write_csv("attribute_lifts.csv", explanation.buckets)
            run.write_csv("variant_factors.csv", factors)
        with run.stage("report"):
            facts = {"run_id": run_id, "customers": df.height, "profiles": profiles, "hits": hits,
                     "variants": variants, "assignments": assignments, "documents": documents,
                     "backends": backends.model_dump(), "simulation": campaign.simulation, "truth": truth,
                     "policy_version": policy.policy_version, "seconds": run.seconds, "design": design,
                     "declarations": declarations(consent, policy), "consent": consent, "personal": personal,
                     "cuped_skipped": {m: c for m, c in exp.covariates.items() if c not in df.columns}}
            title, sections = campaign_report(facts, results, srm, explanation, factors, exp)
            markdown = to_markdown(title, sections)
            run.write_text("report.md", markdown)
            run.write_text("report.html", to_html(title, sections))
            stages.publish_report(markdown, audit_summary(variants, run.file("audit_log.csv")))
        manifest = build_manifest(run, run_id, campaign, policy, backends, customers, transactions, content,
                                  config, audit, truth, df, assignments, variants, design)
        manifest.update(consent=consent, declarations=facts["declarations"], cuped_skipped=facts["cuped_skipped"],
                        personal_data_columns=personal)
        if hasattr(generator, "usage_report"):  # tokens and cost of a model-backed generator
            manifest["generation_usage"] = generator.usage_report()
        run.write_json("manifest.json", manifest)
    except Exception as e:  # Prefect's pause/abort signals are BaseExceptions and pass untouched
        run.fail(e, public_message(e))
        raise
    return {"run_dir": str(run.path), "results": results, "srm": srm, "variants": variants,
            "manifest": manifest}


def declarations(consent: dict, policy) -> list[str]:
    """What the operator declared instead of the data or the default policy proving it: heads design and report."""
    out = []
    if consent.get("basis"):
        out.append(f"Consent DECLARED, not read from the file: every customer is treated as opted in because "
                   f"\"{consent['basis']}\".")
    if policy.weaker_than_floor:
        who = f" (approved by {policy.weakened.approved_by})" if policy.weakened.approved_by else ""
        out.append(f"Screening policy WEAKER than the floor{who}: \"{policy.weakened.reason}\" — "
                   + "; ".join(policy.weaker_than_floor) + ".")
    return out


def generate_and_screen(generator, screener, audit, profiles, hits, by_id, campaign) -> list:
    """Generate every slot, screen it, regenerate blocked slots with the next unused strategy (bounded)."""
    gen = campaign.generation
    first = first_strategies(gen.strategies, gen.variants_per_segment)
    docs_of = {p.name: [by_id[h.document_id] for h in hits[p.name]] for p in profiles}
    pending = {p.name: {slot: (strategy, 1) for slot, strategy in first.items()} for p in profiles}
    used = {p.name: set(first.values()) for p in profiles}
    avoid: dict[str, dict[int, set[str]]] = {p.name: {} for p in profiles}
    everything = []
    for _ in range(gen.max_attempts):
        futures = [stages.generate.submit(generator, p, docs_of[p.name], pending[p.name], avoid[p.name],
                                          [s for s in gen.strategies if s not in used[p.name]])
                   for p in profiles if pending.get(p.name)]
        fresh = [v for f in futures for v in f.result()]
        for v in fresh:
            used[v.segment].add(v.strategy)
        screened = stages.screen(screener, fresh, audit)
        everything += screened
        pending = {}
        for v in screened:
            if v.status == "blocked" and v.attempt < gen.max_attempts:
                strategy = next_strategy(gen.strategies, used[v.segment])
                if strategy:
                    used[v.segment].add(strategy)
                    pending.setdefault(v.segment, {})[v.slot] = (strategy, v.attempt + 1)
                    avoid[v.segment].setdefault(v.slot, set()).update(v.citations)
        if not pending:
            break
    return everything


def variant_record(v) -> dict:
    return {"variant_id": v.variant_id, "segment": v.segment, "subject": v.subject, "body": v.body,
            "citations": v.citations, "status": v.status, "strategy": v.strategy, "slot": v.slot,
            "attempt": v.attempt, "preheader": v.preheader, "generator": v.generator,
            "claims": [c.model_dump() for c in v.claims]}


def build_manifest(run, run_id, campaign, policy, backends, customers, transactions, content, config, audit,
                   truth, df, assignments, variants, design) -> dict:
    inputs = {"customers": customers, "transactions": transactions, "content": content,
              "config": config or str(PROJECT_DIR / "config" / "campaign.yaml")}
    arms = assignments.group_by("arm").len().sort("arm").to_dicts()
    return {
        "run_id": run_id, "status": "complete",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {k: {"path": v, "sha256": sha256_of(v)} for k, v in inputs.items() if v},
        "config": campaign.model_dump(mode="json"), "policy_version": policy.policy_version,
        "seed": campaign.seed, "backends": backends.model_dump(),
        "simulated": True,  # no sending backend exists yet: every cpo run outcome is simulated
        "simulation": {"note": "engagement is SIMULATED from documented assumptions; no email was sent",
                       "assumptions": campaign.simulation.model_dump(mode="json"), "true_rel_lift": truth},
        "counts": {"customers": df.height, "assigned": int((assignments["arm"] != HOLDOUT).sum()),
                   "arms": {a["arm"]: a["len"] for a in arms}, "variants": len(variants),
                   "variants_passed": sum(v.status == "passed" for v in variants)},
        "design": {"target_lift": campaign.experiment.target_lift, "power": campaign.experiment.power, "arms": design},
        "audit": {"rows": audit.count, "head": audit.head},
        "seconds": run.seconds,
        "versions": versions(),
    }


def versions() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(), **{p: _version(p) for p in PACKAGES}}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
