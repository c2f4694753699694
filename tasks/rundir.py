"""The run directory: every file written whole (temp file + rename), the manifest last.

A run that fails leaves `run_status.json` saying so and no manifest, so it never looks complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import polars as pl


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
        self.path.mkdir(parents=True, exist_ok=True)
        self.seconds: dict[str, float] = {}
        self.current = "start"  # the stage running now, named in run_status.json if it fails

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        return target

    def write_csv(self, name: str, df: pl.DataFrame) -> Path:
        target = self.path / name
        tmp = target.with_name(f".{target.name}.tmp")
        df.write_csv(tmp)
        os.replace(tmp, target)
        return target

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

    def fail(self, error: BaseException) -> None:
        self.write_json("run_status.json", {"status": "failed", "stage": self.current,
                                            "error_type": type(error).__name__, "error": str(error)})
