"""Great Expectations checkpoints over polars frames.

`run_checkpoint("customers", df)` loads `expectations/customers.json` (a GX 1.x expectation suite as JSON),
validates `df.to_pandas()` with GX's own Checkpoint and ValidationDefinition on GX's pandas engine (GX 1.x has
no polars engine) and returns a `CheckpointResult` whose failures name the column, say in plain words what was
expected, count the offending rows and show up to five of them, whole, with their 1-based row number.

`run_checkpoint(suite, df, docs_dir=run / "data_docs")` also writes GX's HTML Data Docs there as evidence
(GX's UpdateDataDocsAction on a SiteBuilder site in that folder): `index.html`, one page per validation and
per suite, GX's static assets (~4 MB), and the validation results and suites as JSON (`results/`, `suites/`),
which GX's site index reads, so a resumed run in another process adds to the same index instead of
replacing it.

Suite JSON: the form GX 1.x's `ExpectationSuite(**json)` accepts,
`{"name": ..., "expectations": [{"type": "expect_...", "kwargs": {...}, "meta": {...}}]}`, plus two keys
of our own in each expectation's `meta`:
  * `description`: the plain-words sentence shown when it fails;
  * `required`: true if the column must exist. An expectation on a column the frame lacks is skipped
    (listed in `CheckpointResult.skipped`) unless its column is required; for a missing required column GX
    checks `expect_column_to_exist` instead, which fails (one failure per column).
The description is also the expectation's GX `description`, so Data Docs show the same plain words.

Cost: `import great_expectations` takes ~5 s, so it happens lazily on the first call, once per process;
the GX context, data source and batch definition are then kept (module-level; one more small context per
docs folder, ~0.03 s to build) so later calls only pay for the validation itself (~0.1 s for 10K rows,
~1.5 s for 1M rows) and, with docs_dir, ~0.3 s to render the pages.
"""
from __future__ import annotations

import copy
import datetime
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

__all__ = ["CheckpointResult", "FailedExpectation", "run_checkpoint", "EXPECTATIONS_DIR"]

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

MAX_EXAMPLES = 5
# How many unexpected row indices GX returns per expectation (SUMMARY format: a bounded list, so a
# 1M-row frame never materialises a 1M-long index list in the result). A few more than MAX_EXAMPLES so
# uniqueness failures can be grouped by duplicated value.
_INDEX_SAMPLE = 20
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": _INDEX_SAMPLE,
                  "exclude_unexpected_values": True}  # row numbers only: no customer value reaches GX results or Data Docs
_UNIQUENESS = frozenset({"expect_column_values_to_be_unique"})
_INDEX_KEY = "_cpo_index"  # our own meta key, to match GX results back to suite entries


# --------------------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class FailedExpectation:
    expectation: str          # e.g. "expect_column_values_to_not_be_null"
    column: str | None        # "decision, status" for a column-pair expectation; None for table-level
    description: str          # plain words, from the suite's meta.description
    unexpected_count: int
    examples: list[dict]      # up to 5 offending rows, whole, each with "row" = 1-based data row number

    def line(self) -> str:
        where = self.column if self.column is not None else "(table)"
        text = f"{where}: {self.description}"
        if self.unexpected_count:
            text += f" -- {self.unexpected_count} row{'s' if self.unexpected_count != 1 else ''}"
        if self.examples:
            text += "; e.g. " + "; ".join(_format_example(e) for e in self.examples)
        return text


@dataclass(frozen=True)
class CheckpointResult:
    suite: str
    success: bool
    evaluated: int                                   # expectations GX evaluated (+1 per missing required column)
    failures: list[FailedExpectation]
    skipped: list[str] = field(default_factory=list)  # expectations skipped: their optional column is absent
    docs_page: str | None = None                      # file:// URL of this validation's Data Docs page

    def rows_from(self, offset: int) -> "CheckpointResult":
        """The example rows numbered in the whole file, for a checkpoint run on a part starting at row offset + 1."""
        for failure in self.failures:
            for example in failure.examples:
                if isinstance(example.get("row"), int):
                    example["row"] += offset
        return self

    def summary(self) -> str:
        if self.success:
            head = f"checkpoint '{self.suite}': passed ({self.evaluated} expectations met)"
        else:
            head = (f"checkpoint '{self.suite}': FAILED {len(self.failures)} of {self.evaluated} expectations")
        lines = [head]
        lines += [f"  - {f.line()}" for f in self.failures]
        if self.skipped:
            lines.append(f"  (skipped, column absent: {', '.join(self.skipped)})")
        return "\n".join(lines)


def _shown(value) -> str:
    """A cell as a person reads it: quoted text, a timestamp or date in ISO 8601, a missing value blank ('')."""
    if value is None:
        return "''"
    if isinstance(value, (datetime.date, datetime.time)):
        return repr(value.isoformat())
    return repr(value)


def _format_example(example: dict) -> str:
    row = example.get("row")
    body = ", ".join(f"{k}={_shown(v)}" for k, v in example.items() if k != "row")
    if len(body) > 240:
        body = body[:237] + "..."
    return f"row {row}: {body}"


# ----------------------------------------------------------------------------------- GX (lazy, cached)

@dataclass
class _GX:
    gx: Any                    # the great_expectations module
    context: Any
    datasource: Any
    batch_definition: Any
    site: str | None = None    # the Data Docs site of a docs context


_gx_state: _GX | None = None
_docs_states: dict[Path, _GX] = {}   # per docs folder (a run's data_docs), most recent last
_MAX_DOCS_STATES = 4
_gx_lock = threading.RLock()  # one validation at a time: the data source's execution engine is shared
_SITE = "run_data_docs"


def _gx() -> _GX:
    """Import GX and build an in-memory context once per process (the import alone is ~5 s)."""
    global _gx_state
    if _gx_state is not None:
        return _gx_state
    with _gx_lock:
        if _gx_state is None:
            started = time.perf_counter()
            _gx_state = _context(None)
            logger.debug("great_expectations %s ready in %.2fs", _gx_state.gx.__version__,
                         time.perf_counter() - started)
        return _gx_state


def _docs_gx(docs_dir: Path) -> _GX:
    """A context whose Data Docs site, validation results and suites live in `docs_dir` (kept per folder)."""
    docs_dir = docs_dir.resolve()
    with _gx_lock:
        state = _docs_states.pop(docs_dir, None) or _context(docs_dir)
        _docs_states[docs_dir] = state  # most recent last
        while len(_docs_states) > _MAX_DOCS_STATES:
            _docs_states.pop(next(iter(_docs_states)))
        return state


def _context(docs_dir: Path | None) -> _GX:
    os.environ["GX_ANALYTICS_ENABLED"] = "false"  # no usage statistics (no network here anyway)
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    _disable_batch_fingerprint()
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    if docs_dir is not None:
        def files(sub: str) -> dict:
            return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir / sub)}

        config.stores["validation_results_store"] = {"class_name": "ValidationResultsStore",
                                                     "store_backend": files("results")}
        config.stores["expectations_store"] = {"class_name": "ExpectationsStore", "store_backend": files("suites")}
        config.data_docs_sites = {_SITE: {"class_name": "SiteBuilder", "show_how_to_buttons": False,
                                          "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                                            "base_directory": str(docs_dir)},
                                          "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}}
    context = gx.get_context(mode="ephemeral", project_config=config)
    datasource = context.data_sources.add_pandas(name="cpo_checkpoints")
    asset = datasource.add_dataframe_asset(name="frame")
    batch_definition = asset.add_batch_definition_whole_dataframe(name="whole_frame")
    return _GX(gx, context, datasource, batch_definition, _SITE if docs_dir is not None else None)


def _disable_batch_fingerprint() -> None:
    """GX md5-hashes every pandas batch it loads (`pd.util.hash_pandas_object`, for a metadata field we
    never read), and `Batch.validate` loads the batch twice: ~2.5 s of a ~4 s validation at 1M rows.
    The hash is skipped for frames above HASH_THRESHOLD bytes, so a threshold of 0 skips it always."""
    try:
        from great_expectations.execution_engine import pandas_execution_engine
    except ImportError:  # pragma: no cover - moved in some future GX
        return
    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


def _release_batch(state: _GX) -> None:
    """The execution engine keeps the last batch (our pandas copy of the frame) in its caches; drop it
    so a 1M-row frame is not held after the call returns."""
    try:
        manager = state.datasource.get_execution_engine().batch_manager
        manager.reset_batch_cache()
        manager.batch_data_cache.clear()
    except Exception:  # noqa: BLE001 - best effort; only memory is at stake
        logger.debug("could not clear GX batch cache", exc_info=True)


# ---------------------------------------------------------------------------------------- suite files

@dataclass(frozen=True)
class _Entry:
    index: int
    config: dict               # {"type", "kwargs", "meta"} as in the JSON
    type: str
    columns: tuple[str, ...]   # the columns it reads
    required: bool
    description: str


@dataclass(frozen=True)
class _SuiteSpec:
    name: str
    entries: tuple[_Entry, ...]
    required_columns: tuple[str, ...]


_spec_cache: dict[Path, tuple[int, _SuiteSpec]] = {}


def _columns_of(kwargs: dict) -> tuple[str, ...]:
    if "column" in kwargs:
        return (kwargs["column"],)
    if "column_A" in kwargs or "column_B" in kwargs:
        return tuple(kwargs[k] for k in ("column_A", "column_B") if k in kwargs)
    if "column_list" in kwargs:
        return tuple(kwargs["column_list"])
    return ()


def _default_description(type_: str, kwargs: dict) -> str:
    params = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()
                       if k not in ("column", "column_A", "column_B", "column_list", "batch_id"))
    return type_.removeprefix("expect_").replace("_", " ") + (f" ({params})" if params else "")


def _load_spec(suite: str) -> _SuiteSpec:
    """Read and check expectations/<suite>.json; cached until the file changes."""
    path = EXPECTATIONS_DIR / f"{suite}.json"
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        known = sorted(p.stem for p in EXPECTATIONS_DIR.glob("*.json"))
        raise FileNotFoundError(f"no expectation suite {suite!r} at {path} (known suites: {known})") from None
    cached = _spec_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]

    _gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("expectations"), list):
        raise ValueError(f"{path}: expected an object with an 'expectations' list")
    entries, required = [], []
    for i, item in enumerate(raw["expectations"]):
        if not isinstance(item, dict) or "type" not in item or not isinstance(item.get("kwargs"), dict):
            raise ValueError(f"{path}: expectation #{i + 1} needs 'type' and a 'kwargs' object")
        config = {k: item[k] for k in ("type", "kwargs", "meta", "notes", "description") if k in item}
        # Build it now so a typo fails loudly: ExpectationSuite(...) itself only *logs* an invalid
        # expectation and drops it, which would silently weaken the checkpoint.
        try:
            ExpectationConfiguration(**copy.deepcopy(config)).to_domain_obj()
        except Exception as e:  # noqa: BLE001 - re-raised with the file and position
            raise ValueError(f"{path}: expectation #{i + 1} ({item['type']}) is not valid: {e}") from e
        meta = item.get("meta") or {}
        columns = _columns_of(item["kwargs"])
        is_required = bool(meta.get("required", False))
        description = meta.get("description") or item.get("description") or _default_description(
            item["type"], item["kwargs"])
        entries.append(_Entry(i, config, item["type"], columns, is_required, description))
        if is_required:
            required += [c for c in columns if c not in required]
    spec = _SuiteSpec(raw.get("name") or suite, tuple(entries), tuple(required))
    _spec_cache[path] = (mtime, spec)
    return spec


# ------------------------------------------------------------------------------------------ checkpoint

def run_checkpoint(suite: str, df: pl.DataFrame, docs_dir: Path | None = None) -> CheckpointResult:
    """Validate `df` against expectations/<suite>.json with a GX Checkpoint and explain every failure;
    with `docs_dir`, GX also writes the validation's Data Docs (HTML) into that folder."""
    import polars as pl

    if isinstance(df, pl.LazyFrame):
        raise TypeError("run_checkpoint needs a polars DataFrame; call .collect() on the LazyFrame first")
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"run_checkpoint needs a polars DataFrame, not {type(df).__name__}")

    started = time.perf_counter()
    spec = _load_spec(suite)
    present = set(df.columns)
    missing = [c for c in spec.required_columns if c not in present]
    runnable, skipped = [], []
    for entry in spec.entries:
        if all(c in present for c in entry.columns):
            runnable.append(entry)
        elif not (entry.required or set(entry.columns) & set(spec.required_columns)):
            skipped.append(f"{entry.type}({', '.join(c for c in entry.columns)})")
        # else: its required column is missing, which GX's expect_column_to_exist reports below
    checks = runnable + [_column_exists(spec, column, df) for column in missing]

    failures: list[FailedExpectation] = []
    evaluated, success, page = 0, True, None
    if checks:
        validation, page = _validate(spec, checks, df, Path(docs_dir) if docs_dir is not None else None)
        by_index = {e.index: e for e in checks}
        evaluated, success = validation.statistics["evaluated_expectations"], validation.success
        for result in sorted(validation.results, key=lambda r: r.expectation_config.meta[_INDEX_KEY]):  # suite order
            if not result.success:
                failures.append(_failure(by_index[result.expectation_config.meta[_INDEX_KEY]], result, df))

    outcome = CheckpointResult(suite=spec.name, success=success and not failures, evaluated=evaluated,
                               failures=failures, skipped=skipped, docs_page=page)
    logger.debug("checkpoint %s on %d rows: %s in %.3fs", suite, df.height,
                 "passed" if outcome.success else f"{len(failures)} failures", time.perf_counter() - started)
    return outcome


def _column_exists(spec: _SuiteSpec, column: str, df: pl.DataFrame) -> _Entry:
    """GX's own check for a required column the frame lacks, described in plain words."""
    return _Entry(index=len(spec.entries) + spec.required_columns.index(column),
                  config={"type": "expect_column_to_exist", "kwargs": {"column": column}},
                  type="expect_column_to_exist", columns=(column,), required=True,
                  description=(f"required column {column!r} is missing; the frame has "
                               f"{', '.join(df.columns) if df.width else 'no columns'}"))


def _validate(spec: _SuiteSpec, entries: list[_Entry], df: pl.DataFrame, docs_dir: Path | None):
    """Run the entries as one GX Checkpoint (one ValidationDefinition on the whole frame); with docs_dir, GX's
    UpdateDataDocsAction renders it into that folder. Returns GX's validation result and the page's path."""
    state = _docs_gx(docs_dir) if docs_dir is not None else _gx()
    gx = state.gx
    expectations = []
    for entry in entries:
        config = copy.deepcopy(entry.config)
        config["meta"] = {**(config.get("meta") or {}), _INDEX_KEY: entry.index}
        config["description"] = entry.description  # GX's own field: Data Docs show our plain words
        expectations.append(config)
    pdf = df.to_pandas()
    with _gx_lock:
        context = state.context
        suite = gx.ExpectationSuite(name=spec.name, expectations=expectations)
        if len(suite.expectations) != len(expectations):  # GX logs and drops invalid ones; never run fewer
            raise ValueError(f"suite {spec.name!r}: GX accepted only {len(suite.expectations)} of "
                             f"{len(expectations)} expectations (see the log)")
        suite = context.suites.add_or_update(suite)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=spec.name, data=state.batch_definition, suite=suite))
        actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[state.site])] if state.site else []
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(name=spec.name, validation_definitions=[definition], actions=actions,
                          result_format=_RESULT_FORMAT))
        try:
            result = checkpoint.run(batch_parameters={"dataframe": pdf})
        finally:
            _release_batch(state)
        (key, validation), = result.run_results.items()
        page = None
        if state.site:
            urls = context.get_docs_sites_urls(resource_identifier=key, site_names=[state.site])
            page = urls[0]["site_url"] if urls else None
        else:  # the in-memory store would otherwise keep every result of the process
            context.validation_results_store.remove_key(key)
    return validation, page


def _failure(entry: _Entry, result, df: pl.DataFrame) -> FailedExpectation:
    details = result.result or {}
    column = ", ".join(entry.columns) if entry.columns else None
    error = _exception_message(result.exception_info)
    if error:
        return FailedExpectation(entry.type, column, f"{entry.description} (could not be checked: {error})",
                                 0, [])
    indices = details.get("partial_unexpected_index_list") or details.get("unexpected_index_list") or []
    indices = [i for i in indices if isinstance(i, int)]
    if entry.type in _UNIQUENESS and len(entry.columns) == 1:
        indices = _duplicate_groups(df, entry.columns[0], indices)
    count = details.get("unexpected_count")
    if count is None:  # aggregate expectations (no per-row notion) report an observed value instead
        count = len(indices)
    description = entry.description
    if not indices and "observed_value" in details:
        description += f" (observed {details['observed_value']!r})"
    return FailedExpectation(entry.type, column, description, int(count),
                             _rows(df, indices[:MAX_EXAMPLES], entry.columns))


def _duplicate_groups(df: pl.DataFrame, column: str, indices: list[int]) -> list[int]:
    """Reorder the offending rows so the examples show each duplicated value with its twins
    (GX lists them in row order, so 5 rows could be 5 different values whose twins are far away)."""
    import polars as pl

    out: list[int] = []
    seen_values: list = []
    series = df.get_column(column)
    for i in indices:
        value = series[i]
        if value in seen_values:
            continue
        seen_values.append(value)
        hits = (df.lazy().with_row_index("__cpo_row").filter(pl.col(column) == value)
                .select("__cpo_row").head(MAX_EXAMPLES - len(out)).collect().to_series().to_list())
        out += [h for h in hits if h not in out]
        if len(out) >= MAX_EXAMPLES:
            break
    return out or indices


def _rows(df: pl.DataFrame, indices: list[int], checked: tuple[str, ...] = ()) -> list[dict]:
    """The offending rows without personal data: PII columns dropped, except the checked ones, masked."""
    import polars as pl

    from tasks.privacy import pii_columns, safe_row

    if not indices:
        return []
    rows = df.select(pl.all().gather(indices))
    pii = pii_columns(rows) | {c: k for c, k in pii_columns(df.head(2000)).items()}
    # "row" is the 1-based row number; a data column that happens to be called "row" becomes "_row"
    return [{"row": i + 1, **{("_row" if k == "row" else k): v for k, v in safe_row(row, pii, set(checked)).items()}}
            for i, row in zip(indices, rows.to_dicts())]


def _exception_message(info: Any) -> str | None:
    """GX 1.x reports exceptions either as one {"raised_exception", "exception_message"} dict or as a
    dict of those keyed by metric id."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    messages = [v.get("exception_message") for v in info.values()
                if isinstance(v, dict) and v.get("raised_exception")]
    messages = [m for m in messages if m]
    return "; ".join(dict.fromkeys(messages)) or None
