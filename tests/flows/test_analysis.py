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


@pytest.mark.parametrize("weights,says", [("A=1", "leaves out arm(s) 'B', 'C'"),
                                          ("A=1,B=1,Cc=1", "names arm(s) not in the data: 'Cc'"),
                                          ("A=1,B=0,C=1", "needs a positive weight for 'B'"),
                                          ("A=1,B=x", "expected ARM=WEIGHT")])
def test_weights_must_name_every_arm_with_a_positive_weight(tmp_path, capsys, weights, says):
    f = outcome_file(tmp_path / "w.csv", n=600)
    assert main(["analyze", "--outcomes", str(f), "--arm-column", "variant", "--control", "A", "--weights", weights,
                 "--out", str(tmp_path / "o")]) == 2
    assert says in capsys.readouterr().err


def test_missing_covariate_column_exits_2(tmp_path, capsys):
    f = outcome_file(tmp_path / "c.csv", n=600)
    assert main(["analyze", "--outcomes", str(f), "--arm-column", "variant", "--control", "A", "--metrics", "opened",
                 "--covariate", "opened=pre_opens", "--out", str(tmp_path / "o")]) == 2
    assert "covariate column 'pre_opens'" in capsys.readouterr().err


def _hillstrom():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "hillstrom_data.py"
    spec = importlib.util.spec_from_file_location("hillstrom_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _overall(out):
    return pl.read_csv(out / "results.csv").filter(pl.col("segment") == "all")


def _analyze_twice(tmp_path, f):
    base = ["analyze", "--outcomes", str(f), "--arm-column", "segment", "--control", "No E-Mail",
            "--metrics", "visit,conversion,spend"]
    assert main(base + ["--out", str(tmp_path / "plain")]) == 0
    assert main(base + ["--segment-column", "history_segment", "--out", str(tmp_path / "split")]) == 0
    return tmp_path / "plain", tmp_path / "split"


def test_overall_rows_unchanged_by_a_segment_column_synthetic(tmp_path):
    f = tmp_path / "h.csv"
    _hillstrom().synthetic_hillstrom(12000, seed=4).write_csv(f)
    plain, split = _analyze_twice(tmp_path, f)
    assert _overall(plain).equals(_overall(split))
    results = pl.read_csv(split / "results.csv")
    assert set(results["family"]) == {"headline", "segment:history_segment"}
    features = set(pl.read_csv(plain / "attribution.csv")["feature"])
    assert not features & {"visit", "conversion", "spend", "segment"}
    report = (split / "report.md").read_text()
    assert "Excluded columns" in report and "| conversion | a metric of this run (measured after the send) |" in report


def test_hillstrom_overall_rows_unchanged_by_a_segment_column(tmp_path):
    data = _hillstrom()
    if data.hillstrom_path() is None:
        pytest.skip("CPO_HILLSTROM does not point at the Hillstrom CSV (not in the repository)")
    plain, split = _analyze_twice(tmp_path, data.hillstrom_path())
    assert _overall(plain).equals(_overall(split))
    spend = _overall(split).filter((pl.col("metric") == "spend") & (pl.col("arm") == "Womens E-Mail")).row(0, named=True)
    assert spend["family"] == "headline"
    attribution = pl.read_csv(plain / "attribution.csv")
    top = attribution.filter((pl.col("metric") == "visit") & (pl.col("arm") == "Womens E-Mail") & (pl.col("rank") == 1))
    assert top["feature"][0] == "womens"


@pytest.mark.parametrize("cap", ["spend=2", "spend=high", "spend"])
def test_bad_cap_exits_2(tmp_path, capsys, cap):
    f = outcome_file(tmp_path / "c.csv", n=300)
    assert main(["analyze", "--outcomes", str(f), "--arm-column", "variant", "--control", "A", "--cap", cap,
                 "--out", str(tmp_path / "o")]) == 2
    assert "--cap" in capsys.readouterr().err
