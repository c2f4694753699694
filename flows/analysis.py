"""The analysis flow: an experiment from an outcome file -> results, attribution, report, manifest."""
from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow

from flows import stages
from flows.campaign import artifact_key, default_run_dir
from tasks.manifest import versions
from tasks.errors import public_message
from tasks.experiment.analysis import default_caps
from tasks.experiment.outcomes import check_covariates, check_weights, is_id, parse_weights, read_outcomes, resolve
from tasks.ingest import load_customers
from tasks.privacy import pii_columns
from tasks.report import Paragraph, Section, to_html, to_markdown
from tasks.rundir import RunDir, sha256_of
from tasks.sections import experiment_sections


@flow(name="analysis", log_prints=True)
def analysis_flow(outcomes: str, arm_column: str = "arm", control: str | None = None, metrics: list[str] | None = None,
                  segment_column: str | None = None, customers: str | None = None, columns: dict[str, str] | None = None,
                  out: str | None = None, weights: str | None = None, covariates: dict[str, str] | None = None,
                  alpha: float = 0.05, correction: str = "holm", seed: int = 0,
                  caps: dict[str, float] | None = None, exclude: dict[str, str] | None = None) -> dict:
    """`caps`: metric -> winsorising percentile (None: revenue-like metrics at 0.99; {} turns capping off).
    `exclude`: column -> reason, columns never used to explain the effect (e.g. personal data)."""
    run = RunDir(out or default_run_dir("analysis"))
    try:
        with run.stage("read"):
            source = Path(outcomes)
            df = read_outcomes(source)
            control, metrics = resolve(df, source, arm_column, control, metrics, segment_column)
            if customers:
                attrs = load_customers(customers, columns)
                df = df.with_columns(pl.col("customer_id").cast(pl.String)).join(attrs, on="customer_id", how="left")
            intended = parse_weights(weights)
            check_weights(intended, sorted(df[arm_column].drop_nulls().cast(pl.String).unique().to_list()))
            check_covariates(df, covariates, metrics, source)
            by_segment = {"all": intended} if intended else None
            caps = default_caps(metrics) if caps is None else caps
        with run.stage("analyze"):
            results, srm = stages.analyze(df, metrics, control, alpha, correction, by_segment, key=artifact_key(run.path.name),
                                          segment=segment_column, arm=arm_column, covariates=covariates, caps=caps,
                                          seed=seed)
            run.write_csv("results.csv", results)
        with run.stage("explain"):
            frame = df.rename({arm_column: "arm"}) if arm_column != "arm" else df
            excluded = {c: "identifier" for c in frame.columns if is_id(c)}
            excluded.update({c: f"personal data ({k})" for c, k in pii_columns(frame).items()})
            excluded.update(exclude or {})
            explanation = stages.explain(frame, metrics, control, seed, excluded, alpha, correction)
            run.write_csv("attribution.csv", explanation.attribution)
            run.write_csv("attribute_lifts.csv", explanation.buckets)
        with run.stage("report"):
            title = f"Experiment report — {source.name}"
            intro = Section("Data", [Paragraph(
                f"{df.height} rows from {source} (observed outcomes, not simulated); arms in '{arm_column}' with "
                f"control '{control}'; metrics: {', '.join(metrics)}"
                + (f"; segments from '{segment_column}'" if segment_column else "") + ".")])
            sections = [intro] + experiment_sections(results, srm, explanation, alpha, correction)
            markdown = to_markdown(title, sections)
            run.write_text("report.md", markdown)
            run.write_text("report.html", to_html(title, sections))
            stages.publish_report(markdown, key=artifact_key(run.path.name))
        inputs = {"outcomes": outcomes, **({"customers": customers} if customers else {})}
        manifest = {"run_id": run.path.name, "status": "complete", "kind": "analysis", "simulated": False,
                    "inputs": {k: {"path": v, "sha256": sha256_of(v)} for k, v in inputs.items()},
                    "config": {"arm_column": arm_column, "control": control, "metrics": metrics,
                               "segment_column": segment_column, "weights": intended, "covariates": covariates,
                               "caps": caps, "excluded_from_explanation": explanation.excluded,
                               "alpha": alpha, "correction": correction, "columns": columns},
                    "seed": seed, "rows": df.height, "srm": srm, "seconds": run.seconds, "versions": versions()}
        run.write_json("manifest.json", manifest)
    except Exception as e:  # Prefect's pause/abort signals are BaseExceptions and pass untouched
        run.fail(e, public_message(e))
        raise
    return {"run_dir": str(run.path), "results": results, "srm": srm, "manifest": manifest}
