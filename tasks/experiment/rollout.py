"""Rolling out a measured winner: the next send is a campaign whose only treatment per segment is the winner.

A rollout reads an analysed run (real outcomes, never simulated ones), takes each segment's winner from its
winners.csv (the arm that won on the sealed primary metric without failing a guardrail, or control), and
builds a new campaign on the current customer file: the same segmentation method re-fitted and matched by
segment name, the winning message as that segment's one treatment (`treatment_1`), and a holdout share that
keeps receiving control's message, so the lift goes on being measured. The messages are screened again under
today's policy in the new run's own audit log; the approval gate and the export are the same as any run's.
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from tasks.errors import InputError
from tasks.experiment.assign import CONTROL
from tasks.files import unneutralised
from tasks.lifecycle import run_id_of
from tasks.privacy import email_key, id_key
from tasks.records import Variant


def load_source(run_dir: str | Path) -> dict:
    """The analysed run to roll out: its id, inputs, winners, messages, and the customers who must not be
    emailed again (unsubscribed, complained or bounced in it). Refused (exit 2) unless its evidence verifies
    (`cpo audit verify`, with CPO_AUDIT_KEY), it is complete and its outcomes were read back from real events."""
    from tasks.safety.audit import read_rows
    from tasks.safety.verify import verify

    run = Path(run_dir)
    status = _json(run / "run_status.json") or {}
    if status.get("status") != "complete":
        raise InputError(f"{run}: not a completed run (status: {status.get('status', 'none')}); roll out a run whose "
                         "outcomes were read back and analysed (cpo outcomes)")
    checked = verify(run)
    if not checked.ok:
        raise InputError(f"{run}: its evidence does not verify, so its winners cannot be trusted: "
                         + "; ".join(checked.problems[:3]))
    if not any(r["event"] == "outcomes" for r in read_rows(run / "audit_log.csv")):
        raise InputError(f"{run}: its outcomes were SIMULATED (its audit log records no outcomes read back); a "
                         "rollout needs a winner measured on real outcomes (run with --send export, then cpo outcomes)")
    inputs = _json(run / "run_inputs.json")
    variants = {}
    for line in (run / "variants.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("status") == "passed":
                variants[record["variant_id"]] = Variant(**record)
    control = _json(run / "control_message.json")
    recipients = pl.read_parquet(_recipient_files(run), columns=["customer_id", "unsubscribed", "complained",
                                                                  "bounced"])
    harmed = recipients.filter((pl.col("unsubscribed") == 1) | (pl.col("complained") == 1) | (pl.col("bounced") == 1))
    harmed_ids = set(harmed.select(id_key(pl.col("customer_id"))).to_series().to_list())
    return {"run_id": run_id_of(run), "path": str(run.resolve()), "inputs": inputs,
            "winners": pl.read_csv(run / "winners.csv", infer_schema_length=None).to_dicts(),
            "variants": variants, "control": Variant(**control) if control else None,
            "primary_metric": (_json(run / "design.json") or {}).get("primary_metric"),
            "opted_out_ids": harmed_ids, "opted_out_emails": harmed_addresses(run / "sends.csv", harmed_ids),
            "suppress": list((inputs["parameters"].get("suppress") or []))}


def harmed_addresses(sends: Path, harmed_ids: set[str]) -> set[str]:
    """The addresses (trimmed, lower-cased) the harmed customers were sent to, from sends.csv (verified against
    its export row): today's file may give them other ids, or another record may share the address."""
    if not harmed_ids:
        return set()
    sent = (pl.scan_csv(sends, infer_schema=False).filter(pl.col("seed") == "0")
            .select(id_key(unneutralised(pl.col("customer_id"))).alias("id"), email_key(pl.col("email")).alias("email"))
            .filter(pl.col("id").is_in(list(harmed_ids)) & pl.col("email").is_not_null() & (pl.col("email") != ""))
            .collect())
    return set(sent["email"].to_list())


def _recipient_files(run: Path) -> list[Path]:
    """Every recipient's outcomes as the outcomes stage recorded them (stages/outcomes.done.json lists each
    partition with its SHA-256): one missing or changed would email again someone who asked not to be."""
    from tasks.safety.anchor import unlike_listed

    marker = _json(run / "stages" / "outcomes.done.json") or {}
    files = [f for f in marker.get("outputs", {}) if Path(f).name.startswith("recipients-")]
    if not files:
        raise InputError(f"{run}: its outcomes stage lists no recipients' outcomes (a run of an earlier cpo version, "
                         "or an edited folder); roll out a run read back by this version")
    for f, _ in unlike_listed(run, "stages/outcomes.done.json"):
        if f in files:
            raise InputError(f"{run}: {f} is missing or changed since the outcomes were read; without it, who "
                             "unsubscribed, complained or bounced cannot be left out: restore the folder")
    return [run / f for f in files]


def winner_variants(source: dict, segments: list[str]) -> tuple[list[Variant], list[dict]]:
    """The winning message of each segment as the rollout's treatment_1 (slot 1), and one line per segment
    saying what it receives. A segment whose winner is control, or that the source run did not have, gets
    control's message only."""
    by_segment = {w["segment"]: w for w in source["winners"]}
    chosen, plan = [], []
    for seg in segments:
        win = by_segment.get(seg)
        if win is None:
            plan.append({"segment": seg, "arm": CONTROL, "variant_id": None,
                         "why": "no such segment in the source run: control's message"})
            continue
        if win["arm"] == CONTROL:
            plan.append({"segment": seg, "arm": CONTROL, "variant_id": None, "why": win["reason"]})
            continue
        slot = int(str(win["arm"]).rsplit("_", 1)[-1])
        matches = [v for v in source["variants"].values() if v.segment == seg and v.slot == slot]
        if len(matches) != 1:
            raise InputError(f"{source['path']}: segment {seg}'s winner {win['arm']} has {len(matches)} passed "
                             "variants in variants.jsonl; expected exactly one")
        v = matches[0]
        chosen.append(v.model_copy(update={"slot": 1, "status": "pending"}))
        plan.append({"segment": seg, "arm": "treatment_1", "variant_id": v.variant_id,
                     "why": f"won as {win['arm']} in {source['run_id']}: {win['reason']}"})
    return chosen, plan


def _json(path: Path):
    try:
        return json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
