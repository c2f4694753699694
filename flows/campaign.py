"""The campaign flow: customers -> segments -> content -> variants -> screening -> experiment -> report.

Orchestration only: every decision is made by a function in `tasks/`, wrapped as a task in flows/stages.py.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact
from prefect.input import RunInput

from config import CONFIG_DIR, PROJECT_DIR, load_backends, load_campaign, load_settings
from flows import stages
from flows.scale import Partitioned
from tasks.content import check_usable, load_documents
from tasks.errors import InputError, SafetyGateError, public_message
from tasks.generation import make_generator
from tasks.generation.slots import SlotPlan
from tasks.report import to_html, to_markdown
from tasks.retrieval import make_retriever
from tasks.experiment.design import design_markdown, design_record
from tasks.lifecycle import (approval_of, begin, check_sealed, declarations, record_decision, run_id_of,
                             run_inputs)
from tasks.manifest import build_manifest
from tasks.records import SegmentProfile, Variant
from tasks.retrieval import Hit
from tasks.rundir import STAGES, RunDir, sha256_of
from tasks.safety import Screener, make_harm_scorer, passed_by_segment
from tasks.safety.anchor import seal
from tasks.safety.audit import AuditLog
from tasks.safety.rules import Context
from tasks.sections import audit_summary, campaign_report
from tasks.experiment.assign import CONTROL, check_eligibility
from tasks.experiment.guardrails import winners
from tasks.experiment.rollout import load_source, winner_variants
from tasks.experiment.sends import control_variant, read_seed_list, read_suppression, seed_ids
from tasks.experiment.design import design_power, expected_baselines
from tasks.explain.buckets import variant_factors

SAMPLE_CUSTOMERS = PROJECT_DIR / "data" / "sample" / "customers.csv"
SAMPLE_CONTENT = PROJECT_DIR / "data" / "sample" / "content"
STRATEGIES = CONFIG_DIR / "strategies.yaml"
EXPLAIN_ROWS = 100_000  # the explanation runs on a seeded sample of customers this large (all of a smaller file)


def default_run_dir(name: str) -> Path:
    """`$CPO_RUNS_DIR/<run id>` (default: runs/ in the working directory); see run_id_for."""
    return Path(os.environ.get("CPO_RUNS_DIR") or "runs") / run_id_for(name)


def run_id_for(campaign: str) -> str:
    """`<campaign>-<UTC timestamp>`; under a deployment `<campaign>-<flow run id>`, so a run resumed from the
    Prefect UI or retried with `prefect flow-run retry` (the same flow run) finds its own folder again."""
    from prefect.runtime import flow_run

    if in_deployment():
        return f"{campaign}-{str(flow_run.id)[:8]}"
    return f"{campaign}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"


def flow_run_name() -> str:
    """`<campaign>-<run id>` in the Prefect UI (the run folder's name), instead of a random name."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    if params.get("out"):
        return Path(params["out"]).name
    try:
        name = load_campaign(params.get("config")).name
    except InputError:
        name = "campaign"
    return run_id_for(name)


def artifact_key(run_id: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes; one per run, so campaigns never overwrite."""
    return re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")[:80] or "run"


def current_flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


def mark_crashed(flow_run_id: str | None, message: str) -> None:
    """A run killed with SIGKILL leaves its Prefect flow run Running for good; the next start ends it as Crashed
    (best effort: the old run may belong to a server that is gone, such as a temporary one)."""
    if not flow_run_id:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
            if run.state and not run.state.is_final():
                client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
    except Exception as e:  # noqa: BLE001 - the folder records the crash either way
        get_run_logger().info("could not mark flow run %s crashed in Prefect: %s", flow_run_id, type(e).__name__)


def in_deployment() -> bool:
    from prefect.context import FlowRunContext
    from prefect.runtime import deployment

    ctx = FlowRunContext.get()
    if ctx and ctx.flow_run:
        return bool(ctx.flow_run.deployment_id)
    return bool(deployment.id)  # before the run's context exists (its name is being chosen)


class Approval(RunInput):
    """The Resume form in the Prefect UI."""
    approve: bool
    approver: str
    comment: str | None = None


def wait_for_approval(design_md: Path) -> Approval:
    """Suspend the deployment run at the gate; on resume the flow re-runs from the top (persisted stages are
    reused) and this returns the manager's answer."""
    from prefect.flow_runs import suspend_flow_run

    while True:
        answer = suspend_flow_run(wait_for_input=Approval.with_initial_data(
            description=design_md.read_text("utf-8"), approve=False, approver=""), timeout=7 * 24 * 3600)
        if answer.approver.strip():
            return answer


@flow(name="campaign", log_prints=True, flow_run_name=flow_run_name)
def campaign_flow(customers: str | None = None, transactions: str | None = None, content: str | None = None,
                  config: str | None = None, columns: dict[str, str] | None = None, out: str | None = None,
                  seed: int | None = None, variants_per_segment: int | None = None,
                  all_opted_in: str | None = None, approve_as: str | None = None, send: str | None = None,
                  suppress: list[str] | None = None, seed_list: str | None = None, rollout_of: str | None = None,
                  holdout: float | None = None, events: str | None = None, events_format: str = "generic",
                  approving: dict | None = None) -> dict:
    parameters = {"customers": customers, "transactions": transactions, "content": content, "config": config,
                  "columns": columns, "seed": seed, "variants_per_segment": variants_per_segment,
                  "all_opted_in": all_opted_in, "send": send, "suppress": suppress, "seed_list": seed_list,
                  "rollout_of": rollout_of, "holdout": holdout}
    overrides = {"seed": seed, "generation.variants_per_segment": variants_per_segment,
                 "consent.all_opted_in_basis": all_opted_in, "send.mode": "export" if rollout_of else send,
                 "rollout.holdout": holdout}
    campaign, policy, brand = load_settings(config, {k: v for k, v in overrides.items() if v is not None})
    backends = load_backends()
    customers, content = str(customers or SAMPLE_CUSTOMERS), str(content or SAMPLE_CONTENT)
    if not out and in_deployment() and not os.environ.get("CPO_RUNS_DIR"):
        raise InputError("a deployment run needs a place for its run folders: set CPO_RUNS_DIR for the worker or "
                         "serve process (or pass the `out` parameter); runs never go into the code checkout")
    run = RunDir(out or default_run_dir(campaign.name))
    scale = Partitioned(run.path)  # CPO_TASK_RUNNER, CPO_PARTITION_ROWS: where the per-customer stages run
    checked_docs = scale.docs  # GX's pages move into the folder once it exists
    try:  # the folder's lock is released however the run ends (a process may run several flows)
        if run.path.is_dir():
            run.acquire()  # an existing folder: a live run there is refused at once, before any check
        run_id, exp = run_id_of(run.path), campaign.experiment  # the run's own id, never a renamed folder's
        logger = get_run_logger()
        logger.info("campaign %s: run folder %s", campaign.name, run.path.resolve())
        # Checks first: settings, content, every backend and the customer file. Nothing is written until they pass.
        today = date.today()
        documents = load_documents(content)
        check_usable(documents, today, content)
        by_id = {d.id: d for d in documents}
        subject_max = campaign.generation.subject_max_chars
        retriever = make_retriever(backends.retriever, documents)
        generator = make_generator(backends.generator, brand, subject_max, policy)
        screener = Screener(make_harm_scorer(backends.screener, brand.competitors),
                            Context(brand, policy, by_id, today, subject_max))
        export = campaign.send.mode == "export"
        source = load_source(rollout_of) if rollout_of else None  # a rollout: the winners of an analysed run
        # Once the sends are out, the run finishes on what it persisted: a customer file or a suppression list
        # that has moved on since (they do, daily) cannot change who was sent what.
        sent_sha = exported(run.path / "audit_log.csv") if run.path.is_dir() else None  # the audit log says so
        sent = run.path.is_dir() and (run.is_done("export") or sent_sha is not None)
        if sent and (broken := [s for s in STAGES[:STAGES.index("export")] if not run.is_done(s)]):
            raise InputError(f"{run.path}: the sends went out, but what stage {broken[0]} recorded was changed or "
                             f"deleted since (stages/{broken[0].replace('+', '_')}.done.json lists each file and its "
                             "SHA-256); outcomes are analysed only against what was sent, so this run cannot be "
                             "finished: restore the folder from a backup")
        if sent_sha and (run.path / "sends.csv").exists() and sha256_of(run.path / "sends.csv") != sent_sha:
            raise InputError(f"{run.path / 'sends.csv'}: changed since it was exported (the audit log's export row "
                             "holds the SHA-256 of the file that was sent); put the file that was sent back to finish "
                             "this run")
        if events and sent and run.is_done("outcomes") and \
                sha256_of(events) != run.read_json("stages/outcomes/counts.json", {}).get("events_sha256"):
            raise InputError(f"{run.path}: outcomes were already read from another events file; one run reads one "
                             "file (start a new run for another send)")
        with run.stage("ingest"):
            if sent:
                saved = run.reuse("ingest")
                scale.restore(run.path, "ingest", saved.get("parts"))
                scale.rows = saved.get("partition_rows", scale.rows)  # as they were cut, whatever the setting now
                table, consent, personal = saved["table"], saved["consent"], saved["personal"]
                suppression_files, suppressed = saved["suppression"]["files"], saved["suppression"]["customers_removed"]
                seeds = saved.get("seeds")
            else:
                off_emails, off_ids, suppression_files = read_suppression(suppress or [])
                if source:  # who unsubscribed, complained or bounced in the source run is never sent again
                    off_ids |= source["opted_out_ids"]
                    off_emails |= source["opted_out_emails"]
                seeds = read_seed_list(seed_list) if seed_list else None
                ingested = scale.ingest(checked_docs, customers, transactions,
                                        {**campaign.columns, **(columns or {})}, campaign.consent.all_opted_in_basis,
                                        off_emails=off_emails, off_ids=off_ids, needs_email=export,
                                        reserved_ids=tuple(seed_ids(seeds)),
                                        seed_emails=tuple(seeds["email"]) if seeds is not None else ())
                check_eligibility(ingested["eligibility"], customers, exp.min_eligible_customers)
                table, consent, personal = ingested["table"], ingested["consent"], ingested["personal"]
                suppressed = ingested["suppressed"]
        config_path = config or str(PROJECT_DIR / "config" / "campaign.yaml")
        inputs = run_inputs(parameters, {"customers": customers, "transactions": transactions, "content": content,
                                         "config": config_path, "seed_list": seed_list,
                                         "rollout_winners": source and str(Path(rollout_of) / "winners.csv"),
                                         **{f"suppress_{i}": f for i, f in enumerate(suppress or [], 1)}},
                            campaign, policy, brand, backends, STRATEGIES, run_id)
        if sent:  # the input files as they were when the run started (see `sent` above)
            inputs["inputs"] = (run.read_json("run_inputs.json") or {}).get("inputs", inputs["inputs"])
        send_facts = {"mode": campaign.send.mode, "suppressed": suppressed if suppress or source else None,
                      "suppression_files": len(suppression_files),
                      "seeds": seeds.height if seeds is not None else 0}
        previous = begin(run, inputs)  # a refusal here (live run, other inputs) leaves the folder as it was
        try:
            if previous and previous.get("status") == "crashed":
                logger.warning("resuming after a crash: %s", previous.get("message"))
                mark_crashed(previous.get("flow_run_id"), previous.get("message", ""))
            run.status_extra = {"flow_run_id": current_flow_run_id(), "run_id": run_id}
            run.status("running")
            create_link_artifact(key=f"{artifact_key(run_id)}-folder", link=run.path.resolve().as_uri(),
                                 link_text=str(run.path.resolve()), description="The run folder")
            docs = run.path / "data_docs"
            if not docs.exists():
                shutil.move(str(checked_docs), docs)
            scale.settle(run.path)
            if not sent:
                run.finish("ingest", scale.files(run.path, "ingest"), parts=scale.files(run.path, "ingest"),
                           table=table, consent=consent, personal=personal, seeds=seeds,
                           suppression={"files": suppression_files, "customers_removed": suppressed},
                           partition_rows=scale.rows)
            customer_columns = table["columns"]
            with run.stage("segment"):
                if saved := run.reuse("segment"):
                    scale.restore(run.path, "segment", saved.get("parts"))
                    profiles = [SegmentProfile(**p) for p in saved["profiles"]]
                else:
                    profiles = scale.segment(run.path, campaign.segmentation, campaign.seed)
                    run.finish("segment", scale.files(run.path, "segment"), parts=scale.files(run.path, "segment"),
                               profiles=profiles)
            with run.stage("retrieve"):
                if saved := run.reuse("retrieve"):
                    hits = {k: [Hit(**h) for h in v] for k, v in saved["hits"].items()}
                elif source:  # a rollout sends messages already written: nothing to retrieve
                    hits = {p.name: [] for p in profiles}
                    run.finish("retrieve", hits=hits)
                else:
                    hits = stages.retrieve(retriever, profiles, campaign.retrieval.top_k, today)
                    run.finish("retrieve", hits=hits)
            audit = AuditLog(run.file("audit_log.csv"), run_id, policy.policy_version)
            with run.stage("generate+screen"):
                if saved := run.reuse("generate+screen"):
                    variants = [Variant(**v) for v in saved["variants"]]
                    control = Variant(**saved["control"]) if saved.get("control") else None
                    if saved.get("rollout_plan") is not None:  # as a run that was not stopped: a rollout's only
                        send_facts["rollout_plan"] = saved["rollout_plan"]
                else:
                    if source:  # the winners, screened again under today's policy in this run's own log
                        control = screen_control(screener, audit, source["control"])
                        chosen, send_facts["rollout_plan"] = winner_variants(source, [p.name for p in profiles])
                        audit.record_event("rollout", "record", "cpo rollout",
                                           sha256_of(Path(source["path"]) / "winners.csv"),
                                           f"the winners of {source['run_id']} ({source['path']})")
                        variants = stages.screen(screener, chosen, audit)
                        if blocked := [v.variant_id for v in variants if v.status != "passed"]:
                            raise SafetyGateError(f"today's policy blocks the winner(s) {', '.join(blocked)} of "
                                                  f"{source['run_id']} (see audit_log.csv); nothing was assigned")
                    else:
                        control = screen_control(screener, audit, control_variant(campaign.control_message, brand))
                        variants = generate_and_screen(generator, screener, audit, profiles, hits, by_id, campaign)
                    run.write_jsonl("variants.jsonl", [variant_record(v) for v in variants])
                    files = ["variants.jsonl"]
                    if control:
                        run.write_json("control_message.json", variant_record(control))
                        files.append("control_message.json")
                    stages.validate_screening(variants + ([control] if control else []), audit, docs)
                    seal(run.path)
                    run.finish("generate+screen", files, variants=variants, control=control,
                               rollout_plan=send_facts.get("rollout_plan"))
                send_facts["control_message"] = ({"variant_id": control.variant_id, "subject": control.subject,
                                                  "decision": control.status} if control else None)
                passed = passed_by_segment(variants, [p.name for p in profiles],
                                           0 if source else exp.min_passed_variants_per_segment)
                if source:
                    send_facts["rollout"] = {"source_run": source["run_id"], "source_path": source["path"],
                                             "holdout": campaign.rollout.holdout,
                                             "primary_metric": source["primary_metric"]}
            with run.stage("assign"):  # `assignments`: each assigned customer's segment and arm, nothing else
                if saved := run.reuse("assign"):
                    scale.restore(run.path, "assign", saved.get("parts"))
                    assignments, weights = saved["assignments"], saved["weights"]
                else:
                    assignments, weights = scale.assign(
                        run.path, passed, campaign.rollout.holdout if source else exp.control_weight, campaign.seed,
                        f"{campaign.name}-rollout" if source else campaign.name, 0.0 if source else exp.holdout_weight,
                        None if source else exp.treatment_weights, docs)
                    scale.write_csv(run, "assignments.csv", "assign", ["customer_id", "segment", "arm", "variant_id"])
                    run.finish("assign", ["assignments.csv", *scale.files(run.path, "assign")],
                               parts=scale.files(run.path, "assign"), assignments=assignments, weights=weights)
            with run.stage("design"):
                sim = campaign.simulation
                history = scale.columns_of("assign", ["historical_open_rate", "historical_click_rate"])
                power_rows = design_power(assignments, expected_baselines(history, sim.default_open_rate,
                                                                          sim.default_click_given_open,
                                                                          sim.convert_given_click),
                                          exp.alpha, exp.power, exp.target_lift)
                history = None
                if run.reuse("design") is None:
                    design = design_record(run_id, profiles, variants, assignments, weights, exp, power_rows,
                                           declarations(consent, policy, exp), consent, policy.policy_version,
                                           send_facts)
                    run.write_json("design.json", design)
                    run.write_text("design.md", design_markdown(design))
                    run.finish("design", ["design.json", "design.md"])
                sealed = run.read_json("design.json")
            approval = gate(run, audit, approve_as, approving)
            if approval is None or approval["decision"] == "reject":
                return ended(run, approval, sealed)
            metrics, alpha, correction = sealed["metrics"], sealed["alpha"], sealed["correction"]  # as approved
            unused = None  # recipients whose merge values did not read as a name (exported runs)
            if export:
                with run.stage("export"):
                    if saved := run.reuse("export"):
                        scale.restore(run.path, "export", saved.get("parts"))
                        seeded, unused = saved["seeds"], saved.get("merge_values_unused")
                    else:
                        messages = {v.variant_id: v for v in variants if v.status == "passed"}
                        if control:
                            messages[control.variant_id] = control
                        pieces, unused = scale.export(run.path, messages, brand, campaign.send, run_id, seeds,
                                                      control.variant_id if control else None)
                        seeded = stages.export_sends(run, audit, pieces, messages, brand, campaign.send, seeds,
                                                     sent_sha, unused)
                        seal(run.path)
                        run.finish("export", ["sends.csv", *scale.files(run.path, "export")],
                                   parts=scale.files(run.path, "export"), seeds=seeded, merge_values_unused=unused)
                if not run.is_done("outcomes"):
                    if not events:
                        return awaiting_outcomes(run, run_id, sealed, unused)
                    with run.stage("outcomes"):
                        read = stages.read_events(run, audit, events, events_format, scale.parts["export"], seeded,
                                                  str(scale.staged))
                        counts = stages.record_outcomes(run, audit, events, read,
                                                        scale.outcomes(run.path, read, seeded, bool(control)),
                                                        bool(control))
                        run.finish("outcomes", scale.files(run.path, "outcomes") + scale.files(run.path, "recipients"),
                                   parts=scale.files(run.path, "outcomes"), counts=counts)
                saved = run.reuse("outcomes")
                scale.restore(run.path, "outcomes", saved.get("parts"))
                truth, outcome_counts = None, saved["counts"]
                with run.stage("engage"):  # the outcomes read back, as the contract's outcomes.csv
                    if run.reuse("engage") is None:
                        scale.write_csv(run, "outcomes.csv", "outcomes", ["customer_id", "arm", *metrics, *[
                            g for g in exp.guardrails if g in pl.read_parquet_schema(scale.parts["outcomes"][0])]])
                        run.finish("engage", ["outcomes.csv"])
            else:
                outcome_counts = None
                with run.stage("engage"):
                    if saved := run.reuse("engage"):
                        scale.restore(run.path, "engage", saved.get("parts"))
                        truth = saved["truth"]
                    else:
                        strategy_of = {v.variant_id: v.strategy for v in variants}
                        truth = scale.simulate(run.path, strategy_of, campaign.simulation, campaign.seed)
                        scale.write_csv(run, "outcomes.csv", "engage", ["customer_id", "arm", *exp.metrics])
                        run.finish("engage", ["outcomes.csv", *scale.files(run.path, "engage")],
                                   parts=scale.files(run.path, "engage"), truth=truth)
            measured = "outcomes" if export else "engage"  # the outcomes read back, or simulated
            with run.stage("analyze"):
                if saved := run.reuse("analyze"):
                    results, srm, guards, wins = saved["results"], saved["srm"], saved["guardrails"], saved["winners"]
                else:  # the outcomes with the covariates CUPED needs, and no other customer data
                    covariates = {m: c for m, c in exp.covariates.items() if c in customer_columns}
                    attributes = scale.rows_of(measured, list(covariates.values()))  # loaded by the tasks
                    results, srm = stages.analyze(attributes, metrics, CONTROL, alpha, correction, weights,
                                                  covariates=covariates, caps=exp.caps(), seed=campaign.seed,
                                                  key=artifact_key(run_id))
                    run.write_csv("results.csv", results)
                    guards = stages.guardrails(attributes, exp.guardrails, CONTROL, alpha)
                    run.write_csv("guardrails.csv", guards)
                    wins = winners(results, guards, sealed["primary_metric"], CONTROL, [p.name for p in profiles])
                    run.write_csv("winners.csv", pl.DataFrame(wins))
                    run.finish("analyze", ["results.csv", "guardrails.csv", "winners.csv"], results=results, srm=srm,
                               guardrails=guards, winners=wins)
            with run.stage("explain"):  # the explanation is recomputed unless the report is already done
                if not run.is_done("report"):
                    sample = scale.rows_of(measured, sample=(campaign.seed, EXPLAIN_ROWS))
                    explanation = stages.explain(sample, metrics,
                                                 CONTROL, campaign.seed,
                                                 {c: f"personal data ({k})" for c, k in personal.items()}, alpha,
                                                 correction)
                    factors = variant_factors(results, variants, metrics)
                    run.write_csv("attribution.csv", explanation.attribution)
                    run.write_csv("attribute_lifts.csv", explanation.buckets)
                    run.write_csv("variant_factors.csv", factors)
                    run.finish("explain", ["attribution.csv", "attribute_lifts.csv", "variant_factors.csv"])
            with run.stage("report"):
                if run.reuse("report") is None:
                    facts = {"run_id": run_id, "customers": table["rows"], "profiles": profiles, "hits": hits,
                             "variants": variants, "assignments": assignments, "documents": documents,
                             "backends": backends.model_dump(), "simulation": campaign.simulation, "truth": truth,
                             "policy_version": policy.policy_version, "seconds": run.seconds, "design": power_rows,
                             "declarations": sealed["declarations"], "consent": consent, "personal": personal,
                             "cuped_skipped": {m: c for m, c in exp.covariates.items() if c not in customer_columns},
                             "approval": approval, "send": sealed.get("send") or send_facts, "guardrails": guards,
                             "outcome_counts": outcome_counts, "winners": wins}
                    title, sections = campaign_report(facts, results, srm, explanation, factors, exp)
                    markdown = to_markdown(title, sections)
                    run.write_text("report.md", markdown)
                    run.write_text("report.html", to_html(title, sections))
                    stages.publish_report(markdown, audit_summary(variants, run.file("audit_log.csv")),
                                          key=artifact_key(run_id))
                    run.finish("report", ["report.md", "report.html"])
            manifest = build_manifest(run, run_id, campaign, policy, backends, inputs, audit, truth, table["rows"], assignments,
                                      variants, power_rows, simulated=not export)
            manifest.update(send=sealed.get("send") or send_facts,
                            outcomes_read_back=outcome_counts, guardrails_flagged=int(guards["flagged"].sum()),
                            consent=consent, declarations=sealed["declarations"], personal_data_columns=personal,
                            approval=approval, stages_reused=run.reused, **scale.record(), merge_values_unused=unused,
                            cuped_skipped={m: c for m, c in exp.covariates.items() if c not in customer_columns})
            if hasattr(generator, "usage_report"):  # tokens and cost of a model-backed generator
                manifest["generation_usage"] = generator.usage_report()
            run.write_json("manifest.json", manifest)
            seal(run.path)
            run.current = "report"
            run.status("complete")
        except Exception as e:  # Prefect's pause/abort signals are BaseExceptions and pass untouched
            if isinstance(e, InputError) and events and run.is_done("export") and not run.is_done("outcomes"):
                run.status("awaiting_outcomes", events_refused=public_message(e))  # a wrong file changes nothing
            else:
                run.fail(e, public_message(e))
            raise
        return {"status": "complete", "run_dir": str(run.path), "results": results, "srm": srm, "variants": variants,
                "manifest": manifest}
    finally:
        run.release()
        scale.close()  # and the staging folder: pages of a refused run, or a resumed run's second copy


def gate(run: RunDir, audit: AuditLog, approve_as: str | None, approving: dict | None = None) -> dict | None:
    """The approval gate: a recorded decision, `cpo approve`'s approval (`approving`: by, comment and the SHA-256
    of the design.json it was given on; recorded here, after every check of the run), an approval given in
    advance, the Resume form of a deployment run in the Prefect UI, or None (the run stops here, awaiting
    approval)."""
    run.current = "approval"
    approval = approval_of(run)
    if approval is None and approving:
        if sha256_of(run.path / "design.json") != approving["design_sha256"]:
            raise InputError(f"{run.path}: design.json changed while {approving['by']} was approving it; nothing "
                             "was approved. Read design.md again, then approve")
        approval = record_decision(run, audit, "approve", approving["by"], approving["comment"], "cpo approve")
    if approval is None and approve_as:
        approval = record_decision(run, audit, "approve", approve_as, "approved in advance (--approve-as)",
                                   "in advance")
    if approval is None and in_deployment():
        run.status("awaiting_approval", waiting_in="Prefect UI (Resume form)")
        answer = wait_for_approval(run.path / "design.md")
        approval = record_decision(run, audit, "approve" if answer.approve else "reject", answer.approver,
                                   answer.comment or "", "Prefect UI")
    if approval is not None:
        check_sealed(run, approval)
        if not (run.path / "approval.json").exists():
            run.write_json("approval.json", approval)  # the copy of what the log records
        if not run.is_done("approval"):
            run.finish("approval", ["approval.json"])
    return approval


def ended(run: RunDir, approval: dict | None, design: dict) -> dict:
    """The run stops at the gate: awaiting approval, or rejected (nothing is sent either way). Sealed, so the
    design the manager reads (design.md) and the decision's copy are evidence too."""
    seal(run.path)
    if approval is None:
        run.status("awaiting_approval")
        logger = get_run_logger()
        logger.info("design ready for approval: %s", run.path / "design.md")
        return {"status": "awaiting_approval", "run_dir": str(run.path), "design": design}
    run.status("rejected", by=approval["by"], reason=approval["text"])
    return {"status": "rejected", "run_dir": str(run.path), "design": design, "approval": approval}


def exported(audit_path: Path) -> str | None:
    """The SHA-256 of the sends.csv the audit log records as exported (the sends went out, whatever has become
    of the files since), or None."""
    from tasks.safety.audit import read_rows

    try:
        rows = read_rows(audit_path) if audit_path.exists() else []
    except (OSError, UnicodeDecodeError, csv.Error):
        raise InputError(f"{audit_path}: the audit log cannot be read; `cpo audit verify` says more") from None
    return next((r.get("content_sha256") or "?" for r in reversed(rows) if r.get("event") == "export"), None)


def awaiting_outcomes(run: RunDir, run_id: str, design: dict, merge_values_unused: int | None) -> dict:
    """Exported: the run waits for `cpo outcomes`; its manifest says so (nothing measured yet, nothing simulated)
    and counts the recipients whose merge values were not used (not a name: the fallback took their place)."""
    manifest = {"run_id": run_id, "status": "awaiting_outcomes", "simulated": False, "awaiting_outcomes": True,
                "sends": {"file": "sends.csv", "sha256": sha256_of(run.path / "sends.csv"),
                          "merge_values_unused": merge_values_unused},
                "seconds": run.seconds}
    run.write_json("manifest.json", manifest)
    seal(run.path)
    run.status("awaiting_outcomes")
    get_run_logger().info("sends exported: %s; next: cpo outcomes %s --events FILE", run.path / "sends.csv", run.path)
    return {"status": "awaiting_outcomes", "run_dir": str(run.path), "design": design}


def screen_control(screener, audit, control):
    """The business-as-usual message is screened like every variant; blocked, the run stops (exit 3)."""
    if control is None:
        return None
    [control] = stages.screen(screener, [control], audit)
    if control.status != "passed":
        row = audit.lookup(control) or {}
        raise SafetyGateError(f"the control message (control_message in the campaign config) was blocked: "
                              f"{row.get('reason', 'see audit_log.csv')}. Change it, or set control_message.email: "
                              "false to send control nothing")
    return control


def generate_and_screen(generator, screener, audit, profiles, hits, by_id, campaign) -> list:
    """Generate every slot (segments in parallel), screen it, regenerate blocked slots as the plan says."""
    gen = campaign.generation
    plan = SlotPlan(gen.strategies, gen.variants_per_segment, gen.max_attempts, [p.name for p in profiles])
    docs_of = {p.name: [by_id[h.document_id] for h in hits[p.name]] for p in profiles}
    pending, everything = plan.first(), []
    while pending:
        futures = [stages.generate.submit(generator, p, docs_of[p.name], pending[p.name], plan.avoid[p.name],
                                          plan.spare(p.name)) for p in profiles if pending.get(p.name)]
        fresh = [v for f in futures for v in f.result()]
        plan.written(fresh)
        screened = stages.screen(screener, fresh, audit)
        everything += screened
        pending = plan.after(screened)
    return everything


def variant_record(v) -> dict:
    return {"variant_id": v.variant_id, "segment": v.segment, "subject": v.subject, "body": v.body,
            "citations": v.citations, "status": v.status, "strategy": v.strategy, "slot": v.slot,
            "attempt": v.attempt, "preheader": v.preheader, "generator": v.generator,
            "claims": [c.model_dump() for c in v.claims]}

