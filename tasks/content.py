"""Approved content: a folder of .md/.txt/.json documents or one .jsonl file, read into Documents."""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import yaml

from tasks.errors import InputError
from tasks.files import decode
from tasks.records import Document

ID_KEYS, TEXT_KEYS = ("id", "document_id"), ("content", "body", "text")
DATE_KEYS = {"approved_at": ("approved_at", "approval_date", "approved_on"),
             "expires_at": ("expires_at", "expiry_date", "expiration_date", "expires")}


def _first(raw: dict, keys) -> object:
    return next((raw[k] for k in keys if raw.get(k) not in (None, "")), None)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _as_date(value, where: str, key: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InputError(f"{where}: field '{key}' must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def _status(raw: dict) -> str:
    if "approval_status" in raw or "status" in raw:
        return str(raw.get("approval_status", raw.get("status"))).lower()
    if "approved" in raw:
        return "approved" if raw["approved"] in (True, "true", "yes", 1) else "draft"
    return "approved"  # the content folder is, by contract, approved content


def document_from_json(raw: dict, where: str) -> Document:
    doc_id, text = _first(raw, ID_KEYS), _first(raw, TEXT_KEYS)
    if doc_id is None:
        raise InputError(f"{where}: document has no 'id' or 'document_id'")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: document '{doc_id}' has no text ('content', 'body' or 'text')")
    dates = {field: _as_date(_first(raw, keys), where, keys[0]) for field, keys in DATE_KEYS.items()}
    return Document(id=str(doc_id), title=str(raw.get("title") or doc_id), text=text.strip(),
                    category=str(raw.get("category") or ""), audience=_as_list(raw.get("audience")) or ["all"],
                    keywords=_as_list(raw.get("keywords")), approval_status=_status(raw), source=where, **dates)


def read_text(path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 or a detected legacy encoding; the failing line named otherwise."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot be read: {e.strerror}") from None
    return decode(data, path)[0]


def document_from_text(path: Path) -> Document:
    """A .md/.txt file: optional YAML front matter for metadata; id is the file name without extension."""
    text = read_text(path)
    meta = {}
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if match:
        try:
            meta = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as e:
            raise InputError(f"{path}: the front matter (between the --- lines) is not valid YAML: "
                             f"{str(e).splitlines()[0]}") from None
        if not isinstance(meta, dict):
            raise InputError(f"{path}: the front matter must be 'key: value' lines, not {type(meta).__name__}")
        text = text[match.end():]
    heading = re.match(r"^\s*#\s+(.+)\n", text)
    title = meta.get("title") or (heading.group(1).strip() if heading else path.stem)
    return document_from_json({**meta, "id": path.stem, "title": title, "content": text}, str(path))


def load_documents(path: str | Path) -> list[Document]:
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".jsonl":
        docs = [_json_line(line, f"{path}:{i}") for i, line in enumerate(read_text(path).splitlines(), 1)
                if line.strip()]
    elif path.is_dir():
        docs = [_load_file(p) for p in sorted(path.iterdir())
                if p.is_file() and p.suffix.lower() in (".md", ".txt", ".json")]
    else:
        raise InputError(f"{path}: content must be a folder of .md/.txt/.json files or one .jsonl file")
    if not docs:
        raise InputError(f"{path}: no documents found (.md, .txt, .json or .jsonl)")
    seen: dict[str, str] = {}
    for d in docs:
        if d.id in seen:
            raise InputError(f"{path}: document id '{d.id}' appears twice ({seen[d.id]} and {d.source})")
        seen[d.id] = d.source
    return docs


def _json_line(line: str, where: str) -> Document:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected one JSON object per line, got {type(raw).__name__}")
    return document_from_json(raw, where)


def _load_file(p: Path) -> Document:
    if p.suffix.lower() != ".json":
        return document_from_text(p)
    try:
        raw = json.loads(read_text(p))
    except json.JSONDecodeError as e:
        raise InputError(f"{p}: not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{p}: expected one JSON object per file")
    return document_from_json(raw, str(p))


def check_usable(documents: list[Document], day: date, source: str | Path) -> list[Document]:
    """The documents copy may cite today; none is an input error (exit 2), not a safety-gate stop."""
    usable = [d for d in documents if d.usable_on(day)]
    if usable:
        return usable
    expired = sum(bool(d.expires_at and d.expires_at < day) for d in documents)
    draft = sum(d.approval_status.lower() != "approved" for d in documents)
    future = sum(bool(d.approved_at and d.approved_at > day) for d in documents)
    raise InputError(f"{source}: none of the {len(documents)} documents may be cited on {day} ({expired} expired, "
                     f"{draft} not approved, {future} approved only from a later date); add current approved content")
