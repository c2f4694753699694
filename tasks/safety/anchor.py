"""The anchor of a run's audit chain: what an editor of the run folder cannot forge.

A hash chain shows that rows were not changed *unless the whole chain was rewritten*: anyone who can edit
the folder can recompute every hash. `seal(run_dir)` therefore writes `audit_anchor.json`:

    {"run_id", "rows", "head", "files", "signed_at", "hmac", "key_id", "prefect_artifact"}

- `hmac`: HMAC-SHA256, keyed with the environment variable CPO_AUDIT_KEY (its UTF-8 bytes, as given), over
  the canonical JSON `{"files": ..., "head": ..., "rows": ..., "run_id": ...}` (sorted keys, no spaces);
  `files` maps each evidence file present at the seal (ANCHORED_FILES: design, variants, assignments, sends,
  outcomes, results, winners, report, manifest ...) to its SHA-256. Without the key
  nobody can produce it for another head. `null` when the key is unset: then the file anchor is only a
  record, and an editor could forge it. The key is never written anywhere; `key_id` (the first 8 hex digits
  of SHA-256 of the key) only tells which key signed.
- `prefect_artifact`: when seal runs inside a Prefect flow or task run, the head and length are also
  published as a table artifact keyed per run (`audit-anchor-<run id slug>`), a second anchor that lives
  on the Prefect server, outside the folder. Each seal adds a version; the file records the key and what
  was published last. A seal outside a flow run (e.g. `cpo reject` in a terminal) publishes nothing and
  keeps the record of the last publication.

Neither anchor stops someone from restoring an *earlier* sealed state of the whole folder (log and anchor
file together): the Prefect anchor catches that (its newest version has more rows than the log), the file
anchor alone does not.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from tasks.safety.audit import GENESIS, read_rows

__all__ = ["ANCHOR_FILE", "KEY_ENV", "seal", "sign", "key_id", "artifact_key", "audit_key", "read_anchor",
           "prefect_anchors"]

logger = logging.getLogger(__name__)

ANCHOR_FILE = "audit_anchor.json"
KEY_ENV = "CPO_AUDIT_KEY"


def audit_key(env: dict | None = None) -> str | None:
    """The signing key from the environment, or None when it is unset or blank."""
    value = (os.environ if env is None else env).get(KEY_ENV, "")
    return value if value.strip() else None


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


# The run's evidence besides the log: their SHA-256 at each seal are signed with the chain, so an edit to a result
# after the run (a lift, an outcome, a winner) is told from the original as surely as an edited log row.
ANCHORED_FILES = ("run_inputs.json", "design.json", "design.md", "approval.json", "variants.jsonl",
                  "control_message.json", "assignments.csv", "sends.csv", "outcomes.csv", "results.csv",
                  "guardrails.csv", "winners.csv", "attribution.csv", "attribute_lifts.csv", "variant_factors.csv",
                  "report.md", "report.html", "manifest.json",
                  # who was sent what, and every recipient's outcomes (a rollout leaves out who unsubscribed):
                  # each marker lists its stage's partitions with their SHA-256, which verify checks too
                  "stages/export.done.json", "stages/outcomes.done.json")


def sha256_file(path: Path) -> str:
    """A file's SHA-256, read a megabyte at a time (sends.csv of a million recipients is about 0.9 GB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unlike_listed(run_dir: Path, marker: str) -> list[tuple[str, bool]]:
    """The outputs a stage's marker (stages/<stage>.done.json) lists that no longer hash as listed: (path,
    missing) each."""
    outputs = json.loads((run_dir / marker).read_text("utf-8")).get("outputs", {})
    return [(part, not (run_dir / part).is_file()) for part, sha in sorted(outputs.items())
            if not (run_dir / part).is_file() or sha256_file(run_dir / part) != sha]


def file_hashes(run_dir: Path) -> dict[str, str]:
    return {name: sha256_file(run_dir / name) for name in ANCHORED_FILES if (run_dir / name).is_file()}


def sign(key: str, run_id: str, rows: int, head: str, files: dict[str, str] | None = None) -> str:
    """HMAC-SHA256 over the canonical JSON of run id, row count, chain head and (when anchored) the files'
    SHA-256."""
    body = {"head": head, "rows": rows, "run_id": run_id, **({"files": files} if files is not None else {})}
    message = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def artifact_key(run_id: str) -> str:
    """Prefect artifact keys hold lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-") or "run"
    return f"audit-anchor-{slug}"


def chain_state(run_dir: Path) -> tuple[str, int, str, str | None]:
    """(run_id, rows, head, chain_id) of the run's audit log; chain_id is the first row's record_hash."""
    path = run_dir / "audit_log.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no audit log to seal")
    rows = read_rows(path)
    run_id = rows[0]["run_id"] if rows else run_dir.name
    return run_id, len(rows), rows[-1]["record_hash"] if rows else GENESIS, rows[0]["record_hash"] if rows else None


def read_anchor(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / ANCHOR_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def seal(run_dir: str | Path) -> dict:
    """Anchor the audit chain as it is now: write audit_anchor.json (signed when CPO_AUDIT_KEY is set) and,
    inside a Prefect flow or task run, publish the head and length as the run's anchor artifact."""
    run_dir = Path(run_dir)
    run_id, rows, head, chain_id = chain_state(run_dir)
    key = audit_key()
    previous = _previous(run_dir)
    files = file_hashes(run_dir)
    anchor = {"run_id": run_id, "rows": rows, "head": head, "files": files,
              "signed_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
              "hmac": sign(key, run_id, rows, head, files) if key else None,
              "key_id": key_id(key) if key else None,
              "prefect_artifact": _publish(run_id, rows, head, chain_id) or previous.get("prefect_artifact")}
    _write_atomic(run_dir / ANCHOR_FILE, json.dumps(anchor, indent=2) + "\n")
    return anchor


def _previous(run_dir: Path) -> dict:
    try:
        return read_anchor(run_dir) or {}
    except (OSError, ValueError):
        return {}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _run_context():
    """Prefect's current flow or task run context, or None (never imports Prefect just to find out)."""
    if "prefect.context" not in sys.modules:
        return None
    from prefect.context import get_run_context
    from prefect.exceptions import MissingContextError

    try:
        return get_run_context()
    except MissingContextError:
        return None


def _publish(run_id: str, rows: int, head: str, chain_id: str | None) -> dict | None:
    """Publish the anchor as a Prefect table artifact of the current run; None outside a run. A server that
    refuses does not stop the run: the file anchor stands, and the record says nothing was published."""
    context = _run_context()
    if context is None:
        return None
    from prefect.artifacts import create_table_artifact

    flow_run = getattr(context, "flow_run", None)
    flow_run_id = str(flow_run.id) if flow_run else str(getattr(context.task_run, "flow_run_id", "") or "")
    key = artifact_key(run_id)
    sealed_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    try:
        create_table_artifact(
            table=[{"run_id": run_id, "rows": rows, "head": head, "chain_id": chain_id, "sealed_at": sealed_at}],
            key=key, description=f"Audit chain anchor of run {run_id}: {rows} rows, head {head[:12]}…")
    except Exception as e:  # noqa: BLE001 - an unreachable server must not lose the run; the file anchor stands
        logger.warning("could not publish the audit anchor artifact %s: %s", key, e)
        return None
    return {"key": key, "rows": rows, "head": head, "flow_run_id": flow_run_id, "api_url": _api_url()}


def _api_url() -> str | None:
    """The Prefect API the artifact went to (a temporary server's, when the run started its own)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def prefect_anchors(run_id: str) -> list[dict]:
    """Every version of the run's anchor artifact on the configured Prefect server, newest first:
    [{"rows", "head", "chain_id", "run_id", "created", "flow_run_id"}]."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    key = artifact_key(run_id)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                          sort=ArtifactSort.CREATED_DESC, limit=200)
    out = []
    for a in artifacts:
        try:
            data = json.loads(a.data) if isinstance(a.data, str) else a.data
            record = data[0] if isinstance(data, list) else data
            out.append({"rows": int(record["rows"]), "head": str(record["head"]),
                        "chain_id": record.get("chain_id"), "run_id": record.get("run_id"),
                        "created": str(a.created), "flow_run_id": str(a.flow_run_id or "")})
        except (TypeError, ValueError, KeyError, IndexError):
            out.append({"rows": None, "head": None, "chain_id": None, "run_id": None, "created": str(a.created),
                        "flow_run_id": str(a.flow_run_id or ""), "unreadable": True})
    return out
