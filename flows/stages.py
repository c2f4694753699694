"""Prefect tasks: each wraps a pure function from `tasks/` with retries, logging and artifacts.

Input hashing for caching is off (NO_CACHE): hashing a 1M-row frame would cost more than the stage. Prefect
keeps every task's arguments and return value until the flow ends, so the per-customer tasks take and return
paths (`tasks.partitions.Rows`: a frame described, loaded inside the task), never the customers' rows. Input
errors are never retried; backend calls are.
"""
from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.checkpoints import run_checkpoint
from tasks.errors import CpoError, InputError, SafetyGateError
from tasks.experiment.analysis import analyze_parts, srm_from_counts
from tasks.explain import Explanation
from tasks.explain import explain as explain_effects
from tasks.ingest import load_customers, resolve_consent
from tasks.files import write_parquet
from tasks.partitions import Rows, loaded, rows_in, write_part
from tasks.records import Document, SegmentProfile, Variant
from tasks.retrieval import Retriever, retrieve_for_segments
from tasks.safety import Screener, message_of
from tasks.safety.audit import AuditLog

def _transient(task, task_run, state) -> bool:
    """Retry only failures that can go away: never bad input, a safety-gate stop, or a backend that already
    spent its own bounded retries (CpoError subclasses carry their exit code)."""
    try:
        state.result()
    except CpoError:
        return False
    except Exception:  # noqa: BLE001 - any other failure may be transient
        return True
    return False


@task(name="ingest", cache_policy=NO_CACHE)
def ingest(customers: str, transactions: str | None, columns: dict[str, str], all_opted_in_basis: str | None,
           folder: str, rows: int, off_emails: set[str] = frozenset(), off_ids: set[str] = frozenset(),
           needs_email: bool = False, reserved_ids: tuple[str, ...] = (), seed_emails: tuple[str, ...] = ()) -> dict:
    """Read the customer file (names, types, consent), drop the suppressed customers, check that the ids are
    unique over the whole file and none is `reserved` (the seed list's), and write it as partitions of `rows`
    customers to `folder`. Returns what the run records about it and who may be emailed (counts), never its rows
    (the partitions are the customers now)."""
    from tasks.experiment.assign import eligibility
    from tasks.experiment.sends import check_seeds, refuse_formula_addresses, suppress
    from tasks.partitions import check_unique_ids, write_parts
    from tasks.privacy import pii_columns

    df, consent = resolve_consent(load_customers(customers, columns, transactions), columns, all_opted_in_basis,
                                  Path(customers))
    check_seeds(df, seed_emails, off_emails, customers)
    df, suppressed = suppress(df, off_emails, off_ids)  # before any model sees them
    if needs_email and "email" not in df.columns:
        raise InputError(f"{customers}: --send export needs an email address column (email, or map one with "
                         f"--column email=COLUMN); columns are: {', '.join(df.columns)}")
    if needs_email:
        refuse_formula_addresses(df, customers)
    check_unique_ids(df, customers)
    taken = df.filter(pl.col("customer_id").cast(pl.String).is_in(list(reserved_ids)))["customer_id"].to_list()
    if taken:
        raise InputError(f"{customers}: customer ids {sorted(map(str, taken))[:3]} are the seed list's own ids "
                         "(seed-NNN); rename those customers or leave out --seed-list")
    get_run_logger().info("ingested %d customers, %d columns; consent: %s", df.height, df.width,
                          consent.get("column") or consent["rule"])
    return {"parts": write_parts(df, folder, rows), "table": {"rows": df.height, "columns": df.columns},
            "consent": consent, "personal": pii_columns(df), "suppressed": suppressed, "eligibility": eligibility(df)}


@task(name="retrieve", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2, retry_condition_fn=_transient)
def retrieve(retriever: Retriever, profiles: list[SegmentProfile], top_k: int, today: date):
    return retrieve_for_segments(retriever, profiles, top_k, today)


@task(name="generate", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_transient)
def generate(generator, profile: SegmentProfile, documents: list[Document], slots: dict[int, tuple[str, int]],
             avoid: dict[int, set[str]], spare: list[str]) -> list[Variant]:
    """Variants for one segment: `slots` maps slot -> (strategy, attempt). Slots try not to share a lead
    document; a strategy no retrieved document can serve gives way to the next `spare` strategy."""
    variants, used, spare = [], set(), list(spare)
    for slot, (strategy, attempt) in sorted(slots.items()):
        v = None
        while v is None and strategy:
            v = write_variant(generator, profile, documents, strategy, slot, attempt, avoid.get(slot, set()), used)
            strategy = spare.pop(0) if v is None and spare else (None if v is None else strategy)
        if v is None:
            get_run_logger().warning("segment %s slot %d: no strategy fits the retrieved content", profile.name, slot)
            continue
        used.update(v.citations[:1])
        variants.append(v)
    return variants


def write_variant(generator, profile, documents, strategy, slot, attempt, avoid, used) -> Variant | None:
    for excluded in (avoid | used, avoid):  # prefer a lead document no other slot uses
        try:
            return generator.generate(profile, documents, strategy, slot, attempt, excluded)
        except LookupError:
            continue
    return None


@task(name="screen", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_transient)
def screen(screener: Screener, variants: list[Variant], audit: AuditLog) -> list[Variant]:
    """Screen each variant and append its decision to the audit log before the next; a variant already
    decided (a retried task or a resumed run) keeps its recorded decision and adds no row."""
    out = []
    for v in variants:
        row = audit.lookup(v)
        decision = row["decision"] if row else audit.append(v, screener.screen(message_of(v)))["decision"]
        out.append(v.model_copy(update={"status": "passed" if decision == "pass" else "blocked"}))
    passed = sum(v.status == "passed" for v in out)
    get_run_logger().info("screened %d variants: %d passed, %d blocked", len(out), passed, len(out) - passed)
    return out


@task(name="validate-screening", cache_policy=NO_CACHE)
def validate_screening(variants: list[Variant], audit: AuditLog, docs_dir: Path | None = None) -> None:
    """GX checkpoint before assignment: every variant has a decision and its status matches it."""
    frame = pl.DataFrame([{"variant_id": v.variant_id, "status": v.status,
                           "decision": (audit.lookup(v) or {}).get("decision")} for v in variants],
                         schema={"variant_id": pl.String, "status": pl.String, "decision": pl.String})
    result = run_checkpoint("screening", frame, docs_dir)
    if not result.success:
        raise SafetyGateError(f"screening checkpoint failed; nothing was assigned\n{result.summary()}")


@task(name="analyze", cache_policy=NO_CACHE)
def analyze(outcomes: pl.DataFrame | Rows, metrics: list[str], control: str, alpha: float, correction: str,
            weights: dict | None, segment: str | None = "segment", arm: str = "arm",
            covariates: dict[str, str] | None = None, caps: dict[str, float] | None = None, seed: int = 0,
            key: str = "analysis"):
    parts = outcomes.parts if isinstance(outcomes, Rows) else (lambda: [outcomes])  # partitions: never all at once
    results, arms = analyze_parts(parts, metrics, control, alpha, correction, arm=arm, segment=segment,
                                  covariates=covariates, caps=caps, seed=seed)
    srm = srm_from_counts(arms, weights)
    table = lift_summary(results.filter(pl.col("segment") == "all"))
    create_table_artifact(key=f"{key}-lift-table", table=table, description="Lift per arm and metric (all customers)")
    for row in table:
        get_run_logger().info("%s %s: %s %s, adjusted p %s, %s", row["metric"], row["arm"], row["relative lift"],
                              row["95% interval"], row["adjusted p"], row["verdict"])
    return results, srm


def lift_summary(overall: pl.DataFrame) -> list[dict]:
    """What a manager reads first: lift, interval, adjusted p, verdict; then the counts."""
    from tasks.report import fmt

    return [{"metric": r["metric"], "arm": r["arm"], "relative lift": fmt(r["rel_lift"], "pct"),
             "95% interval": f"[{fmt(r['rel_lift_ci_low'], 'pct')}, {fmt(r['rel_lift_ci_high'], 'pct')}]",
             "adjusted p": fmt(r["p_value_adjusted"], "p"),
             "verdict": "significant" if r["significant"] else "not significant",
             "treatment": f"{fmt(r['rate_treatment'])} (n={r['n_treatment']})",
             "control": f"{fmt(r['rate_control'])} (n={r['n_control']})"} for r in overall.to_dicts()]


@task(name="explain", cache_policy=NO_CACHE)
def explain(frame: pl.DataFrame | Rows, metrics: list[str], control: str, seed: int, exclude: dict[str, str] | set[str], alpha: float,
            correction: str) -> Explanation:
    result = explain_effects(loaded(frame), metrics, control, seed, exclude=exclude, alpha=alpha, correction=correction)
    reliable = sorted({f"{m}/{a}" for (m, a), q in result.qini.items() if q.reliable})
    get_run_logger().info("effect models fitted on %d of %d rows; reliable drivers for: %s", result.n_fit,
                          result.n_total, ", ".join(reliable) or "none")
    return result


def publish_report(markdown: str, audit_summary: list[dict] | None = None, key: str = "analysis") -> None:
    """Artifacts keyed per run, so the newest run of one campaign never replaces another's."""
    create_markdown_artifact(key=f"{key}-report", markdown=markdown, description="Experiment report")
    if audit_summary:
        create_table_artifact(key=f"{key}-audit-summary", table=audit_summary, description="Screening decisions")


@task(name="export-sends", cache_policy=NO_CACHE)
def export_sends(run, audit: AuditLog, pieces: list[str], messages: dict[str, Variant], brand, send,
                 seeds: pl.DataFrame | None, sent_sha: str | None = None, merge_values_unused: int = 0) -> pl.DataFrame:
    """sends.csv (and Parquet for large campaigns) from the partitions' rendered pieces and the seeds' messages,
    after approval, recorded in the audit log as an `export` event carrying its SHA-256. With `sent_sha` (the
    audit log already records the export: a run stopped before its stage was marked done, or whose export
    partitions changed since) nothing is exported again: the pieces rendered again must give the very file that
    was sent, or the run stops. `merge_values_unused` (recipients whose merge values did not read as a name and
    got the fallback) is logged, counted and never named. Returns who among the seeds was sent what, for reading
    the outcomes back."""
    from tasks.experiment.sends import render_sends, seeds_sent
    from tasks.rundir import sha256_of

    nobody = pl.DataFrame(schema={c: pl.String for c in ("customer_id", "email", "segment", "arm", "variant_id")})
    seed_sends = render_sends(nobody, messages, brand, send.merge_fallbacks, audit.run_id,
                              send.list_unsubscribe_mailto, seeds)
    frames = itertools.chain((pl.read_parquet(p) for p in pieces), [seed_sends])
    target = run.path / "sends.csv"
    written = run.write_csv("sends.csv" if sent_sha is None else ".sends.csv.again", frames)
    if sent_sha is not None:
        same = sha256_of(written) == sent_sha
        if same and not target.exists():
            written.replace(target)
        written.unlink(missing_ok=True)
        if not same:
            raise InputError(f"{run.path}: the audit log records an export whose sends.csv cannot be rendered again "
                             "from what this run persisted; nothing was exported again, and this run cannot be "
                             "finished: restore the folder from a backup")
    recipients = rows_in(pieces)
    if recipients + seed_sends.height >= send.parquet_from_rows:  # piece by piece too (a lazy concat holds it all)
        write_parquet(itertools.chain((pl.read_parquet(p) for p in pieces), [seed_sends]), run.file("sends.parquet"))
    if sent_sha is None:
        audit.record_event("export", "record", "cpo", sha256_of(target),
                           f"sends.csv: {recipients} recipients, {seed_sends.height} seed messages")
        get_run_logger().info("exported %d sends (%d to seed addresses)", recipients, seed_sends.height)
    else:
        get_run_logger().warning("the export recorded in the audit log was rendered again from this run's stages and "
                                 "gives the same sends.csv (SHA-256 %s…); nothing was exported again", sent_sha[:12])
    if merge_values_unused:
        get_run_logger().warning("%d recipients' merge values do not read as a name (a link, an address, digits, "
                                 "markup, a sentence): their messages use the fallback (send.merge_fallbacks)",
                                 merge_values_unused)
    return seeds_sent(seed_sends)


@task(name="guardrails", cache_policy=NO_CACHE)
def guardrails(outcomes: pl.DataFrame | Rows, metrics: list[str], control: str, alpha: float) -> pl.DataFrame:
    from tasks.experiment.guardrails import guardrail_table

    if isinstance(outcomes, Rows):  # the few columns a guardrail reads, partition by partition
        outcomes = pl.concat([p.select(c for c in ("arm", "segment", *metrics) if c in p.columns)
                              for p in outcomes.parts()], how="vertical")
    table = guardrail_table(outcomes, metrics, control, alpha)
    for r in table.filter(pl.col("flagged") & (pl.col("segment") == "all")).iter_rows(named=True):
        get_run_logger().warning("guardrail: %s raises %s (%.4f vs %.4f, one-sided p %.3g)", r["arm"], r["metric"],
                                 r["rate_treatment"], r["rate_control"], r["p_value_one_sided"])
    return table


@task(name="read-events", cache_policy=NO_CACHE)
def read_events(run, audit: AuditLog, events_path: str, fmt: str, sends: list[str], seeds: pl.DataFrame,
                folder: str) -> dict:
    """The email service's events read and checked (Great Expectations), their distinct events of this run kept
    in `folder` for the partitions, and what the whole file says (counts, addresses shared by recipients, whether
    it reports deliveries). Refused when the audit log already records outcomes from another file."""
    from tasks.experiment.events import (any_delivered, distinct_events, read_events_info, shared_emails,
                                         validate_events)
    from tasks.rundir import sha256_of
    from tasks.safety.audit import read_rows

    sha = sha256_of(events_path)
    earlier = [r for r in read_rows(audit.path) if r["event"] == "outcomes"] if audit.path.exists() else []
    if earlier and earlier[-1]["content_sha256"] != sha:
        raise InputError(f"{run.path}: the audit log already records outcomes read from another events file "
                         f"(SHA-256 {earlier[-1]['content_sha256'][:12]}…); give that file again to finish the run")
    events, info = read_events_info(events_path, fmt)
    validate_events(events, events_path, run.path / "data_docs")
    distinct, counts = distinct_events(events, info, audit.run_id)
    addresses = pl.concat([pl.scan_parquet(sends).select("email"), seeds.lazy().select("email")])
    return {"events": write_part(distinct, Path(folder) / "events.parquet"), "counts": {**counts, "format": fmt},
            "shared": shared_emails(addresses), "delivered_events": any_delivered(distinct), "sha256": sha,
            "recorded": bool(earlier)}


@task(name="record-outcomes", cache_policy=NO_CACHE)
def record_outcomes(run, audit: AuditLog, events_path: str, read: dict, parts: list[dict],
                    control_emailed: bool) -> dict:
    """The whole file's counts from each partition's; recorded as an `outcomes` audit event with the file's
    SHA-256 (once: the same file again after a crash is not recorded twice), unless no event concerns a recipient:
    then nothing is recorded."""
    from tasks.experiment.events import outcome_counts

    counts = outcome_counts(pl.read_parquet(read["events"], columns=["key_kind", "_key", "event"]), read["counts"],
                            read["shared"], parts)
    if counts["events_used"] == 0:
        dropped = {k: counts.get(k, 0) for k in ("other_run_events", "unknown_recipient_events", "seed_events",
                                                  "ignored_events") if counts.get(k)}
        raise InputError(f"{events_path}: no event in this file concerns a recipient of {audit.run_id} "
                         f"({counts['events_read']} read; dropped: {dropped or 'none'}); is it the right file and "
                         f"--format? Nothing was recorded")
    analysed = sum(p.get("analysed", 0) for p in parts)
    counts = {**counts, "analysed": analysed, "events_sha256": read["sha256"],
              "population": "delivered recipients" if control_emailed else
                            "every assigned customer (control received no email, so there is no delivery to "
                            "condition on: intention to treat)"}
    if not read["recorded"]:
        audit.record_event("outcomes", "record", f"cpo outcomes ({counts['format']})", read["sha256"],
                           f"{Path(events_path).name}: {analysed} recipients analysed of {counts['recipients']}")
    get_run_logger().info("outcomes read: %d events used of %d; %d recipients analysed", counts["events_used"],
                          counts["events_read"], analysed)
    return counts
