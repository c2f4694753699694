"""The run directory: every file written whole (temp file + rename), the manifest last.

The folder is created by the first write, so a run refused by its checks (bad input, config or consent)
leaves nothing behind. A run that fails later leaves `run_status.json` saying so and no manifest, so it
never looks complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from tasks.errors import InputError
from tasks.files import write_csv


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


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: --out must be a folder, and this is a file")
        parent = next(p for p in [self.path, *self.path.parents] if p.exists())
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"{self.path}: cannot create the run folder here ({parent} is not a writable folder)")
        self.seconds: dict[str, float] = {}
        self.current = "start"  # the stage running now, named in run_status.json if it fails
        self.written = False  # nothing is in the folder until the run's checks have passed

    def file(self, name: str) -> Path:
        """The path of a file in the run folder (the folder is created on first use)."""
        if not self.written:
            self.path.mkdir(parents=True, exist_ok=True)
            self.written = True
        return self.path / name

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

    def write_json(self, name: str, data: dict) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

    @contextmanager
    def stage(self, name: str):
        """Time a stage; the seconds go into the manifest."""
        start, self.current = time.perf_counter(), name
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)

    def fail(self, error: BaseException, message: str) -> None:
        """Record a failure in a run that has written something; a run stopped by its checks writes nothing."""
        if self.written:
            self.write_json("run_status.json", {"status": "failed", "stage": self.current,
                                                "error_type": type(error).__name__, "error": message})
