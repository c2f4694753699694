"""Property-based: customer tables of many shapes, driven through the stage functions from ingest to report.

Invariant: a clean input error (InputError, exit 2), or a complete and consistent result: every eligible
customer assigned exactly once, no opted-out customer assigned, only passed variants, arm shares consistent
with the weights, a report written. A table that is valid (unique ids, numbers, enough opted-in customers)
must give the complete result.

Profiles: `HYPOTHESIS_PROFILE=ci` (default, fixed seed, ~1 minute) or `long` (many more examples):
    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_any_input.py
"""
from __future__ import annotations

import os
import string
from functools import lru_cache

import numpy as np
import polars as pl
import polars.selectors as cs
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from tasks.errors import InputError

from datetime import date
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
TODAY = date(2026, 11, 24)


CONSENT_COLUMNS = [("email_opt_in", False), ("Accepts Marketing", False), ("unsubscribed", True), (None, False)]
ID_KINDS = ["int", "padded", "uuid", "unicode", "float"]


@lru_cache(maxsize=1)
def machinery():
    """Settings, documents and the embedded backends, built once."""
    from config import load_settings
    from tasks.content import load_documents
    from tasks.generation import make_generator
    from tasks.retrieval import make_retriever
    from tasks.safety import Screener, make_harm_scorer
    from tasks.safety.rules import Context

    campaign, policy, brand = load_settings()
    documents = load_documents(SAMPLE / "content")
    by_id = {d.id: d for d in documents}
    screener = Screener(make_harm_scorer("local"), Context(brand, policy, by_id, TODAY, 60))
    return campaign, documents, make_retriever("local", documents), make_generator("local", brand, 60), screener


@lru_cache(maxsize=64)
def variants_for(profile_json: str, document_ids: tuple[str, ...]):
    """Generated and screened variants of one segment (cached: segment profiles repeat across examples)."""
    from flows.stages import generate
    from tasks.generation import first_strategies
    from tasks.records import SegmentProfile
    from tasks.safety import message_of

    campaign, documents, _, generator, screener = machinery()
    profile = SegmentProfile.model_validate_json(profile_json)
    docs = [d for d in documents if d.id in document_ids]
    gen = campaign.generation
    slots = {k: (s, 1) for k, s in first_strategies(gen.strategies, gen.variants_per_segment).items()}
    spare = [s for s in gen.strategies if s not in dict(slots.values())]
    out = []
    for v in generate.fn(generator, profile, docs, slots, {}, spare):
        verdict = screener.screen(message_of(v))
        out.append(v.model_copy(update={"status": "passed" if verdict.decision == "pass" else "blocked"}))
    return out


def run_stages(path, columns: dict[str, str], seed: int, explain: bool = False, overrides: dict | None = None) -> dict:
    """The campaign's stage functions in the flow's order, without Prefect."""
    from tasks.checkpoints import run_checkpoint
    from tasks.experiment.analysis import lift_table, srm_checks
    from tasks.experiment.assign import CONTROL, assign, check_eligible
    from tasks.experiment.design import design_power, expected_baselines
    from tasks.experiment.simulate import simulate
    from tasks.explain import Explanation, explain as explain_effects
    from tasks.explain.buckets import variant_factors
    from tasks.ingest import load_customers, resolve_consent
    from tasks.privacy import pii_columns
    from tasks.report import to_markdown
    from tasks.retrieval import retrieve_for_segments
    from tasks.safety import passed_by_segment
    from tasks.sections import campaign_report
    from tasks.segmentation import make_segmenter, profile_segments

    from config import load_campaign

    campaign, documents, retriever, _, _ = machinery()
    campaign = load_campaign(None, overrides) if overrides else campaign
    exp, seg = campaign.experiment, campaign.segmentation
    df, consent = resolve_consent(load_customers(path, columns), columns, None, path)
    checked = run_checkpoint("customers", df)
    if not checked.success:
        raise InputError(checked.summary())
    check_eligible(df, str(path), exp.min_eligible_customers)
    personal = pii_columns(df)
    df = make_segmenter(seg.method, seg.k_range, seg.min_segment_share, seed).fit(df).transform(df)
    profiles = profile_segments(df)
    hits = retrieve_for_segments(retriever, profiles, campaign.retrieval.top_k, TODAY)
    variants = [v for p in profiles for v in variants_for(p.model_dump_json(), tuple(h.document_id for h in hits[p.name]))]
    passed = passed_by_segment(variants, [p.name for p in profiles], exp.min_passed_variants_per_segment)
    assignments, weights = assign(df, passed, exp.control_weight, seed, campaign.name, exp.holdout_weight,
                                  exp.treatment_weights)
    frame = assignments.join(df.drop("segment"), on="customer_id", how="left")
    sim = campaign.simulation
    design = design_power(assignments, expected_baselines(frame, sim.default_open_rate, sim.default_click_given_open,
                                                          sim.convert_given_click), exp.alpha, exp.power, exp.target_lift)
    outcomes, truth = simulate(frame, {v.variant_id: v.strategy for v in variants}, sim, seed)
    attributes = outcomes.join(df.drop("segment"), on="customer_id", how="left")
    covariates = {m: c for m, c in exp.covariates.items() if c in df.columns}
    results = lift_table(attributes, exp.metrics, CONTROL, exp.alpha, exp.correction, covariates=covariates)
    srm = srm_checks(attributes, weights)
    explanation = (explain_effects(attributes, exp.metrics, CONTROL, seed, exclude=personal) if explain
                   else Explanation(pl.DataFrame()))
    facts = {"run_id": "property", "customers": df.height, "profiles": profiles, "hits": hits, "variants": variants,
             "assignments": assignments, "documents": documents, "backends": {}, "simulation": sim, "truth": truth,
             "policy_version": "test", "seconds": {}, "design": design, "declarations": [], "consent": consent,
             "personal": personal, "cuped_skipped": {}}
    title, sections = campaign_report(facts, results, srm, explanation,
                                      variant_factors(results, variants, exp.metrics), exp)
    return {"customers": df, "assignments": assignments, "weights": weights, "passed": passed,
            "report": to_markdown(title, sections), "srm": srm, "results": results}


def check_consistent(out: dict, opted_in: set[str]) -> None:
    every, weights = out["assignments"], out["weights"]
    assert every["customer_id"].is_unique().all(), "a customer is assigned twice"
    assert set(every["customer_id"].to_list()) == opted_in, "assigned customers differ from the eligible ones"
    a = every.filter(pl.col("arm") != "holdout")
    allowed = {vid for slots in out["passed"].values() for vid in slots.values()}
    treated = a.filter(pl.col("variant_id").is_not_null())
    assert set(treated["variant_id"].to_list()) <= allowed, "a customer holds a variant that did not pass"
    assert a.filter(pl.col("arm") == "control")["variant_id"].null_count() == a.filter(pl.col("arm") == "control").height
    for segment, w in weights.items():
        arms = a.filter(pl.col("segment") == segment)["arm"]
        assert set(arms.to_list()) <= set(w), f"{segment}: an arm outside its weights"
        if arms.len() >= 2_000:  # shares within 5 standard errors of the weights
            for arm, p in w.items():
                share = (arms == arm).mean()
                assert abs(share - p) < 5 * np.sqrt(p * (1 - p) / arms.len()) + 1e-9, (segment, arm, share, p)
    assert out["report"].startswith("# Campaign report") and "Results" in out["report"]


def ids(kind: str, n: int, rng: np.random.Generator) -> list:
    if kind == "int":
        return list(rng.permutation(np.arange(1, n + 1) * 7))
    if kind == "padded":
        return [f"{i:08d}" for i in rng.permutation(n)]
    if kind == "uuid":
        return ["".join(rng.choice(list("abcdef0123456789"), 12)) + f"-{i}" for i in range(n)]
    if kind == "unicode":
        return [f"Kündé-{i}-名" for i in range(n)]
    return [f"{i}.5" for i in range(n)]


@st.composite
def customer_tables(draw, max_rows: int = 400):
    n = draw(st.one_of(st.integers(0, 5), st.integers(6, 60), st.integers(61, max_rows)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = draw(st.sampled_from(["uniform", "skewed", "constant", "zeros"]))
    if shape == "uniform":
        recency, freq, money = rng.integers(0, 400, n), rng.integers(0, 30, n), rng.uniform(0, 2_000, n).round(2)
    elif shape == "skewed":
        recency, freq = rng.exponential(20, n).round(), rng.geometric(0.5, n) - 1
        money = (rng.lognormal(3, 2, n) * (rng.random(n) < 0.2)).round(2)
    elif shape == "constant":
        recency, freq, money = np.full(n, 30), np.full(n, 2), np.full(n, 50.0)
    else:
        recency, freq, money = np.zeros(n), np.zeros(n), np.zeros(n)
    id_kind = draw(st.sampled_from(ID_KINDS))
    consent_column, inverted = draw(st.sampled_from(CONSENT_COLUMNS))
    opt = draw(st.sampled_from(["all", "none", "random", "nulls", "words"]))
    data = {"Kunden ID" if draw(st.booleans()) else "customer_id": ids(id_kind, n, rng),
            "recency_days": recency, "frequency": freq, "monetary": money}
    if consent_column:
        yes = {"all": np.ones(n, bool), "none": np.zeros(n, bool)}.get(opt, rng.random(n) < 0.8)
        values: list = list(yes != inverted)
        if opt == "nulls":
            values = [v if rng.random() < 0.7 else None for v in values]
        if opt == "words":
            values = ["Yes" if v else "no" for v in values]
        data[consent_column] = values
    if draw(st.booleans()):
        data["email"] = [f"person{i}@example.org" if rng.random() < 0.95 else None for i in range(n)]
        data["first_name"] = [rng.choice(["José", "Zoë", "Åsa", "Li", None]) for _ in range(n)]
    if draw(st.booleans()):
        data["tier"] = [rng.choice(["gold", "silver", None]) for _ in range(n)]
        data["Ålder ✓"] = [float(a) if rng.random() < 0.9 else None for a in rng.integers(18, 90, n)]
    order = rng.permutation(n)
    df = pl.DataFrame(data, strict=False)
    df = df[order] if n else df
    corrupt = draw(st.sampled_from([None] * 4 + ["duplicate_id", "text_in_number", "negative_spend", "nan"])) if n >= 2 else None
    if corrupt:
        id_col = df.columns[0]
        df = df.with_columns(cs.numeric().cast(pl.Float64)) if corrupt == "nan" else df
        fix = {"duplicate_id": (id_col, df[id_col][0]), "text_in_number": ("frequency", "several"),
               "negative_spend": ("monetary", -5.0), "nan": ("recency_days", float("nan"))}[corrupt]
        df = df.with_columns(pl.when(pl.int_range(pl.len()) == n - 1).then(pl.lit(fix[1])).otherwise(
            pl.col(fix[0]).cast(pl.String if corrupt == "text_in_number" else df.schema[fix[0]])).alias(fix[0]))
    return df, consent_column, inverted, corrupt, {"delimiter": draw(st.sampled_from([",", ";", "\t"])),
                                           "encoding": draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))}


def write(df: pl.DataFrame, path, delimiter: str, encoding: str) -> None:
    text = df.write_csv(separator=delimiter)
    if encoding == "cp1252":
        text = text.replace("名", "").replace("✓", "")  # what cp1252 can hold
    path.write_bytes(text.encode(encoding))


def expected_eligible(df: pl.DataFrame, consent_column: str | None, inverted: bool) -> set[str]:
    if consent_column is None:
        return set()
    id_col = "Kunden ID" if "Kunden ID" in df.columns else "customer_id"
    ok = pl.col(consent_column).cast(pl.String).str.to_lowercase().is_in(["true", "yes"] if not inverted else ["false", "no"])
    if "email" in df.columns:
        ok = ok & pl.col("email").is_not_null()
    return set(df.filter(ok.fill_null(False))[id_col].cast(pl.String).to_list())


DESIGNS = st.fixed_dictionaries({}, optional={
    "experiment.control_weight": st.sampled_from([0.01, 0.5, 0.99]),
    "experiment.holdout_weight": st.sampled_from([0.0, 0.3]),
    "experiment.treatment_weights": st.just({"treatment_1": 5, "treatment_2": 1, "treatment_3": 0.5}),
    "segmentation.method": st.just("kmeans"),
})


@given(customer_tables(), st.integers(0, 2**32 - 1), DESIGNS)
def test_any_table_gives_a_clean_error_or_a_consistent_campaign(tmp_path_factory, table, seed, design):
    df, consent_column, inverted, corrupt, fmt = table
    path = tmp_path_factory.mktemp("t") / ("customers.tsv" if fmt["delimiter"] == "\t" else "customers.csv")
    write(df, path, fmt["delimiter"], fmt["encoding"])
    columns = {"customer_id": "Kunden ID"} if "Kunden ID" in df.columns else {}
    eligible = expected_eligible(df, consent_column, inverted)
    if fmt["encoding"] == "cp1252":  # unicode ids lose the characters cp1252 cannot hold
        eligible = {e.replace("名", "") for e in eligible}
    try:
        out = run_stages(path, columns, seed, overrides=design)
    except InputError as e:
        message = str(e)
        assert "Traceback" not in message and message.strip()
        assert "person" not in message or "***@" in message, "an email address reached an error message"
        valid = consent_column is not None and len(eligible) >= 20 and not corrupt
        assert not valid, f"a valid table was refused: {message}"
        event("refused: " + message.split(":", 1)[-1].strip()[:40])
        return
    assert not corrupt, f"a table with {corrupt} was accepted"
    check_consistent(out, eligible)
    event("complete")


@pytest.mark.parametrize("seed", range(1, 21))
def test_the_sample_runs_for_every_seed_from_1_to_20(seed):
    """The bug users met first: `cpo run --seed 1` crashed in assign when control came first in file order."""
    out = run_stages(SAMPLE / "customers.csv", {}, seed)
    sample = pl.read_csv(SAMPLE / "customers.csv")
    check_consistent(out, set(sample.filter(pl.col("email_opt_in"))["customer_id"].cast(pl.String).to_list()))


@settings(max_examples=6)
@given(customer_tables(max_rows=300), st.integers(0, 1000))
def test_explanation_and_report_survive_any_table(tmp_path_factory, table, seed):
    df, consent_column, inverted, corrupt, fmt = table
    path = tmp_path_factory.mktemp("t") / "customers.csv"
    write(df, path, ",", "utf-8")
    try:
        out = run_stages(path, {"customer_id": "Kunden ID"} if "Kunden ID" in df.columns else {}, seed, explain=True)
    except InputError:
        event("refused")
        return
    event("complete")
    assert "José" not in out["report"] and "person1@example.org" not in out["report"]


def test_a_hundred_thousand_customers(tmp_path):
    rng = np.random.default_rng(7)
    n = 100_000
    df = pl.DataFrame({"customer_id": rng.permutation(n), "recency_days": rng.integers(0, 400, n),
                       "frequency": rng.integers(0, 30, n), "monetary": rng.uniform(0, 2000, n).round(2),
                       "email_opt_in": rng.random(n) < 0.9})
    path = tmp_path / "big.csv"
    df.write_csv(path)
    out = run_stages(path, {}, 3)
    check_consistent(out, set(df.filter(pl.col("email_opt_in"))["customer_id"].cast(pl.String).to_list()))
    assert not any(s["mismatch"] for s in out["srm"])
