"""`cpo audit verify`: does a run folder's evidence hold? Every failure is named, none is skipped silently.

A run verifies only if, in order:
1. its status says it got somewhere verifiable (run_status.json: awaiting_approval, rejected or complete; a
   folder without run_status.json whose manifest says "complete" is a run from before the lifecycle and is
   treated as complete). running, failed and crashed runs are not verifiable;
2. every file that status requires is present (REQUIRED);
3. every row's hash and the chain hold, every row belongs to this run, events are well formed;
4. the chain's head and length match audit_anchor.json, whose HMAC verifies with CPO_AUDIT_KEY, and every
   version of the run's Prefect anchor artifact (when PREFECT_API_URL is set) is a point on the chain.
   An anchor no key checked could be forged by whoever edited the folder: that fails unless the Prefect
   anchor covers the whole chain, or `allow_unkeyed` accepts it (and the result says so);
5. every variant in variants.jsonl has a final decision whose status it carries, and its text (subject,
   preheader, body, as Variant.text joins them) hashes to the content_sha256 that decision was made on;
6. every variant a customer is assigned passed, and each decision on it was made under the run's policy
   version (run_inputs.json, else manifest.json);
7. approval and rejection rows carry design.json's SHA-256, export rows sends.csv's; a complete run was
   approved, a rejected run was rejected.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tasks.safety.anchor import ANCHORED_FILES, sha256_file, unlike_listed
from tasks.safety.audit import COLUMNS, EVENT_DECISIONS, EVENTS, SCREEN, chain_problems, read_rows

__all__ = ["Verification", "verify", "REQUIRED", "variant_text_sha256"]

NOT_VERIFIABLE = ("running", "failed", "crashed")
GATE_FILES = ("audit_log.csv", "variants.jsonl", "assignments.csv", "design.json", "run_inputs.json")
REQUIRED = {
    "awaiting_approval": GATE_FILES,
    "rejected": GATE_FILES,
    "awaiting_outcomes": GATE_FILES + ("sends.csv", "approval.json"),
    "complete": GATE_FILES + ("outcomes.csv", "results.csv", "report.md", "manifest.json"),
}
EVENT_DECISION = {"approval": "approve", "rejection": "reject", "export": "record", "outcomes": "record",
                  "rollout": "record"}


@dataclass
class Verification:
    run_dir: Path
    status: str | None = None
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)   # what was checked, anchors first: said even on success
    warnings: list[str] = field(default_factory=list)  # what holds only because the caller accepted it

    @property
    def ok(self) -> bool:
        return not self.problems


def variant_text_sha256(record: dict) -> str:
    """SHA-256 of a variant's text as tasks.records.Variant.text builds it: subject, preheader, body."""
    text = f"{record.get('subject', '')}\n{record.get('preheader', '')}\n{record.get('body', '')}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify(run_dir: str | Path, allow_unkeyed: bool = False, env: dict | None = None) -> Verification:
    env = os.environ if env is None else env
    run = Path(run_dir)
    result = Verification(run)
    if not run.is_dir():
        result.problems.append(f"{run}: no such run folder")
        return result
    result.status = status = run_status(run, result.problems)
    if status is None:
        return result
    missing = [f for f in REQUIRED[status] if not (run / f).is_file()]
    result.problems += [f"{f} is missing (a run whose status is '{status}' must hold it)" for f in missing]

    rows = audit_rows(run, result)
    if rows is None:  # no log, or one that cannot be read as this version's: nothing below can be trusted
        return result
    run_id = rows[0]["run_id"] if rows else None
    result.problems += [f"row {i}: run_id {r['run_id']!r} differs from row 1's {run_id!r} (rows from another run)"
                        for i, r in enumerate(rows, 1) if r["run_id"] != run_id]
    result.problems += event_problems(rows)
    check_anchors(run, rows, result, allow_unkeyed, env)

    variants = read_variants(run, result.problems)
    screens = [(i, r) for i, r in enumerate(rows, 1) if r["event"] == SCREEN]
    if variants and not screens:
        result.problems.append(f"audit_log.csv holds no screening decision, but variants.jsonl lists "
                               f"{len(variants)} variants")
    control = read_control(run, result.problems)
    if variants is not None and not variants and not control and (run / "variants.jsonl").is_file():
        # a rollout where no treatment won sends only the control message: it screened that one
        result.problems.append("variants.jsonl lists no variants: a run that reached the approval gate screened some")
    decisions = variant_problems((variants or []) + control, screens, result.problems)
    assigned = read_assigned(run, result.problems)
    sent = read_assigned(run, result.problems, "sends.csv")
    assignment_problems(run, sent, (variants or []) + control, decisions, screens, result.problems, "sent")
    assignment_problems(run, assigned, variants or [], decisions, screens, result.problems)
    gate_problems(run, rows, status, result.problems)
    if not result.problems:
        n_screen = len(screens)
        n_events = len(rows) - n_screen
        result.checked.append(f"chain: {len(rows)} rows ({n_screen} screening decisions, {n_events} "
                              f"event{'s' if n_events != 1 else ''}) hash-chained; {len(variants or [])} variants "
                              f"decided, their text matches the hash each decision was made on; {len(assigned)} "
                              "assigned variants passed under the run's policy")
    return result


# ------------------------------------------------------------------------------------------------ status

def run_status(run: Path, problems: list[str]) -> str | None:
    """The run's status if it is verifiable; otherwise None, with the reason in `problems`."""
    status_path, manifest_path = run / "run_status.json", run / "manifest.json"
    if status_path.is_file():
        try:
            info = json.loads(status_path.read_text(encoding="utf-8"))
            status = info["status"]
        except (ValueError, KeyError, TypeError):
            problems.append("run_status.json cannot be read (not JSON with a 'status'): the run's state is unknown")
            return None
        if status in NOT_VERIFIABLE:
            problems.append(f"run_status.json says '{status}'{_status_detail(info)}: "
                            "a run that did not reach the approval gate or finish is not verifiable")
            return None
        if status not in REQUIRED:
            problems.append(f"run_status.json says '{status}', which is no status cpo writes "
                            f"(known: running, {', '.join(REQUIRED)}, failed, crashed)")
            return None
        return status
    manifest = _json_or_none(manifest_path)
    if isinstance(manifest, dict) and manifest.get("status") == "complete":
        return "complete"  # a run from before the lifecycle: its manifest was written last, on success
    problems.append("no run_status.json, and no manifest.json saying 'complete': the run never finished "
                    "(it crashed, failed or is still running); not verifiable")
    return None


def _status_detail(info: dict) -> str:
    parts = []
    if info.get("stage"):
        parts.append(f"at stage '{info['stage']}'")
    if info.get("error"):
        parts.append(f"error: {info['error']}")
    if info.get("status") == "running" and info.get("pid"):
        alive = _alive(info["pid"]) if info.get("host") in (None, socket.gethostname()) else None
        gone = " (that process is gone: the run crashed)" if alive is False else ""
        parts.append(f"pid {info['pid']}{' on ' + info['host'] if info.get('host') else ''}{gone}")
    return f" ({'; '.join(parts)})" if parts else ""


def _alive(pid) -> bool | None:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return None
    return True


def _json_or_none(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------- chain

def audit_rows(run: Path, result: Verification) -> list[dict] | None:
    path = run / "audit_log.csv"
    if not path.is_file():
        return None  # already named as a missing file
    try:
        rows = read_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        result.problems.append(f"audit_log.csv cannot be read: {e}")
        return None
    if rows and (missing := [c for c in COLUMNS if c not in rows[0] or rows[0][c] is None]):
        result.problems.append(f"audit_log.csv lacks the columns {missing} (written by an older cpo, or edited): "
                               "its chain cannot be checked")
        return None
    result.problems += chain_problems(rows)
    return rows


def event_problems(rows: list[dict]) -> list[str]:
    problems = []
    for i, r in enumerate(rows, 1):
        event = r["event"]
        if event == SCREEN:
            if r["decision"] not in ("pass", "block"):
                problems.append(f"row {i} (variant {r['variant_id']}): decision {r['decision']!r} is neither "
                                "pass nor block")
        elif event not in EVENTS:
            problems.append(f"row {i}: unknown event {event!r} (known: {SCREEN}, {', '.join(EVENTS)})")
        elif r["decision"] != EVENT_DECISION[event] and r["decision"] in EVENT_DECISIONS:
            problems.append(f"row {i} ({event} event): decision {r['decision']!r} contradicts the event "
                            f"(expected {EVENT_DECISION[event]!r})")
        elif r["decision"] not in EVENT_DECISIONS:
            problems.append(f"row {i} ({event} event): decision {r['decision']!r} is not one of "
                            f"{', '.join(EVENT_DECISIONS)}")
    return problems


# ----------------------------------------------------------------------------------------------- anchors

def check_anchors(run: Path, rows: list[dict], result: Verification, allow_unkeyed: bool, env) -> None:
    """The file anchor (HMAC) and the Prefect anchor; says which were checked and what each covers."""
    from tasks.safety.anchor import ANCHOR_FILE, audit_key, key_id, sign

    problems = result.problems
    log_run_id = rows[0]["run_id"] if rows else run.name
    head = rows[-1]["record_hash"] if rows else "0" * 64
    anchor = _json_or_none(run / ANCHOR_FILE)
    prefect_covers = check_prefect(run, rows, log_run_id, anchor, result, env)
    if not isinstance(anchor, dict) or not {"run_id", "rows", "head"} <= set(anchor):
        problems.append(f"{ANCHOR_FILE} is " + ("missing" if not (run / ANCHOR_FILE).exists() else "unreadable")
                        + ": the chain's head is anchored nowhere, so a rewritten log could not be told from "
                          "the original")
        return
    before = len(problems)
    if anchor["run_id"] != log_run_id:
        problems.append(f"{ANCHOR_FILE} anchors run {anchor['run_id']!r}, but the log's rows are run {log_run_id!r}")
    sealed = anchor["rows"]
    if sealed != len(rows) or anchor["head"] != head:
        problems.append(_anchor_mismatch(ANCHOR_FILE, rows, sealed, anchor["head"]))
    key = audit_key(env)
    signature = anchor.get("hmac")
    if key is not None:
        if not signature:
            problems.append(f"{ANCHOR_FILE} is unsigned though CPO_AUDIT_KEY is set: the run was sealed without "
                            "the key, or its signature was stripped")
        elif anchor.get("key_id") not in (None, key_id(key)):
            problems.append(f"{ANCHOR_FILE} was signed with key {anchor.get('key_id')}, but CPO_AUDIT_KEY is key "
                            f"{key_id(key)}: use the key the run was sealed with")
        elif not hmac.compare_digest(str(signature), sign(key, str(anchor["run_id"]), sealed, str(anchor["head"]),
                                                          anchor.get("files"))):
            problems.append(f"{ANCHOR_FILE}: the HMAC does not match its run_id, rows, head and files: the anchor was "
                            "edited after it was signed")
        elif len(problems) == before:
            files = anchored_file_problems(run, anchor.get("files"), problems)
            if len(problems) == before:
                result.checked.insert(0, f"file anchor: HMAC-SHA256 with CPO_AUDIT_KEY (key {key_id(key)}) verified "
                                         f"over {sealed} rows, head {str(anchor['head'])[:12]}…, and {files} files")
        return
    what = (f"signed with key {anchor.get('key_id')}, not checked (CPO_AUDIT_KEY is not set)" if signature
            else "unkeyed (sealed without CPO_AUDIT_KEY)")
    anchored_file_problems(run, anchor.get("files"), problems)  # unsigned, it still catches a careless edit
    if len(problems) > before:
        return
    if prefect_covers:
        result.checked.insert(0, f"file anchor: {what}; not relied on: the Prefect anchor covers the whole chain")
    elif allow_unkeyed:
        result.checked.insert(0, f"file anchor: {ANCHOR_FILE} matches the log ({sealed} rows); {what}")
        result.warnings.append("the anchor is not checked with a key: an editor of the folder could have forged "
                               "it (accepted by --allow-unkeyed)")
    else:
        problems.append(f"{ANCHOR_FILE} is {what}: an editor of the folder could forge it; set CPO_AUDIT_KEY to "
                        "the key the run was sealed with (or pass --allow-unkeyed to accept a forgeable anchor)")


def anchored_file_problems(run: Path, files, problems: list[str]) -> int:
    """Each file the signed anchor names must still hash as it did when the run was sealed."""
    if not isinstance(files, dict):
        return 0
    for name, digest in sorted(files.items()):
        path = run / str(name)
        if not path.is_file():
            problems.append(f"{name} was sealed with the run but is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} has changed since the run was sealed (sealed {str(digest)[:12]}…, now "
                            f"{sha256_file(path)[:12]}…)")
        elif str(name).endswith(".done.json"):  # a stage's marker: the partitions it lists, as it lists them
            problems += [f"{part} (listed by {name}, sealed with the run) is missing" if missing else
                         f"{part} has changed since {name} listed it" for part, missing in unlike_listed(run, name)]
    if "run_inputs.json" in files:  # sealed by a cpo that seals every evidence file present: none may appear later
        problems += [f"{name} is in the folder but was not sealed with the run (added after the last seal?)"
                     for name in ANCHORED_FILES if name not in files and (run / name).is_file()]
    return len(files)


def _anchor_mismatch(where: str, rows: list[dict], sealed: int, sealed_head: str) -> str:
    n = len(rows)
    if isinstance(sealed, int) and 0 < sealed < n and rows[sealed - 1]["record_hash"] == sealed_head:
        return (f"audit log has {n} rows but {where} sealed {sealed}: rows {sealed + 1}–{n} were added after the "
                "last seal")
    if isinstance(sealed, int) and sealed > n:
        return (f"audit log has {n} rows but {where} sealed {sealed}: rows were removed from the end of the log")
    return (f"the chain's head (row {n}) differs from the head {where} sealed ({sealed} rows): the log was "
            "rewritten")


def _prefect_api_url(env) -> str | None:
    if env.get("PREFECT_API_URL"):
        return env["PREFECT_API_URL"]
    if "prefect.settings" in sys.modules:  # a process already using Prefect (a test harness, a flow)
        from prefect.settings import get_current_settings

        return get_current_settings().api.url or None
    return None


def _same_api(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def check_prefect(run: Path, rows: list[dict], run_id: str, anchor, result: Verification, env) -> bool:
    """Check every version of the run's anchor artifact; True when the newest covers the whole chain."""
    from tasks.safety.anchor import artifact_key, prefect_anchors

    key = artifact_key(run_id)
    named = anchor.get("prefect_artifact") if isinstance(anchor, dict) else None
    url = _prefect_api_url(env)
    if not url:
        result.checked.append("Prefect anchor: not checked (PREFECT_API_URL is not set)"
                              + (f"; the run published artifact {named.get('key')}" if named else ""))
        return False
    try:
        versions = prefect_anchors(run_id)
    except Exception as e:  # noqa: BLE001 - an unreachable server: say so, rely on the file anchor
        result.checked.append(f"Prefect anchor: not checked: the server at {url} did not answer ({e})")
        return False
    if not versions:
        elsewhere = isinstance(named, dict) and named.get("api_url") and _same_api(named["api_url"], url) is False
        temporary = isinstance(named, dict) and not named.get("api_url")  # a temporary server, gone with its run
        if elsewhere or temporary:
            result.checked.append(f"Prefect anchor: not checked: artifact {key} was published to "
                                  f"{named.get('api_url') or 'a temporary Prefect server'}, not to {url}")
        elif named:
            result.problems.append(f"audit_anchor.json says artifact {key} was published, but the Prefect server at "
                                   f"{url} has no such artifact")
        else:
            result.checked.append(f"Prefect anchor: none ({url} has no artifact {key}: the run was not under a "
                                  "Prefect flow run when sealed)")
        return False
    chain_id = rows[0]["record_hash"] if rows else None
    ours = [v for v in versions if v.get("chain_id") == chain_id and v.get("run_id") == run_id]
    if not ours:
        result.problems.append(f"the Prefect server holds {len(versions)} versions of anchor {key}, none for this "
                               "chain (its first row differs): the log was rewritten from the start, or another "
                               "run folder used the same run id")
        return False
    before = len(result.problems)
    for v in ours:
        n = v["rows"]
        if n > len(rows):
            result.problems.append(f"Prefect anchor {key} (sealed {v['created']}) recorded {n} rows; the log has "
                                   f"{len(rows)}: rows were removed from the end")
        elif n and rows[n - 1]["record_hash"] != v["head"]:
            result.problems.append(f"row {n}: record_hash differs from Prefect anchor {key} (sealed {v['created']}): "
                                   "the log was rewritten")
    if len(result.problems) > before:
        return False
    newest = ours[0]["rows"]
    result.checked.append(f"Prefect anchor: artifact {key} at {url}, {len(ours)} version(s) all on the chain; the "
                          f"newest covers rows 1–{newest} of {len(rows)}")
    return newest == len(rows)


# ---------------------------------------------------------------------------------------------- variants

def read_variants(run: Path, problems: list[str]) -> list[dict] | None:
    path = run / "variants.jsonl"
    if not path.is_file():
        return None
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(f"variants.jsonl line {n} is not JSON")
            continue
        if not isinstance(record, dict) or not record.get("variant_id"):
            problems.append(f"variants.jsonl line {n} has no variant_id")
            continue
        out.append({**record, "_line": n})
    return out


def variant_problems(variants: list[dict], screens: list[tuple[int, dict]], problems: list[str]) -> dict:
    """Each variant against the last decision made on it (same id and attempt); returns variant_id -> that
    decision's (row number, row) for the variant's last attempt in variants.jsonl."""
    last: dict[tuple[str, str], tuple[int, dict]] = {}
    by_id: dict[str, tuple[int, dict]] = {}
    for i, r in screens:
        last[(r["variant_id"], r["attempt"])] = (i, r)
        by_id[r["variant_id"]] = (i, r)
    decided: dict[str, tuple[int, dict]] = {}
    for v in variants:
        vid = v["variant_id"]
        found = last.get((vid, str(v["attempt"]))) if "attempt" in v else by_id.get(vid)
        if found is None:
            problems.append(f"variant {vid} (variants.jsonl line {v['_line']}) has no screening decision in the "
                            "audit log")
            continue
        i, row = found
        decided[vid] = found
        expected = {"pass": "passed", "block": "blocked"}.get(row["decision"])
        if v.get("status") != expected:
            problems.append(f"variant {vid} is '{v.get('status')}' in variants.jsonl but its decision (row {i}) is "
                            f"'{row['decision']}'")
        if not all(isinstance(v.get(k), str) for k in ("subject", "body")):
            problems.append(f"variant {vid} (variants.jsonl line {v['_line']}) lacks its subject or body: its text "
                            "cannot be checked against the hash it was screened on")
        elif variant_text_sha256(v) != row["content_sha256"]:
            problems.append(f"variant {vid}: its text in variants.jsonl does not hash to the content_sha256 its "
                            f"decision (row {i}, '{row['decision']}') was made on: the subject, preheader or body "
                            "was changed after screening")
    return decided


def read_control(run: Path, problems: list[str]) -> list[dict]:
    """control_message.json (the business-as-usual email control receives), checked like a variant."""
    path = run / "control_message.json"
    if not path.is_file():
        return []
    record = _json_or_none(path)
    if not isinstance(record, dict) or not record.get("variant_id"):
        problems.append("control_message.json is not a message record (edited?)")
        return []
    return [{**record, "_line": "control_message.json"}]


def read_assigned(run: Path, problems: list[str], name: str = "assignments.csv") -> dict[str, int]:
    """variant_id -> customers assigned (or sent) it."""
    path = run / name
    if not path.is_file():
        return {}
    counts: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if "variant_id" not in (reader.fieldnames or []):
            problems.append(f"{name} has no variant_id column: who was sent what cannot be checked")
            return {}
        for row in reader:
            if vid := (row.get("variant_id") or ""):
                counts[vid] = counts.get(vid, 0) + 1
    return counts


def run_policy(run: Path) -> str | None:
    for name in ("run_inputs.json", "manifest.json"):
        data = _json_or_none(run / name)
        if isinstance(data, dict) and data.get("policy_version"):
            return str(data["policy_version"])
    return None


def assignment_problems(run: Path, assigned: dict[str, int], variants: list[dict], decided: dict,
                        screens: list[tuple[int, dict]], problems: list[str], verb: str = "assigned") -> None:
    if not assigned:
        return
    listed = {v["variant_id"] for v in variants}
    policy = run_policy(run)
    if policy is None:
        problems.append("the run's policy version is unknown (neither run_inputs.json nor manifest.json names "
                        "policy_version): the decisions on assigned variants cannot be tied to it")
    for vid, n in sorted(assigned.items()):
        decisions = [(i, r) for i, r in screens if r["variant_id"] == vid]
        if not decisions:
            problems.append(f"{n} customers {verb} variant {vid}, which was never screened")
            continue
        i, final = decided.get(vid) or decisions[-1]
        if final["decision"] != "pass":
            problems.append(f"{n} customers {verb} variant {vid}, which was blocked (row {i})")
        if vid not in listed and variants:
            problems.append(f"{n} customers {verb} variant {vid}, which is not in variants.jsonl or control_message.json")
        if policy is not None:
            other = [(j, r["policy_version"]) for j, r in decisions if r["policy_version"] != policy]
            problems += [f"variant {vid} ({verb} to {n} customers): its decision in row {j} was made under policy "
                         f"{p!r}, not the run's policy {policy!r}" for j, p in other]


# ---------------------------------------------------------------------------------------- gate and sends

def gate_problems(run: Path, rows: list[dict], status: str, problems: list[str]) -> None:
    events = [(i, r) for i, r in enumerate(rows, 1) if r["event"] != SCREEN]
    gate = [(i, r) for i, r in events if r["event"] in ("approval", "rejection")]
    design = run / "design.json"
    if gate and design.is_file():
        digest = sha256_file(design)
        problems += [f"row {i} ({r['event']} by {r['actor']}): design.json has changed since it was "
                     f"{'approved' if r['event'] == 'approval' else 'rejected'} (the row carries "
                     f"{r['content_sha256'][:12]}…, the file hashes to {digest[:12]}…)"
                     for i, r in gate if r["content_sha256"] != digest]
    kinds = {r["event"] for _, r in gate}
    if status == "complete" and design.is_file() and "approval" not in kinds:
        problems.append("the run is complete but the audit log holds no approval of its design")
    if status == "rejected" and "rejection" not in kinds:
        problems.append("the run is rejected but the audit log holds no rejection")
    if status == "awaiting_outcomes" and "approval" not in kinds:
        problems.append("sends were exported but the audit log holds no approval of the design")
    if status in ("awaiting_approval", "rejected") and "approval" in kinds:
        problems.append(f"the run is '{status}' but the audit log records an approval")
    exports = [(i, r) for i, r in events if r["event"] == "export"]
    sends = run / "sends.csv"
    if sends.is_file():
        if not exports:
            problems.append("sends.csv exists but no export was recorded in the audit log")
        elif exports[-1][1]["content_sha256"] != (digest := sha256_file(sends)):
            i = exports[-1][0]
            problems.append(f"row {i} (export): sends.csv has changed since its export was recorded (the row carries "
                            f"{exports[-1][1]['content_sha256'][:12]}…, the file hashes to {digest[:12]}…)")
    elif exports:
        problems.append(f"row {exports[-1][0]} records an export, but sends.csv is missing")
