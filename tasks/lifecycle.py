"""The life of a run: what it was started with, whether a folder may be resumed, the approval gate.

A folder is one campaign. `run_inputs.json`, written when the run starts, fingerprints everything a decision
depends on (input files, config, policy, brand, strategies, seed, backends); the same command again resumes
from the last completed stage, and any difference refuses the folder: a decision made under one policy is
never reused under another. The approval gate sits after `design`: the manager's approval or rejection is an
audit event carrying the SHA-256 of `design.json`, so the design is sealed when approved.
"""
from __future__ import annotations

from pathlib import Path

from tasks.errors import InputError
from tasks.rundir import RunDir, now, sha256_of
from tasks.safety.anchor import seal

FINGERPRINT = ("inputs", "config", "policy_version", "brand", "strategies_sha256", "backends", "seed")
# `cpo run` options that change the result but no input file or resolved setting: compared as given (they are
# in run_inputs.json's "parameters"). The others are in the fingerprint already (files by SHA-256; --seed,
# --variants-per-segment, --all-opted-in, --send and --holdout in the config) or change nothing a run decides
# (--approve-as; CPO_PARTITION_ROWS and CPO_TASK_RUNNER: the same results whatever the partitioning).
PARAMETERS = {"columns": "--column mapping"}


def run_inputs(parameters: dict, inputs: dict[str, str | None], campaign, policy, brand, backends,
               strategies_path: Path, run_id: str) -> dict:
    return {"run_id": run_id, "parameters": parameters, "created_at": now(),
            "inputs": {k: {"path": v, "sha256": sha256_of(v)} for k, v in inputs.items() if v},
            "config": campaign.model_dump(mode="json"), "policy_version": policy.policy_version,
            "brand": brand.model_dump(mode="json"), "strategies_sha256": sha256_of(strategies_path),
            "backends": backends.model_dump(), "seed": campaign.seed}


def run_id_of(run_dir: Path) -> str:
    """The run's own id, whatever its folder is called now (a folder may be copied, moved or renamed): as
    run_inputs.json records it, else the audit log's first row, else run_status.json. Only a run that has not
    started yet takes its folder's name."""
    import json

    from tasks.safety.audit import read_rows

    run_dir = Path(run_dir)

    def recorded(name: str) -> str | None:
        try:
            value = json.loads((run_dir / name).read_text("utf-8")).get("run_id")
        except (OSError, ValueError, AttributeError):
            return None
        return value if isinstance(value, str) and value else None

    def first_row() -> str | None:
        log = run_dir / "audit_log.csv"
        return next((r.get("run_id") for r in read_rows(log)), None) if log.exists() else None

    return recorded("run_inputs.json") or first_row() or recorded("run_status.json") or run_dir.name


def differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in FINGERPRINT:
        if key == "inputs":
            was, now_ = suppression_as_one(old.get("inputs", {})), suppression_as_one(new["inputs"])
            out += [f"input '{n}'" for n in sorted(set(was) | set(now_))
                    if (was.get(n) or {}).get("sha256") != (now_.get(n) or {}).get("sha256")]
        elif old.get(key) != new[key]:
            out.append({"policy_version": "screening policy", "strategies_sha256": "strategies"}.get(key, key))
    for key, name in PARAMETERS.items():
        if ((old.get("parameters") or {}).get(key) or {}) != ((new.get("parameters") or {}).get(key) or {}):
            out.append(name)
    return out


def suppression_as_one(inputs: dict) -> dict:
    """The suppression lists (suppress_1, suppress_2, ...) as one input: the same files in another order of
    --suppress suppress the same customers."""
    lists = sorted((v or {}).get("sha256") or "" for k, v in inputs.items() if k.startswith("suppress_"))
    return {**{k: v for k, v in inputs.items() if not k.startswith("suppress_")},
            **({"suppress": {"sha256": ",".join(lists)}} if lists else {})}


def begin(run: RunDir, inputs: dict) -> dict | None:
    """Lock the folder and write (or check) run_inputs.json. Returns the previous run's status, if any."""
    previous = run.acquire()
    old = run.read_json("run_inputs.json")
    if old is None and ((run.path / "stages").exists() or (run.path / "audit_log.csv").exists()):
        raise InputError(f"{run.path}: this folder holds a run but no run_inputs.json, so nothing proves what it "
                         f"was started with; it cannot be resumed. Use a new --out.")
    if old is not None:
        changed = differences(old, inputs)
        if changed:
            raise InputError(f"{run.path}: this folder holds a run started with other inputs ({', '.join(changed)} "
                             f"differ); a decision made under one policy or input is never reused under another. "
                             f"Use a new --out.")
    else:
        run.write_json("run_inputs.json", inputs)
    run.begun = True
    return previous


def approval_of(run: RunDir) -> dict | None:
    """The manager's decision as the audit log records it (the evidence; approval.json is its copy). A copy that
    disagrees with the log, or a copy with no row behind it, stops the run: nobody approves by editing a file."""
    from tasks.safety.audit import read_rows

    log = run.path / "audit_log.csv"
    rows = [r for r in read_rows(log) if r.get("event") in ("approval", "rejection")] if log.exists() else []
    copy = run.read_json("approval.json")
    if not rows:
        if copy is not None:
            raise InputError(f"{run.path}: approval.json holds a decision the audit log does not record; "
                             f"decide with cpo approve / cpo reject, never by editing files. Use a new --out.")
        return None
    last = rows[-1]
    decision = {"decision": last["decision"], "by": last["actor"], "text": last["reason"],
                "design_sha256": last["content_sha256"], "at": last["screened_at"]}
    if copy is not None and (copy.get("decision"), copy.get("by"), copy.get("design_sha256")) != (
            decision["decision"], decision["by"], decision["design_sha256"]):
        raise InputError(f"{run.path}: approval.json disagrees with the audit log's {last['event']} by "
                         f"{last['actor']}; the log is the record. Use a new --out.")
    return decision


def record_decision(run: RunDir, audit, decision: str, actor: str, text: str, how: str) -> dict:
    """An approval or rejection: an audit event carrying design.json's SHA-256, and approval.json."""
    if not actor or not actor.strip():
        raise InputError("an approval or rejection must name who decides (--by NAME)")
    if not (run.path / "design.json").exists():
        raise InputError(f"{run.path}: no design.json: the run has not reached the approval gate")
    design_sha = sha256_of(run.path / "design.json")
    event = "approval" if decision == "approve" else "rejection"
    audit.record_event(event, decision, actor.strip(), design_sha, f"{how}: {text}".strip().rstrip(":"))
    record = {"decision": decision, "by": actor.strip(), "text": text, "how": how, "at": now(),
              "design_sha256": design_sha}
    run.write_json("approval.json", record)
    seal(run.path)
    return record


def check_sealed(run: RunDir, approval: dict) -> None:
    """The design that was approved is the design that runs."""
    if sha256_of(run.path / "design.json") != approval["design_sha256"]:
        raise InputError(f"{run.path}: design.json changed after it was approved by {approval['by']}; "
                         f"the sealed design no longer matches. Use a new --out.")


def next_command(run_dir: Path, status: dict) -> str:
    s = status.get("status")
    if s == "awaiting_approval":
        return (f"cpo approve {run_dir} --by NAME [--comment TEXT]    or    "
                f"cpo reject {run_dir} --by NAME --reason TEXT")
    if s == "awaiting_outcomes":
        return (f"send sends.csv with your email service, then cpo outcomes {run_dir} --events FILE "
                "[--format generic|sendgrid|mailchimp]")
    if s in ("failed", "crashed", "running"):
        return "the same `cpo run` command again (it resumes from the last completed stage)"
    if s == "complete":
        return f"cpo audit verify {run_dir}"
    return "nothing: the run has ended"


def declarations(consent: dict, policy, experiment=None) -> list[str]:
    """What the operator declared instead of the data or the default policy proving it: heads design and report."""
    out = []
    if consent.get("basis"):
        out.append(f"Consent DECLARED, not read from the file: every customer is treated as opted in because "
                   f"\"{consent['basis']}\".")
    if policy.weaker_than_floor:
        who = f" (approved by {policy.weakened.approved_by})" if policy.weakened.approved_by else ""
        out.append(f"Screening policy WEAKER than the floor{who}: \"{policy.weakened.reason}\" — "
                   + "; ".join(policy.weaker_than_floor) + ".")
    if experiment is not None and experiment.guardrails_dropped:
        stated = experiment.guardrails_weakened
        who = f" (approved by {stated.approved_by})" if stated.approved_by else ""
        out.append(f"Guardrails WEAKENED{who}: \"{stated.reason}\" — not checked: "
                   + ", ".join(experiment.guardrails_dropped) + ".")
    return out
