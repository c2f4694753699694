"""The per-customer stages over Parquet partitions of the customer file (INTERFACE: Scale-out).

A partition is a slice of the customer file in file order, `stages/<stage>/part-NNNNN.parquet` in the run
folder. Each function here takes partition paths and plain values (picklable: they run on a Dask worker as
well as in the flow process) and writes its output partition beside them. What needs the whole file is
learned once before the map (RFM cut points, the k-means model, the median order value, the arm weights) or
merged after it from sufficient statistics (the true lifts); what depends on a customer (its arm, its
simulated draws, whether it is in the explanation's sample) depends on its id and the seed only. So the
concatenated outputs are the same whatever the partition size or where the partitions ran.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tasks.errors import InputError, SafetyGateError


def bounds(n: int, rows: int) -> list[tuple[int, int]]:
    """(offset, length) of each partition of n rows, `rows` at most each; one (empty) partition for n = 0."""
    return [(o, min(rows, n - o)) for o in range(0, n, rows)] or [(0, 0)]


def part_path(folder: str | Path, index: int) -> str:
    return str(Path(folder) / f"part-{index:05d}.parquet")


def write_part(df: pl.DataFrame, path: str | Path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.write_parquet(tmp, statistics=False)
    os.replace(tmp, path)
    return str(path)


def write_parts(df: pl.DataFrame, folder: str | Path, rows: int) -> list[str]:
    """Cut `df` into partitions of `rows` customers (file order kept) and write them to `folder`."""
    return [write_part(df.slice(o, n), part_path(folder, i)) for i, (o, n) in enumerate(bounds(df.height, rows))]


def read_parts(paths: list[str], columns: list[str] | None = None) -> pl.DataFrame:
    """The partitions concatenated in order: the frame they were cut from (or those of its `columns` it has)."""
    if columns is not None:
        have = pl.read_parquet_schema(paths[0])
        columns = [c for c in columns if c in have]
    return pl.concat([pl.read_parquet(p, columns=columns) for p in paths], how="vertical", rechunk=True)  # one
    # chunk: a mean or sum over it adds in the same order whatever the partitioning


def check_unique_ids(df: pl.DataFrame, source: str | Path) -> None:
    """customer_id unique over the whole file (each partition's checkpoint sees only its own rows). The error
    names the repeated ids' row numbers, not the ids (they may be personal data such as an email)."""
    dup = df.select(pl.col("customer_id").is_duplicated().arg_true().head(6) + 1)["customer_id"].to_list()
    if dup:
        n = df.select(pl.col("customer_id").is_duplicated().sum()).item()
        raise InputError(f"{source}: customer_id must be unique: {n} rows share an id with another row "
                         f"(e.g. rows {', '.join(map(str, dup))})")


def where_in(offset: int, rows: int, index: int, partitions: int) -> str:
    """Which rows of the file a failed part holds (nothing when it is the whole file)."""
    return (f" (rows {offset + 1}-{offset + rows}, partition {index + 1} of {partitions}; the counts are this "
            "partition's)") if partitions > 1 else ""


def validate_part(path: str, source: str, index: int, docs_dir: str | None = None, offset: int = 0,
                  partitions: int = 1) -> int:
    """The customer checkpoint (Great Expectations) on one partition (its first row is row offset + 1 of the
    file); a failure names the example rows by their row numbers in the file."""
    from tasks.checkpoints import run_checkpoint

    df = pl.read_parquet(path)
    result = run_checkpoint("customers", df, Path(docs_dir) if docs_dir else None)
    if not result.success:
        raise InputError(f"{source}: customer data failed validation{where_in(offset, df.height, index, partitions)}"
                         f"\n{result.rows_from(offset).summary()}")
    return df.height


def segment_part(src: str, segmenter, dst: str) -> dict:
    """Apply a fitted segmenter to one partition; returns its segment sizes."""
    out = segmenter.transform(pl.read_parquet(src))
    write_part(out, dst)
    return dict(out.group_by("segment").len().iter_rows())


def assign_part(src: str, passed: dict, weights: dict, seed: int, salt: str, holdout: float, dst: str,
                docs_dir: str | None = None) -> int:
    """Arms for one partition's eligible customers; the assignment checkpoint and the screened-variant check
    run on it before it is written. Returns the number assigned."""
    from tasks.checkpoints import run_checkpoint
    from tasks.experiment.assign import assign_arms_with, eligible, unscreened_sends

    customers = pl.read_parquet(src)
    pool = customers.filter(eligible(customers)).select("customer_id", "segment")
    assignments = assign_arms_with(pool, passed, weights, seed, salt, holdout)
    result = run_checkpoint("assignments", assignments, Path(docs_dir) if docs_dir else None)
    leaked = unscreened_sends(assignments, passed)
    if not result.success or leaked:
        raise SafetyGateError(f"assignment checkpoint failed; nothing was sent\n{result.summary()}"
                              f"\n{leaked} customers hold a variant that did not pass")
    write_part(assignments, dst)
    return assignments.height


def simulate_part(assign_src: str, customers_src: str, strategy_of: dict, sim, seed: int, typical: float,
                  dst: str) -> dict:
    """Simulated outcomes of one partition's assigned customers; returns the truth's sufficient statistics."""
    import numpy as np

    from tasks.experiment.assign import CONTROL, HOLDOUT
    from tasks.experiment.simulate import baseline, simulate, truth_sums

    frame = pl.read_parquet(assign_src)
    if customers_src != assign_src:  # an assignment partition and its customers' partition
        customers = pl.read_parquet(customers_src).drop("segment", strict=False)
        frame = frame.join(customers, on="customer_id", how="left", maintain_order="left")
    outcomes, _ = simulate(frame, strategy_of, sim, seed, typical)
    write_part(outcomes, dst)
    sent = frame.filter(pl.col("arm") != HOLDOUT)
    arms = sent["arm"].to_numpy()
    strategies = np.array([strategy_of.get(v, "") for v in sent["variant_id"].fill_null("").to_list()], dtype=object)
    return truth_sums(sent, arms, strategies, baseline(sent, sim), sim) if (arms != CONTROL).any() else {}


RENDER_ROWS = 50_000  # recipients rendered at a time: a rendered message is ~1 KB, a partition 250,000 customers


def export_part(assign_src: str, customers_src: str, messages: dict, brand, fallbacks: dict, run_id: str,
                mailto: str | None, seeds: pl.DataFrame | None, control_id: str | None, sends_dst: str,
                dst: str) -> tuple[list[str], int]:
    """One partition's messages rendered, RENDER_ROWS recipients at a time, each piece of sends.csv a file
    (`sends_dst`-NNN.parquet, in order: held whole one at a time; the seeds' ids are checked against this
    partition's customers, their messages are rendered once by the flow), and who was sent what (`dst`: the
    outcomes are read back against it). Returns the pieces and how many recipients' merge values were not used
    (they do not read as a name: the fallback took their place)."""
    from tasks.experiment.sends import merge_values_unused, render_sends, to_send

    assigned = to_send(join_part(assign_src, customers_src), control_id)
    recipients = assigned.filter(pl.col("variant_id").is_not_null())
    pieces = []
    for k, chunk in enumerate(assigned.iter_slices(RENDER_ROWS)):
        sends = render_sends(chunk, messages, brand, fallbacks, run_id, mailto, seeds).filter(pl.col("seed") == 0)
        pieces.append(write_part(sends, f"{sends_dst}-{k:03d}.parquet"))
    write_part(assigned.select("customer_id", "email", "segment", "arm", "variant_id",
                               pl.lit(0, pl.Int8).alias("seed")), dst)
    return pieces, merge_values_unused(recipients, list(fallbacks))


def outcomes_part(events_src: str, sends_src: str, shared: pl.Series, delivered_events: bool, analysed_only: bool,
                  dst: str | None, recipients_dst: str | None) -> dict:
    """One partition of who was sent what, with its recipients' events: every recipient's outcomes
    (`recipients_dst`: the rollout never emails again who bounced, unsubscribed or complained) and those analysed
    (`dst`: the delivered ones when `analysed_only`). Returns this partition's counts."""
    from tasks.experiment.events import events_of, recipient_outcomes

    sends = pl.read_parquet(sends_src)
    out, counts = recipient_outcomes(events_of(pl.scan_parquet(events_src), sends), sends, shared, delivered_events)
    if recipients_dst:
        write_part(out, recipients_dst)
    if dst:
        analysed = out.filter(pl.col("delivered") == 1) if analysed_only else out
        write_part(analysed, dst)
        counts["analysed"] = analysed.height
    return counts


def explain_sample(frame: pl.DataFrame, seed: int, rows: int, total: int | None = None) -> pl.DataFrame:
    """A seeded sample of about `rows` of `total` customers (default: the frame's) for the explanation, chosen by
    each customer's own hash (so the same customers whatever the partitioning), in file order; the whole frame
    when it is small. A partition passes the whole file's `total`."""
    from tasks.experiment.assign import hash_unit

    total = frame.height if total is None else total
    if total <= rows:
        return frame
    keep = hash_unit(frame["customer_id"], seed, "explain-sample") < rows / total
    return frame.filter(pl.Series(keep, dtype=pl.Boolean))


def eligible_segments_part(src: str) -> list[str]:
    """The segments of one partition's customers who may be emailed."""
    from tasks.experiment.assign import eligible

    names = [c for c in ("segment", "email_opt_in", "email") if c in pl.read_parquet_schema(src)]
    df = pl.read_parquet(src, columns=names)
    return df.filter(eligible(df))["segment"].unique().drop_nulls().to_list()


def join_part(left: str, right: str, columns: list[str] | None = None, seed: int | None = None,
              sample: int | None = None, total: int | None = None) -> pl.DataFrame:
    """One partition's rows of `left` (assignments, outcomes) with their customers' attributes from `right`
    (`columns`; every column but those `left` has, by default), in `left`'s order; optionally only the
    explanation's sample (`seed`, `sample` of `total`)."""
    rows = pl.read_parquet(left)
    if sample is not None:
        rows = explain_sample(rows, seed, sample, total)
    wanted = pl.read_parquet_schema(right) if columns is None else columns
    customers = customers_part(right, [c for c in wanted if c not in rows.columns])
    return rows.join(customers, on="customer_id", how="left", maintain_order="left")


def customers_part(path: str, columns: list[str] | None = None) -> pl.DataFrame:
    """customer_id and those of `columns` (all by default) the partition has."""
    have = pl.read_parquet_schema(path)
    wanted = ["customer_id", *[c for c in (have if columns is None else columns) if c in have and c != "customer_id"]]
    return pl.read_parquet(path, columns=wanted)


def rows_in(paths: list[str]) -> int:
    return pl.scan_parquet(paths).select(pl.len()).collect().item() if paths else 0


@dataclass(frozen=True)
class Rows:
    """A frame described, not held: a stage's partitions (`left`: assignments, outcomes) with their customers'
    `columns` from the aligned customer partitions (`right`; all columns when None), optionally only the
    explanation's seeded sample (`sample` = (seed, rows)). Tasks take this and load it themselves, so a frame
    of millions of rows lives only while the task that needs it runs (Prefect keeps every task's arguments and
    return values until the flow ends)."""
    left: tuple[str, ...]
    right: tuple[str, ...]
    columns: tuple[str, ...] | None = None
    sample: tuple[int, int] | None = None

    def parts(self):
        """The partitions' frames in file order, one at a time."""
        total = rows_in(list(self.left)) if self.sample else None
        seed, rows = self.sample or (None, None)
        columns = list(self.columns) if self.columns is not None else None
        return (join_part(a, b, columns, seed, rows, total) for a, b in zip(self.left, self.right))

    def load(self) -> pl.DataFrame:
        return pl.concat(list(self.parts()), how="vertical")


def loaded(frame: pl.DataFrame | Rows) -> pl.DataFrame:
    return frame.load() if isinstance(frame, Rows) else frame
