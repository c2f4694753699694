"""`cpo analyze` on real-shaped outcome files."""
import json

import numpy as np
import polars as pl
import pytest

from flows.cli import main

pytestmark = pytest.mark.usefixtures("prefect_harness")
CONTRACT = ["results.csv", "attribution.csv", "report.md", "report.html", "manifest.json"]


def outcome_file(path, n=64000, seed=3, b_lift=0.1, ratio=(1, 1, 1)):
    rng = np.random.default_rng(seed)
    arm = rng.choice(["A", "B", "C"], n, p=np.array(ratio) / sum(ratio))
    opened = (rng.random(n) < np.where(arm == "B", 0.2 * (1 + b_lift), 0.2)).astype(int)
    spend = np.where(rng.random(n) < 0.05 * (1 + 0.3 * (arm == "C")), np.round(rng.gamma(2, 30, n), 2), 0.0)
    df = pl.DataFrame({"user": [f"u{i}" for i in range(n)], "variant": arm, "region": rng.choice(["n", "s"], n),
                       "age": rng.integers(18, 80, n), "member": [["yes", "no", None][i] for i in rng.integers(0, 3, n)],
                       "opened": opened, "spend": spend})
    df.write_csv(path)
    text = path.read_text()
    path.write_text("\ufeff" + text.replace("\n", "\n\n", 2))  # a BOM and blank lines, as exports have
    return path


def test_three_arms_with_spend_writes_contract_files(tmp_path):
    f = outcome_file(tmp_path / "export.csv")
    out = tmp_path / "out"
    assert main(["analyze", "--outcomes", str(f), "--arm-column", "variant", "--control", "A",
                 "--metrics", "opened,spend", "--segment-column", "region", "--out", str(out)]) == 0
    assert all((out / name).is_file() for name in CONTRACT)
    results = pl.read_csv(out / "results.csv")
    overall = results.filter(pl.col("segment") == "all")
    assert set(overall["arm"]) == {"B", "C"} and set(overall["metric"]) == {"opened", "spend"}
    b = overall.filter((pl.col("arm") == "B") & (pl.col("metric") == "opened")).row(0, named=True)
    assert b["rel_lift_ci_low"] < 0.1 < b["rel_lift_ci_high"] and b["significant"]
    spend = overall.filter(pl.col("metric") == "spend")["metric_type"].to_list()
    assert spend == ["numeric", "numeric"]
    assert json.loads((out / "manifest.json").read_text())["simulated"] is False
    attribution = pl.read_csv(out / "attribution.csv")
    assert "user" not in attribution["feature"].to_list() and "age" in attribution["feature"].to_list()


def test_planted_sample_ratio_mismatch_is_flagged_at_top(tmp_path):
    f = outcome_file(tmp_path / "srm.csv", n=20000, ratio=(1, 1.15, 1))
    out = tmp_path / "out"
    assert main(["analyze", "--outcomes", str(f), "--arm-column", "variant", "--control", "A", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "ALERT: sample-ratio mismatch" in report
    assert report.index("ALERT") < report.index("| metric |")


def test_unknown_control_label_exits_2(tmp_path, capsys):
    f = outcome_file(tmp_path / "x.csv", n=300)
    assert main(["analyze", "--outcomes", str(f), "--arm-column", "variant", "--out", str(tmp_path / "o")]) == 2
    assert "control label" in capsys.readouterr().err


def test_text_metric_exits_2_with_rows(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text('arm,opened\ncontrol,1\ntreatment,"yes"\n')
    assert main(["analyze", "--outcomes", str(f), "--metrics", "opened", "--out", str(tmp_path / "o")]) == 2
    assert "opened" in capsys.readouterr().err
