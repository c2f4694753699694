"""The run folder is the catalog: one campaign per folder, every stage's outputs persisted with a marker.

Layout: the contract's files at the top (variants.jsonl, assignments.csv, ...), the stages' own outputs in
`stages/<stage>/` (Parquet for frames, JSON for records), and `stages/<stage>.done.json`, the completion
marker, holding each output's SHA-256. A stage whose marker and outputs agree is reused, never redone; one
whose outputs changed or vanished is redone with every stage after it.

The folder is created only once the run's checks have passed, so a refused run leaves nothing behind.
From then on `run_status.json` says what the run is doing (running, with pid, host and stage;
awaiting_approval; rejected; failed; crashed; complete), `run_inputs.json` says what it was started with,
and an exclusive lock (`.lock`, flock) keeps a second process out while the first is alive; the kernel
releases it when a process dies, so a crashed run's lock is taken over and the crash recorded.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from pydantic import BaseModel

from tasks.errors import InputError
from tasks.files import write_csv

STAGES = ["ingest", "segment", "retrieve", "generate+screen", "assign", "design", "approval", "export", "outcomes",
          "engage", "analyze", "explain", "report"]


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder's files (names and bytes, sorted)."""
    path, digest = Path(path), hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            digest.update(str(p.relative_to(path)).encode())
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunDir:
    on_stage = None  # a callable(stage) the CLI sets to show progress in a terminal

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: --out must be a folder, and this is a file")
        parent = next(p for p in [self.path, *self.path.parents] if p.exists())
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"{self.path}: cannot create the run folder here ({parent} is not a writable folder)")
        self.seconds: dict[str, float] = {}
        self.reused: list[str] = []
        self.current = "start"  # the stage running now, named in run_status.json if it fails
        self.written = False  # nothing is in the folder until the run's checks have passed
        self._lock = None
        self._previous = None
        self.begun = False  # True once the run's checks passed and it owns the folder
        self.status_extra: dict = {}

    # ------------------------------------------------------------------------------------------ files
    def file(self, name: str) -> Path:
        """The path of a file in the run folder (the folder is created on first use)."""
        try:
            if not self.written:
                self.path.mkdir(parents=True, exist_ok=True)
                self.written = True
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{self.path}: cannot create the run folder here ({e.strerror})") from None
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.file(name)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        return target

    def write_csv(self, name: str, df: pl.DataFrame) -> Path:
        return write_csv(df, self.file(name))

    def write_jsonl(self, name: str, records: list[dict]) -> Path:
        return self.write_text(name, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records))

    def write_json(self, name: str, data) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

    def read_json(self, name: str, default=None):
        path = self.path / name
        if not path.exists():
            return default
        try:
            return json.loads(path.read_text("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(f"{path}: not valid JSON (edited or half-written?); use a new --out") from None

    # ------------------------------------------------------------------------------- lock and status
    def acquire(self) -> dict | None:
        """Take the folder's exclusive lock, or stop (exit 2) naming the live run that holds it. Returns the
        status a previous process left, marked crashed if it died while running. Taking it twice is a no-op."""
        if self._lock is not None:
            return self._previous
        handle = self.file(".lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.read_json("run_status.json", {}) or {}
            handle.close()
            raise InputError(f"{self.path}: another cpo run is using this folder (pid {holder.get('pid', '?')} on "
                             f"{holder.get('host', '?')}, stage {holder.get('stage', '?')}); wait for it to finish "
                             f"or choose another --out") from None
        self._lock = handle
        previous = self.read_json("run_status.json")
        if previous and previous.get("status") == "running":  # it held the lock and is gone: it crashed
            previous = {**previous, "status": "crashed", "crashed_detected_at": now(),
                        "message": f"the process (pid {previous.get('pid')}) stopped during stage "
                                   f"'{previous.get('stage')}' without finishing"}
            self.write_json("run_status.json", previous)
        self._previous = previous
        return previous

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def alive_elsewhere(self) -> bool:
        """Whether another process holds the folder's lock right now (without taking it)."""
        path = self.path / ".lock"
        if not path.exists():
            return False
        with path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def status(self, status: str, **extra) -> None:
        """Write run_status.json: what the run is doing now, for `cpo status` and the next process."""
        body = {"status": status, "stage": self.current, "pid": os.getpid(), "host": socket.gethostname(),
                "updated_at": now(), **self.status_extra, **extra,
                "stages_done": [s for s in STAGES if self.marker(s).exists()], "stages_reused": self.reused}
        self.write_json("run_status.json", body)

    def fail(self, error: BaseException, message: str) -> None:
        """Record a failure in a run that has started; a run stopped by its checks writes nothing."""
        if self.begun:
            self.status("failed", error_type=type(error).__name__, error=message)

    # ------------------------------------------------------------------------------------- catalog
    def marker(self, stage: str) -> Path:
        return self.path / "stages" / f"{stage.replace('+', '_')}.done.json"

    def is_done(self, stage: str) -> bool:
        """The stage finished and every output it recorded is still there, unchanged."""
        path = self.marker(stage)
        if not path.exists():
            return False
        try:
            outputs = json.loads(path.read_text("utf-8"))["outputs"]
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
            return False
        return all((self.path / f).is_file() and sha256_of(self.path / f) == h for f, h in outputs.items())

    def reuse(self, stage: str) -> dict | None:
        """The saved values of a completed stage (name -> frame or JSON data), or None: then this stage and
        every stage after it are redone."""
        if self.is_done(stage):
            saved = json.loads(self.marker(stage).read_text("utf-8")).get("saved", {})
            self.reused.append(stage)
            return {name: self._load(rel) for name, rel in saved.items()}
        for later in STAGES[STAGES.index(stage):]:
            self.marker(later).unlink(missing_ok=True)
        return None

    def finish(self, stage: str, files: list[str] = (), **values) -> None:
        """Persist a stage's values (frames as Parquet, records as JSON) and mark it complete with the SHA-256
        of every output, so a resumed run reuses it and a changed output is noticed."""
        saved = {name: self._save(stage, name, value) for name, value in values.items()}
        outputs = [*files, *saved.values()]
        self.write_json(str(self.marker(stage).relative_to(self.path)),
                        {"stage": stage, "completed_at": now(), "seconds": self.seconds.get(stage),
                         "outputs": {f: sha256_of(self.path / f) for f in outputs}, "saved": saved})

    def _save(self, stage: str, name: str, value) -> str:
        folder = f"stages/{stage.replace('+', '_')}"
        if isinstance(value, pl.DataFrame):
            rel = f"{folder}/{name}.parquet"
            target = self.file(rel)
            tmp = target.with_name(f".{target.name}.tmp")
            value.write_parquet(tmp)
            os.replace(tmp, target)
            return rel
        rel = f"{folder}/{name}.json"
        self.write_json(rel, _plain(value))
        return rel

    def _load(self, rel: str):
        path = self.path / rel
        return pl.read_parquet(path) if rel.endswith(".parquet") else json.loads(path.read_text("utf-8"))

    @contextmanager
    def stage(self, name: str):
        """Time a stage and say in run_status.json that it is running; the seconds go into the manifest."""
        start, self.current = time.perf_counter(), name
        if self.begun:
            self.status("running")
        if RunDir.on_stage:
            RunDir.on_stage(name)
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


def _plain(value):
    """JSON-ready: pydantic records as dicts, containers walked."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
