"""CLI commands that need no flow run."""
from pathlib import Path

import pytest

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


BAD_JSONL = {  # what a person might hand `cpo screen`, and the line the message must name
    "not-utf8": (b'{"text": "hi"}\n{"text": "caf\xe9"}\n', "line 2", "UTF-8"),
    "string-then-list": (b'{"text": "a"}\n{"text": ["b"]}\n', "line 2", "'text'"),
    "object-then-list": (b'{"text": {"a": 1}}\n{"text": [1]}\n', "line 1", "'text'"),
    "mixed-citations": (b'{"text": "a", "citations": [1, "x", null]}\n', "line 1", "citations"),
    "array-line": (b'{"text": "a"}\n[]\n', "line 2", "not an object"),
    "key-twice": (b'{"text": "I will kill you", "text": "hello"}\n', "line 1", "more than once"),
    "not-json": (b'{"text": "a"}\n{"text": \n', "line 2", "not valid JSON"),
    "empty": (b"\n", "no messages", "empty"),
}


@pytest.mark.parametrize("name", list(BAD_JSONL))
def test_screen_bad_jsonl_exits_2_naming_the_file_and_line(tmp_path, capsys, name):
    content, where, what = BAD_JSONL[name]
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    assert main(["screen", "--input", str(src), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "in.jsonl" in err and where in err and what in err
    assert not (tmp_path / "o.csv").exists()


def test_screen_passes_mixed_extra_columns_through_as_text(tmp_path):
    import polars as pl

    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a", "n": 1, "tag": {"a": 1}}\n{"text": "b", "n": "x", "tag": [1], "big": 100000000000000000000000}\n')
    assert main(["screen", "--input", str(src), "--out", str(tmp_path / "o.csv")]) == 0
    v = pl.read_csv(tmp_path / "o.csv", infer_schema_length=0)
    assert v["n"].to_list() == ["1", "x"] and v["tag"].to_list() == ['{"a": 1}', "[1]"]


@pytest.mark.parametrize("out, message", [("missing/o.csv", "does not exist"), ("o.txt", ".csv, .jsonl or .parquet"),
                                          (".", ".csv, .jsonl or .parquet")])
def test_screen_bad_out_exits_2_before_screening(tmp_path, capsys, out, message):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "hello"}\n')
    assert main(["screen", "--input", str(src), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert message in err and ".tmp" not in err and "Traceback" not in err


def test_screen_writes_parquet_for_a_parquet_out(tmp_path):
    import polars as pl

    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "hello", "citations": "promo-trail-twenty"}\n')
    assert main(["screen", "--input", str(src), "--out", str(tmp_path / "o.parquet")]) == 0
    v = pl.read_parquet(tmp_path / "o.parquet")
    assert v["text"].to_list() == ["hello"] and v["decision"].to_list() == ["block"]


def _jsonl_lines():
    import json

    from hypothesis import strategies as st

    scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=5), inner, max_size=3), max_leaves=6)
    message = st.fixed_dictionaries({}, optional={k: value for k in ("text", "subject", "citations", "preheader", "n")})
    line = (message | value).map(lambda v: json.dumps(v).encode())
    return st.lists(line | st.binary(max_size=12), max_size=4).map(lambda lines: b"\n".join(lines) + b"\n")


def test_screen_any_jsonl_exits_0_or_2_without_a_traceback(tmp_path_factory):
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_jsonl_lines())
    def check(content):
        import contextlib
        import io

        folder = tmp_path_factory.mktemp("any")
        (folder / "in.jsonl").write_bytes(content)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["screen", "--input", str(folder / "in.jsonl"), "--out", str(folder / "o.csv")])
        assert code in (0, 2), err.getvalue()
        assert "Traceback" not in err.getvalue() and (code == 0 or err.getvalue().count("\n") == 1)

    check()
