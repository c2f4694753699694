"""CLI commands that need no flow run."""
from pathlib import Path

from flows.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_validate_sample_ok(capsys):
    assert main(["validate", "--customers", str(ROOT / "data" / "sample" / "customers.csv")]) == 0
    assert "500 customers" in capsys.readouterr().out


def test_validate_bad_file_exits_2_with_rows(tmp_path, capsys):
    p = tmp_path / "c.csv"
    p.write_text("customer_id,recency_days,frequency,monetary\n1,5,2,10\n,5,2,10\n3,-1,2,10\n")
    assert main(["validate", "--customers", str(p)]) == 2
    err = capsys.readouterr().err
    assert "c.csv" in err and "customer_id" in err and "recency_days" in err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["validate", "--customers", str(tmp_path / "nope.csv")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_bad_column_mapping_exits_2(capsys):
    assert main(["validate", "--customers", "x.csv", "--column", "recency_days"]) == 2
    assert "CANONICAL=SOURCE" in capsys.readouterr().err


def test_bad_backend_setting_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("CPO_GENERATOR", "gpt-banana")
    assert main(["run", "--out", "/tmp/never"]) == 2
    assert "CPO_GENERATOR" in capsys.readouterr().err


def test_screen_writes_one_verdict_per_row(tmp_path, capsys):
    import json

    import polars as pl

    footer = "\nHarbor & Pine Outfitters, 1200 Alder Street, Portland, OR 97205, USA\nUnsubscribe: https://harborandpine.example.com/unsubscribe"
    rows = [{"id": "m1", "subject": "Trail news", "text": "Take 20% off all trail footwear." + footer, "citations": "promo-trail-twenty"},
            {"id": "m2", "subject": "RE: your order", "text": "We will hurt you." + footer, "citations": ""},
            {"id": "m3", "subject": "Hi", "text": "Cheaper than TrailMart!"}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "verdicts.csv"
    assert main(["screen", "--input", str(src), "--out", str(out)]) == 0
    v = pl.read_csv(out)
    assert v["id"].to_list() == ["m1", "m2", "m3"] and v["decision"].to_list() == ["pass", "block", "block"]
    assert {"hate", "self_harm", "sexual", "violence", "max_severity", "rules_triggered", "reason"} <= set(v.columns)
    assert "competitor_mention" in v["rules_triggered"][2]


def test_screen_missing_text_column_exits_2(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("message\nhello\n")
    assert main(["screen", "--input", str(src), "--out", str(tmp_path / "o.csv")]) == 2
    assert "text column 'text'" in capsys.readouterr().err
