"""The `cpo` command line. Heavy imports live inside each command so `--help` is instant.

Exit codes: 0 success; 2 invalid input or config; 3 the safety gate stopped the run; 1 anything else.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import traceback
from contextlib import contextmanager

# No network here: keep Prefect's temporary server and GX from phoning home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# A loaded machine starts Prefect's temporary server slowly; its default 20 s wait made parallel runs fail.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def parse_pairs(pairs: list[str] | None, flag: str = "--column",
                form: str = "CANONICAL=SOURCE (e.g. recency_days=last_engagement_days)") -> dict[str, str]:
    from tasks.errors import InputError

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{flag} expects {form}, got {pair!r}")
        if out.get(key.strip(), value.strip()) != value.strip():
            raise InputError(f"{flag} {key.strip()}= is given twice ({out[key.strip()]!r} and {value.strip()!r}); "
                             "give it once")
        out[key.strip()] = value.strip()
    return out


def cmd_run(args) -> int:
    start_server_early()
    import flows.campaign  # noqa: F401 - the flow's imports run while the temporary server boots
    from flows.server import adopt, launched

    if launched():  # GX is imported while the temporary server boots; otherwise lazily, after the folder's lock
        warm_imports()
    adopt()

    return carry_campaign(customers=args.customers, transactions=args.transactions, content=args.content,
                          config=args.config, columns=parse_pairs(args.column), out=args.out, seed=args.seed,
                          variants_per_segment=args.variants_per_segment, all_opted_in=args.all_opted_in,
                          approve_as=args.approve_as, send=args.send, suppress=args.suppress, seed_list=args.seed_list)


def carry_campaign(tag: str = "campaign", **parameters) -> int:
    """Run (or resume) the campaign flow with a spinner in a terminal, and print where it stopped."""
    from flows.campaign import campaign_flow
    from prefect import tags

    with tags("cpo", tag), stage_progress():
        result = campaign_flow(**parameters)
    print_outcome(result)
    approving = parameters.get("approving")
    if approving and result.get("status") == "rejected":  # someone else decided between the check and the gate
        print(f"error: the approval by {approving['by']} was not recorded: the run was rejected first",
              file=sys.stderr)
        return 2
    return 0


def cmd_rollout(args) -> int:
    """A new run that sends each segment's measured winner, with a holdout, through the same approval gate."""
    from pathlib import Path

    from tasks.errors import InputError
    from tasks.experiment.rollout import load_source

    if args.holdout is not None and not 0 < args.holdout <= 0.5:
        raise InputError(f"--holdout {args.holdout}: the share kept on control's message must be above 0 and at "
                         "most 0.5 (0.1 keeps a tenth measuring)")
    source = load_source(args.run_dir)
    given = source["inputs"]["parameters"]
    return carry_campaign("rollout", customers=args.customers, content=given.get("content"),
                          config=given.get("config"), columns={**(given.get("columns") or {}), **parse_pairs(args.column)},
                          seed=given.get("seed"), all_opted_in=given.get("all_opted_in"), out=args.out,
                          approve_as=args.approve_as,
                          suppress=[*source["suppress"], *(args.suppress or [])],  # the source's lists too
                          seed_list=args.seed_list, rollout_of=str(Path(args.run_dir)), holdout=args.holdout)


def cmd_outcomes(args) -> int:
    """Read the email service's events back into the run, then finish it: analysis, explanation, report."""
    from pathlib import Path

    from tasks.errors import InputError
    from tasks.rundir import RunDir

    run = RunDir(args.run_dir)
    inputs = run.read_json("run_inputs.json") if run.path.is_dir() else None
    status = (run.read_json("run_status.json") or {}).get("status") if run.path.is_dir() else None
    if not Path(args.events).is_file():
        raise InputError(f"{args.events}: events file not found")
    if inputs is None or not (run.path / "sends.csv").is_file():
        raise InputError(f"{args.run_dir}: no exported sends here (status: {status or 'no run'}); outcomes are read "
                         "back into a run made with --send export and approved")
    return carry_campaign(**inputs["parameters"], out=args.run_dir, events=args.events, events_format=args.format)


def start_server_early() -> None:
    """Check the settings read from the environment, then launch Prefect's temporary server (when one will be
    needed), so it boots on the other core while this process imports Prefect, the flow and GX."""
    from config import load_backends, load_scale
    from flows.server import prestart

    load_backends()  # a wrong backend setting is an input error before any work (or server start)
    load_scale()  # so is a wrong CPO_TASK_RUNNER or CPO_PARTITION_ROWS
    prestart()


def warm_imports() -> None:
    """Great Expectations validates every run's customers (its import is the slowest, ~3 s): imported while
    Prefect's temporary server starts, instead of after it."""
    import great_expectations  # noqa: F401


@contextmanager
def stage_progress():
    """In a terminal, a spinner naming the stage that runs (long stages are otherwise silent); nothing when
    the output is a file or a pipe."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    from tasks.rundir import RunDir

    spinner = Console(stderr=True).status("checking the inputs", spinner="dots")
    RunDir.on_stage = staticmethod(lambda stage: spinner.update(f"stage {stage}"))
    try:
        with spinner:
            yield
    finally:
        RunDir.on_stage = None


def print_outcome(result: dict) -> None:
    run_dir = result["run_dir"]
    if result["status"] == "awaiting_approval":
        design = result["design"]
        print(f"\nThe design is ready for approval: {run_dir}/design.md")
        print(f"  {len(design['variants'])} variants, arms {sorted({a['arm'] for a in design['arms']})}, "
              f"primary metric {design['primary_metric']}; nothing has been sent.")
        print(f"  approve: cpo approve {run_dir} --by NAME [--comment TEXT]")
        print(f"  reject:  cpo reject {run_dir} --by NAME --reason TEXT")
    elif result["status"] == "awaiting_outcomes":
        print(f"\nApproved and exported: {run_dir}/sends.csv (one row per recipient; seeds marked seed=1).")
        print("  Load it into your email service; when the events are in, read them back:")
        print(f"  cpo outcomes {run_dir} --events FILE --format generic|sendgrid|mailchimp")
    elif result["status"] == "rejected":
        print(f"\nRejected by {result['approval']['by']}: {result['approval']['text']}. Nothing was sent. ({run_dir})")
    else:
        print_summary(result)


def cmd_approve(args, decision: str = "approve") -> int:
    """Record the manager's decision at the gate; an approval then carries the run to the end."""
    from pathlib import Path

    from tasks.errors import InputError
    from tasks.lifecycle import approval_of, record_decision, run_id_of
    from tasks.rundir import RunDir, sha256_of
    from tasks.safety.audit import AuditLog

    run = RunDir(args.run_dir)
    if not run.path.is_dir():
        raise InputError(f"{args.run_dir}: no run folder here")
    run.acquire()  # first: two approvals at once cannot both be recorded
    status = run.read_json("run_status.json") or {}
    inputs = run.read_json("run_inputs.json")
    if status.get("status") != "awaiting_approval" or inputs is None:
        raise InputError(f"{args.run_dir}: not awaiting approval (status: {status.get('status', 'no run here')})")
    recorded = approval_of(run)
    if recorded is not None and recorded["decision"] != decision:
        raise InputError(f"{args.run_dir}: already {recorded['decision']}d by {recorded['by']}")
    if not (args.by or "").strip():
        raise InputError("an approval or rejection must name who decides (--by NAME)")
    if decision == "reject":  # nothing runs after a rejection: recorded now
        if recorded is None:
            audit = AuditLog(run.file("audit_log.csv"), run_id_of(run.path), inputs["policy_version"])
            recorded = record_decision(run, audit, decision, args.by, args.reason, "cpo reject")
        run.release()
        run.status("rejected", by=recorded["by"], reason=recorded["text"])
        print(f"{args.run_dir}: rejected by {recorded['by']}; nothing was sent.")
        return 0
    if recorded is None and not run.is_done("design"):
        raise InputError(f"{args.run_dir}: design.json or design.md was edited after the run wrote it and before "
                         "anyone approved it (stages/design.done.json holds their SHA-256): it is not this run's "
                         "design, so nothing was approved. Run the same `cpo run` command again to write the design "
                         "anew, read it, then approve")
    approving = {"by": args.by.strip(), "comment": args.comment or "",
                 "design_sha256": sha256_of(run.path / "design.json")}  # the design this approver read
    run.release()
    # The approval is recorded by the run itself at its gate, once every check passed (inputs, policy, content,
    # settings): an approve the run refuses leaves nothing behind.
    print(f"{args.run_dir}: approval by {approving['by']}: checking the run, then recording it and continuing.")
    from flows.server import adopt, prestart

    prestart()
    adopt()
    return carry_campaign(**inputs["parameters"], out=args.run_dir, approving=approving)


def cmd_serve(args) -> int:
    """Serve the campaign flow as a Prefect deployment on this machine: scheduled or triggered runs execute
    here, and each waits at the approval gate for the Resume form in the Prefect UI."""
    import os

    from flows.campaign import campaign_flow
    from tasks.errors import InputError

    if not os.environ.get("PREFECT_API_URL"):
        raise InputError("cpo serve needs a running Prefect server: `prefect server start`, then "
                         "export PREFECT_API_URL=http://127.0.0.1:4200/api")
    if not os.environ.get("CPO_RUNS_DIR"):
        raise InputError("cpo serve needs CPO_RUNS_DIR: the folder where deployment runs write their run folders")
    parameters = {k: v for k, v in {"customers": args.customers, "content": args.content,
                                     "config": args.config}.items() if v}
    campaign_flow.serve(name=args.name, cron=args.cron, parameters=parameters, tags=["cpo", "campaign"],
                        description="A cpo campaign; each run waits at the approval gate (Resume form).",
                        limit=args.limit)
    return 0


def cmd_status(args) -> int:
    from pathlib import Path

    from tasks.errors import InputError
    from tasks.lifecycle import next_command
    from tasks.rundir import RunDir

    run = RunDir(args.run_dir)
    status = run.read_json("run_status.json")
    if not isinstance(status, dict) or not isinstance(status.get("status"), str):
        raise InputError(f"{args.run_dir}: no readable run_status.json: not a run folder, or it was edited")
    if status["status"] == "running" and not run.alive_elsewhere():
        status = {**status, "status": "crashed",
                  "message": f"pid {status.get('pid')} is gone; it stopped during stage '{status.get('stage')}'"}
    print(f"{args.run_dir}: {status['status']} (stage {status.get('stage')}, updated {status.get('updated_at')})")
    for key in ("error", "message", "by", "reason"):
        if status.get(key):
            print(f"  {key}: {status[key]}")
    done = status.get("stages_done") if isinstance(status.get("stages_done"), list) else []
    print(f"  stages done: {', '.join(map(str, done)) or 'none'}")
    print(f"  next: {next_command(Path(args.run_dir), status)}")
    return 0


def print_summary(result: dict) -> None:
    variants = result["variants"]
    passed = sum(v.status == "passed" for v in variants)
    print(f"Variants: {passed}/{len(variants)} passed screening ({passed / max(1, len(variants)):.1%})")
    print_lifts(result, "SIMULATED engagement" if result.get("manifest", {}).get("simulated", True)
                else "MEASURED outcomes")
    design = result["manifest"]["design"]
    blind = [d for d in design["arms"] if d["detectable"] is False]
    if blind:
        smallest = min(d["mde_rel"] for d in blind)
        print(f"  NOTE: this design cannot detect a {design['target_lift']:.0%} lift in {len(blind)} of "
              f"{len(design['arms'])} arm x metric comparisons (smallest detectable: {smallest:.0%}); see the report.")


def print_lifts(result: dict, what: str) -> None:
    import polars as pl

    from tasks.report import fmt

    print(f"\nRun directory: {result['run_dir']}")
    print(f"Headline lifts ({what}, all customers):")
    overall = result["results"].filter(pl.col("segment") == "all")
    for r in overall.to_dicts():
        print(f"  {r['metric']:<10} {r['arm']:<12} {fmt(r['rel_lift'], 'pct'):>8}  "
              f"95% CI [{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]  "
              f"p_adj {fmt(r['p_value_adjusted'], 'p')}{'  *' if r['significant'] else ''}"
              f"{'  (few events)' if r['note'] == 'few_events' else ''}"
              f"{'  (relative interval unbounded: the control mean is too uncertain)' if r['note'] == 'rel_ci_unbounded' else ''}")
    for check in result["srm"]:
        if check["mismatch"]:
            print(f"  WARNING: sample-ratio mismatch in {check['segment']} (p={check['p_value']:.2g})")


def cmd_analyze(args) -> int:
    from flows.analysis import analysis_flow

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    result = analysis_flow(outcomes=args.outcomes, arm_column=args.arm_column, control=args.control, metrics=metrics,
                           segment_column=args.segment_column, customers=args.customers,
                           columns=parse_pairs(args.column), out=args.out, weights=args.weights,
                           covariates=parse_pairs(args.covariate, "--covariate", "METRIC=COLUMN") or None, alpha=args.alpha,
                           correction=args.correction, seed=args.seed, caps=parse_caps(args.cap, args.no_cap))
    print_lifts(result, "observed outcomes")
    return 0


def parse_caps(pairs: list[str] | None, off: bool) -> dict[str, float] | None:
    """--cap METRIC=PERCENTILE (repeatable) or --no-cap; None keeps the default (revenue-like metrics at 0.99)."""
    from tasks.errors import InputError

    if off:
        return {}
    caps = {}
    for metric, value in parse_pairs(pairs, "--cap", "METRIC=PERCENTILE (e.g. spend=0.99)").items():
        try:
            caps[metric] = float(value)
        except ValueError:
            raise InputError(f"--cap {metric}={value}: the percentile must be a number, e.g. 0.99") from None
        if not 0.5 < caps[metric] < 1:
            raise InputError(f"--cap {metric}={value}: the percentile must be between 0.5 and 1, e.g. 0.99")
    return caps or None


def cmd_validate(args) -> int:
    from pathlib import Path

    from tasks.checkpoints import run_checkpoint
    from tasks.errors import InputError
    from tasks.ingest import load_customers, resolve_consent

    columns = parse_pairs(args.column)
    df = load_customers(args.customers, columns, args.transactions)
    df, consent = resolve_consent(df, columns, args.all_opted_in, Path(args.customers))
    result = run_checkpoint("customers", df)
    if not result.success:
        raise InputError(f"{args.customers}: customer data failed validation\n{result.summary()}")
    print(f"{args.customers}: {df.height} customers, all {result.evaluated} expectations met; consent from "
          f"{consent['column'] or 'a declaration'} ({consent['rule']})")
    return 0


def cmd_screen(args) -> int:
    from datetime import date
    from pathlib import Path

    from config import load_backends, load_settings
    from flows.campaign import SAMPLE_CONTENT
    from tasks.content import load_documents
    from tasks.errors import InputError
    from tasks.files import write_csv
    from tasks.safety import Screener, make_harm_scorer
    from tasks.safety.batch import read_messages, screen_rows
    from tasks.safety.rules import Context

    OUT_FORMATS = {".csv": write_csv, ".jsonl": lambda df, path: df.write_ndjson(path),
                   ".parquet": lambda df, path: df.write_parquet(path)}
    campaign, policy, brand = load_settings(args.config)
    backends = load_backends()
    documents = {d.id: d for d in load_documents(args.content or SAMPLE_CONTENT)}
    context = Context(brand, policy, documents, date.today(), campaign.generation.subject_max_chars)
    source, out = Path(args.input), Path(args.out)
    if out.suffix.lower() not in OUT_FORMATS:
        raise InputError(f"--out {out}: write .csv, .jsonl or .parquet (the suffix picks the format)")
    if not out.parent.is_dir() or out.is_dir():
        raise InputError(f"--out {out}: " + (f"the folder {out.parent} does not exist; create it first"
                                             if not out.parent.is_dir() else "is a folder; give a file name"))
    messages = read_messages(source, args.text_column, args.subject_column)
    frames, summary = [], []
    for kind in args.screener or [backends.screener]:  # several --screener: one verdict per row and backend
        screener = Screener(make_harm_scorer(kind, brand.competitors), context)
        verdicts = screen_rows(messages, screener, args.text_column, args.subject_column, source)
        blocked = int((verdicts["decision"] == "block").sum()) if verdicts.height else 0
        summary.append(f"{screener.name}: {verdicts.height - blocked} pass, {blocked} block")
        frames.append(verdicts)
    import polars as pl

    verdicts = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    OUT_FORMATS[out.suffix.lower()](verdicts, out)
    print(f"screened {messages.height} messages + local rules (policy {policy.policy_version}): "
          f"{'; '.join(summary)} -> {out}")
    return 0


def cmd_audit_verify(args) -> int:
    from tasks.safety.verify import verify

    result = verify(args.run_dir, allow_unkeyed=args.allow_unkeyed)
    for p in result.problems:
        print(f"FAIL {p}")
    if result.checked:
        print("Evidence checked:")
    for line in result.checked:
        print(f"  {line}")
    for w in result.warnings:
        print(f"WARNING {w}")
    if result.problems:
        n = len(result.problems)
        print(f"{args.run_dir}: audit verification FAILED ({n} problem{'s' if n != 1 else ''})")
        return 1
    print(f"{args.run_dir}: audit OK ({result.status}) — every variant screened on the text it carries, chain "
          "intact and anchored, only passed variants assigned, under the run's policy")
    return 0


def cmd_audit_export(args) -> int:
    from tasks.safety.audit import export

    n = export(args.run_dir, args.out)
    print(f"wrote {n} audit rows to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cpo", description="Customer Personalization Orchestrator")
    p.add_argument("--debug", action="store_true", help="show tracebacks of input and safety-gate errors")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a whole campaign")
    run.add_argument("--customers", help="customer CSV or Parquet (default: bundled sample)")
    run.add_argument("--transactions", help="CSV of customer_id,date,amount; RFM is computed from it")
    run.add_argument("--content", help="folder of .md/.txt/.json documents or one .jsonl (default: bundled sample)")
    run.add_argument("--config", help="campaign.yaml (policy.yaml and brand.yaml beside it are used if present)")
    run.add_argument("--column", action="append", metavar="CANONICAL=SOURCE", help="map an input column")
    run.add_argument("--out", help="run directory (default runs/<campaign>-<UTC timestamp>)")
    run.add_argument("--seed", type=int)
    run.add_argument("--variants-per-segment", type=int)
    run.add_argument("--approve-as", metavar="NAME",
                     help="approve the design in advance (unattended runs); the audit log records it")
    run.add_argument("--all-opted-in", metavar="BASIS",
                     help="declare that EVERY customer in the file consented to email, and why (when the file has "
                          "no opt-in column); recorded in the manifest and the report")
    run.add_argument("--send", choices=["simulate", "export"],
                     help="simulate engagement (default), or export sends.csv for your email service after approval")
    run.add_argument("--suppress", action="append", metavar="PATH",
                     help="CSV of emails or customer ids never to contact (unsubscribes, bounces, complaints, "
                          "objections); repeatable. Suppressed customers are removed before any model sees them")
    run.add_argument("--seed-list", metavar="PATH", help="CSV of internal addresses that receive every message; "
                                                         "never analysed")
    run.set_defaults(func=cmd_run)

    outcomes = sub.add_parser("outcomes", help="read a sent campaign's events back and finish its analysis")
    outcomes.add_argument("run_dir")
    outcomes.add_argument("--events", required=True, help="the email service's events (CSV or JSON)")
    outcomes.add_argument("--format", choices=["generic", "sendgrid", "mailchimp"], default="generic")
    outcomes.set_defaults(func=cmd_outcomes)

    rollout = sub.add_parser("rollout", help="send an analysed run's winner per segment, with a holdout")
    rollout.add_argument("run_dir", help="the analysed run (real outcomes) whose winners to send")
    rollout.add_argument("--customers", required=True, help="today's customer file")
    rollout.add_argument("--holdout", type=float, help="share kept on control's message (default: rollout.holdout "
                                                       "in the campaign config, 0.1)")
    rollout.add_argument("--out", required=True, help="the new run folder")
    rollout.add_argument("--approve-as", metavar="NAME", help="approve the rollout's design in advance")
    rollout.add_argument("--column", action="append", metavar="CANONICAL=SOURCE", help="map an input column")
    rollout.add_argument("--suppress", action="append", metavar="PATH", help="as for cpo run")
    rollout.add_argument("--seed-list", metavar="PATH", help="as for cpo run")
    rollout.set_defaults(func=cmd_rollout)

    approve = sub.add_parser("approve", help="approve a run's design and carry the run to the end")
    approve.add_argument("run_dir")
    approve.add_argument("--by", required=True, help="who approves")
    approve.add_argument("--comment", default="")
    approve.set_defaults(func=cmd_approve)
    reject = sub.add_parser("reject", help="reject a run's design: the run ends, nothing is sent")
    reject.add_argument("run_dir")
    reject.add_argument("--by", required=True, help="who rejects")
    reject.add_argument("--reason", required=True)
    reject.set_defaults(func=lambda args: cmd_approve(args, "reject"))
    serve = sub.add_parser("serve", help="serve the campaign as a Prefect deployment on this machine")
    serve.add_argument("--name", default="campaign", help="deployment name (runs: prefect deployment run campaign/NAME)")
    serve.add_argument("--cron", help="schedule, e.g. '0 7 * * 1' (Mondays 07:00 UTC); none: triggered runs only")
    serve.add_argument("--customers")
    serve.add_argument("--content")
    serve.add_argument("--config")
    serve.add_argument("--limit", type=int, default=1, help="runs at once (default 1)")
    serve.set_defaults(func=cmd_serve)
    status = sub.add_parser("status", help="what a run is doing, what it has done and what to do next")
    status.add_argument("run_dir")
    status.set_defaults(func=cmd_status)

    ana = sub.add_parser("analyze", help="analyze an experiment from an outcome file")
    ana.add_argument("--outcomes", required=True, help="CSV or Parquet, one row per unit")
    ana.add_argument("--arm-column", default="arm")
    ana.add_argument("--control", help="the control arm's label (default: 'control')")
    ana.add_argument("--metrics", help="comma-separated metric columns (default: known names such as opened, revenue)")
    ana.add_argument("--segment-column", help="column to break results down by")
    ana.add_argument("--customers", help="customer file joined on customer_id for attribution")
    ana.add_argument("--column", action="append", metavar="CANONICAL=SOURCE", help="map a customer-file column")
    ana.add_argument("--weights", help="intended arm weights for the SRM check, e.g. control=0.5,treatment=0.5")
    ana.add_argument("--covariate", action="append", metavar="METRIC=COLUMN", help="pre-period covariate for CUPED")
    ana.add_argument("--cap", action="append", metavar="METRIC=PERCENTILE",
                     help="winsorise a metric at a percentile of its non-zero values (default: revenue-like at 0.99)")
    ana.add_argument("--no-cap", action="store_true", help="no winsorising at all")
    ana.add_argument("--alpha", type=float, default=0.05)
    ana.add_argument("--correction", choices=["holm", "bh"], default="holm")
    ana.add_argument("--seed", type=int, default=0)
    ana.add_argument("--out", help="output directory (default runs/analysis-<UTC timestamp>)")
    ana.set_defaults(func=cmd_analyze)

    scr = sub.add_parser("screen", help="screen any messages with the configured screener and policy")
    scr.add_argument("--input", required=True, help="CSV or JSONL, one message per row")
    scr.add_argument("--out", required=True, help="verdicts as .csv, .jsonl or .parquet (the suffix picks the format)")
    scr.add_argument("--text-column", default="text")
    scr.add_argument("--subject-column", default="subject")
    scr.add_argument("--content", help="approved content that citations refer to (default: bundled sample)")
    scr.add_argument("--config", help="campaign.yaml whose folder holds policy.yaml and brand.yaml")
    scr.add_argument("--screener", action="append", choices=["local", "azure", "openai-moderation", "guard-model"],
                     help="harm backend to use instead of CPO_SCREENER; repeat it to compare backends on one file "
                          "(one verdict per row and backend, the `screener` column says which)")
    scr.set_defaults(func=cmd_screen)

    val = sub.add_parser("validate", help="run only the customer-data checkpoint")
    val.add_argument("--customers", required=True)
    val.add_argument("--transactions")
    val.add_argument("--column", action="append", metavar="CANONICAL=SOURCE")
    val.add_argument("--all-opted-in", metavar="BASIS", help="as for cpo run")
    val.set_defaults(func=cmd_validate)

    audit = sub.add_parser("audit", help="verify or export a run's audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="exit 0 only if the run's evidence is complete, intact and anchored")
    verify.add_argument("run_dir")
    verify.add_argument("--allow-unkeyed", action="store_true",
                        help="accept an anchor no key checks (CPO_AUDIT_KEY unset): an editor of the folder could "
                             "have forged it; the result says so")
    verify.set_defaults(func=cmd_audit_verify)
    exp = audit_sub.add_parser("export", help="write the audit log as spreadsheet-safe CSV")
    exp.add_argument("run_dir")
    exp.add_argument("--out", required=True)
    exp.set_defaults(func=cmd_audit_export)
    from flows.content import add_parser as add_content_parser  # light module: `cpo content index`

    add_content_parser(sub)
    return p


USER_ERROR_STATE = re.compile(r"Finished in state Failed\(.*\b(?:InputError|SafetyGateError|ScreenerUnavailable)\b")


class UserErrorLog(logging.Filter):
    """Input and safety-gate errors (exit 2 and 3) are one clear message, not a traceback: in the terminal
    the CLI prints it once; in Prefect's log it appears as the masked message alone. `--debug` turns this off."""

    def __init__(self, console: bool):
        super().__init__()
        self.console = console

    def filter(self, record: logging.LogRecord) -> bool:
        from tasks.errors import CpoError, public_message

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, CpoError):
            record.msg, record.args, record.exc_info, record.exc_text = (f"stopped: {public_message(error)}", (),
                                                                         None, None)
            record.cpo_user_error = True
        elif USER_ERROR_STATE.search(str(record.msg)):
            record.cpo_user_error = True  # Prefect's "Finished in state Failed(... InputError: ...)"
        return not (self.console and getattr(record, "cpo_user_error", False))


def quiet_user_errors() -> None:
    import prefect.main  # noqa: F401 - sets up Prefect's logging handlers

    loggers = [logging.getLogger()] + [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
                                       if n.startswith("prefect")]
    for handler in {h for lg in loggers for h in getattr(lg, "handlers", [])}:
        if not any(isinstance(f, UserErrorLog) for f in handler.filters):
            handler.addFilter(UserErrorLog(console="APILogHandler" not in type(handler).__name__))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tasks.errors import CpoError, public_message

    try:
        if args.command == "run":
            start_server_early()
        if not args.debug and args.command in ("run", "analyze", "approve", "reject", "outcomes", "rollout"):
            quiet_user_errors()
        return args.func(args)
    except CpoError as e:
        if args.debug:
            traceback.print_exc()
        print(f"error: {public_message(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - the contract's "anything else"
        if args.debug:
            traceback.print_exc()
        print(f"error: {public_message(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
