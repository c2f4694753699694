"""sends.csv rendering, suppression and seed lists, guardrails and winners: tried as a hostile file would."""
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from config import ControlMessage
from tasks.errors import InputError, SafetyGateError
from tasks.experiment.guardrails import guardrail_table, winners
from tasks.experiment.sends import (CONTROL_ID, SENDS_COLUMNS, control_variant, read_seed_list, read_suppression,
                                    render_sends, suppress)
from tasks.generation import footer
from tasks.records import Variant


@pytest.fixture(scope="module")
def brand():
    from config import load_brand
    return load_brand()


def message(brand, vid="seg.t1.value", slot=1, subject="A tip for you, {first_name}", segment="seg"):
    return Variant(variant_id=vid, segment=segment, slot=slot, strategy="value", subject=subject,
                   body="Hi {first_name},\n\nOur tent is waterproof." + footer(brand), citations=["d1"],
                   generator="local", status="passed")


def assigned(rows):
    return pl.DataFrame(rows, schema={"customer_id": pl.String, "email": pl.String, "first_name": pl.String,
                                      "segment": pl.String, "arm": pl.String, "variant_id": pl.String})


def test_every_body_is_filled_and_carries_its_own_unsubscribe_link_and_the_postal_address(brand):
    control = control_variant(ControlMessage(), brand).model_copy(update={"status": "passed"})
    frame = assigned([
        {"customer_id": "1", "email": "a@x.org", "first_name": "Ann", "segment": "seg", "arm": "treatment_1",
         "variant_id": "seg.t1.value"},
        {"customer_id": "2", "email": "b@x.org", "first_name": None, "segment": "seg", "arm": "control",
         "variant_id": CONTROL_ID},
        {"customer_id": "3", "email": "c@x.org", "first_name": "  ", "segment": "seg", "arm": "treatment_1",
         "variant_id": "seg.t1.value"},
        {"customer_id": "4", "email": "d@x.org", "first_name": "Held", "segment": "seg", "arm": "holdout",
         "variant_id": None}])
    out = render_sends(frame, {"seg.t1.value": message(brand), CONTROL_ID: control}, brand, {"first_name": "there"},
                       "run-1", mailto="unsub@x.org")
    assert out.columns == SENDS_COLUMNS
    assert sorted(out["customer_id"]) == ["1", "2", "3"]  # the holdout receives nothing
    by_id = {r["customer_id"]: r for r in out.iter_rows(named=True)}
    assert by_id["1"]["body"].startswith("Hi Ann,") and by_id["1"]["subject"] == "A tip for you, Ann"
    assert by_id["2"]["body"].startswith("Hi there,") and by_id["3"]["subject"] == "A tip for you, there"
    for r in out.iter_rows(named=True):
        assert brand.postal_address in r["body"] and "{" not in r["body"] + r["subject"]
        assert r["unsubscribe_url"].startswith(brand.unsubscribe_url + "?r=") and r["unsubscribe_url"] in r["body"]
        assert r["list_unsubscribe"] == f"<{r['unsubscribe_url']}>, <mailto:unsub@x.org?subject=unsubscribe>"
        assert r["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    assert len(set(out["unsubscribe_url"])) == 3  # each recipient's own
    assert by_id["2"]["ai_generated"] == 0 and by_id["1"]["ai_generated"] == 1 and by_id["1"]["generator"] == "local"


NAME_CHARS = " -'’."  # besides letters of any script and their marks


def reads_as_a_name(value: str) -> bool:
    """The rule, written independently of the code: letters (L*) and marks (M*), space, hyphen, apostrophe,
    period; no URL, address, digit, markup or newline; at most 40 characters."""
    import unicodedata
    return 1 <= len(value) <= 40 and all(unicodedata.category(c)[0] in "LM" or c in NAME_CHARS for c in value)


@hsettings(max_examples=150, deadline=None)
@given(st.one_of(st.text(st.characters(exclude_categories=("Cn", "Cs")), max_size=80),
                 st.sampled_from(['<a href="https://evil.example/login">Logan</a>',
                                  "Rowan, your account is suspended. Send your card number to us",
                                  "visit evil.example", "ann@evil.example", "Agent 007", "Ann\nBcc: x@y.org"])))
def test_no_first_name_puts_anything_but_a_name_into_a_message(name):
    """Whatever a customer file holds as a first name, the rendered subject and body hold either a value that
    reads as a name or the fallback ("there"), and the template's text around it is intact (a blind attacker's
    find: a phishing sentence and a link reached sends.csv as the greeting)."""
    from config import load_brand
    brand = load_brand()
    frame = assigned([{"customer_id": "1", "email": "a@x.org", "first_name": name, "segment": "seg",
                       "arm": "treatment_1", "variant_id": "seg.t1.value"}])
    row = render_sends(frame, {"seg.t1.value": message(brand)}, brand, {"first_name": "there"}, "r").row(0, named=True)
    filled = row["subject"].removeprefix("A tip for you, ")
    assert row["subject"].startswith("A tip for you, ")
    assert filled == "there" or (reads_as_a_name(filled) and filled in name)
    assert "://" not in filled and "@" not in filled and not any(c.isdigit() for c in filled)
    assert row["body"].startswith(f"Hi {filled},\n\nOur tent is waterproof.") and brand.postal_address in row["body"]


def test_names_in_many_scripts_are_kept_and_the_rest_are_counted_not_named(brand):
    from tasks.experiment.sends import merge_values_unused
    names = ["José", "O'Brien", "Anne-Marie", "Nguyễn", "山田", "Ølberg", "Mary Ann", "J.R.", "Владимир", "محمد",
             "Ζωή", "प्रिया", "  Ana  "]
    hostile = ['<a href="https://evil.example/login">', "Rowan, your account is suspended. Send your card number",
               "evil.example", "x@y.org", "R2D2", "Ann\nBcc: x@y.org", "A" * 41, "-Ann"]
    rows = [{"customer_id": str(i), "email": f"c{i}@x.org", "first_name": n, "segment": "seg", "arm": "treatment_1",
             "variant_id": "seg.t1.value"} for i, n in enumerate([*names, *hostile, None, ""])]
    frame = assigned(rows)
    out = render_sends(frame, {"seg.t1.value": message(brand)}, brand, {"first_name": "there"}, "r")
    greetings = [b.split(",")[0].removeprefix("Hi ") for b in out["body"]]
    assert greetings == [n.strip() for n in names] + ["there"] * (len(hostile) + 2)
    assert merge_values_unused(frame.with_columns(seed=pl.lit(0)), ["first_name"]) == len(hostile)
    assert merge_values_unused(frame, ["first_name", "city"]) == len(hostile)  # a field no customer has: none


def test_render_uses_the_same_rule():
    from tasks.generation import render
    assert render("Hi {first_name},", {"first_name": "Nguyễn"}) == "Hi Nguyễn,"
    assert render("Hi {first_name},", {"first_name": "Rowan, your account is suspended"}) == "Hi there,"


def test_a_merge_field_without_a_value_or_fallback_stops_the_export(brand):
    v = message(brand, subject="Hello {last_name}")
    frame = assigned([{"customer_id": "1", "email": "a@x.org", "first_name": "A", "segment": "seg",
                       "arm": "treatment_1", "variant_id": v.variant_id}])
    with pytest.raises(InputError, match="last_name"):
        render_sends(frame, {v.variant_id: v}, brand, {"first_name": "there"}, "r")


def test_an_address_a_spreadsheet_would_run_is_refused_not_quoted(brand):
    """sends.csv quotes such cells like every CSV cpo writes: the service would write to another address."""
    v = message(brand)
    frame = assigned([{"customer_id": "=X1", "email": "=cmd@x.org", "first_name": "A", "segment": "seg",
                       "arm": "treatment_1", "variant_id": v.variant_id}])
    with pytest.raises(InputError, match=r"1 email address\(es\) start with .*row 1 \(=\*\*\*") as e:
        render_sends(frame, {v.variant_id: v}, brand, {"first_name": "there"}, "r")
    assert "cmd" not in str(e.value)
    subject = message(brand, subject="-20% on {first_name}'s tent")
    with pytest.raises(SafetyGateError, match="formula"):
        render_sends(frame.with_columns(email=pl.lit("a@x.org")), {v.variant_id: subject}, brand,
                     {"first_name": "there"}, "r")


def test_a_message_without_the_footer_is_never_exported(brand):
    v = message(brand).model_copy(update={"body": "Hi {first_name}, no footer here"})
    frame = assigned([{"customer_id": "1", "email": "a@x.org", "first_name": "A", "segment": "seg",
                       "arm": "treatment_1", "variant_id": v.variant_id}])
    with pytest.raises(SafetyGateError, match="postal address or the unsubscribe link"):
        render_sends(frame, {v.variant_id: v}, brand, {"first_name": "there"}, "r")


def test_seeds_receive_every_message_once_and_are_marked(brand, tmp_path):
    path = tmp_path / "seeds.csv"
    path.write_text("Email,First_Name\nqa@brand.example,QA\nqa@brand.example,QA\nqa2@brand.example,\n")
    seeds = read_seed_list(path)
    assert seeds.height == 2
    msgs = {"a.t1.value": message(brand, "a.t1.value", segment="a"), "b.t2.value": message(brand, "b.t2.value", 2, segment="b")}
    frame = assigned([{"customer_id": "1", "email": "x@y.org", "first_name": "X", "segment": "a", "arm": "treatment_1",
                       "variant_id": "a.t1.value"}])
    out = render_sends(frame, msgs, brand, {"first_name": "there"}, "r", seeds=seeds)
    seeded = out.filter(pl.col("seed") == 1)
    assert seeded.height == 4 and set(seeded["variant_id"]) == set(msgs)
    assert set(seeded.filter(pl.col("variant_id") == "b.t2.value")["arm"]) == {"treatment_2"}
    bad = tmp_path / "bad.csv"
    bad.write_text("email\nnot-an-address\n")
    with pytest.raises(InputError, match="not email addresses"):
        read_seed_list(bad)


def test_suppression_by_email_or_id_whatever_the_case_spacing_or_column(tmp_path):
    customers = pl.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"],
                              "email": ["Ann@X.org", "bob@x.org", None, "dee@x.org"]})
    (tmp_path / "emails.csv").write_text("Email Address\n  ann@x.org \n")
    (tmp_path / "ids.csv").write_text("C3\nC9\n")  # one column, no header: read as ids
    (tmp_path / "mixed.csv").write_text("customer_id;email\nC4;\n")
    emails, ids, files = read_suppression([tmp_path / "emails.csv", tmp_path / "ids.csv", tmp_path / "mixed.csv"])
    kept, removed = suppress(customers, emails, ids)
    assert kept["customer_id"].to_list() == ["C2"] and removed == 3
    assert all("@" not in str(f) for f in files for f in f.values() if not str(f).endswith(".csv"))
    (tmp_path / "none.csv").write_text("name,phone\nA,1\n")
    with pytest.raises(InputError, match="email.*customer_id"):
        read_suppression([tmp_path / "none.csv"])


def outcome_frame(rates: dict, n: int, seed: int = 3) -> pl.DataFrame:
    """arm -> {metric: rate}: Bernoulli draws per customer."""
    rng = np.random.default_rng(seed)
    frames = []
    for arm, r in rates.items():
        frames.append(pl.DataFrame({"arm": [arm] * n, "segment": ["s"] * n,
                                    **{m: (rng.random(n) < p).astype(int) for m, p in r.items()}}))
    return pl.concat(frames)


def test_an_arm_that_raises_unsubscribes_is_flagged_and_cannot_win():
    from tasks.experiment.analysis import lift_table

    df = outcome_frame({"control": {"clicked": 0.05, "unsubscribed": 0.002, "complained": 0.0005},
                        "treatment_1": {"clicked": 0.09, "unsubscribed": 0.012, "complained": 0.0005},
                        "treatment_2": {"clicked": 0.07, "unsubscribed": 0.002, "complained": 0.0005}}, 8000)
    guards = guardrail_table(df, ["unsubscribed", "complained"], "control", 0.05)
    flagged = guards.filter(pl.col("flagged"))
    assert set(zip(flagged["metric"], flagged["arm"])) == {("unsubscribed", "treatment_1")}
    results = lift_table(df, ["clicked"], "control", bootstrap=False)
    [win] = winners(results, guards, "clicked", "control", ["s"])
    assert win["arm"] == "treatment_2", win  # treatment_1 lifts clicks more, but raises unsubscribes
    only_bad = winners(results.filter(pl.col("arm") != "treatment_2"), guards, "clicked", "control", ["s"])
    assert only_bad[0]["arm"] == "control" and "unsubscribed" in only_bad[0]["reason"]


def test_guardrails_hold_their_false_alarm_rate_when_nothing_differs():
    """One-sided at alpha 0.05 with equal rates: about 5% of arms flagged (Fisher's test is conservative)."""
    flagged = 0
    for seed in range(200):
        df = outcome_frame({"control": {"unsubscribed": 0.01}, "treatment_1": {"unsubscribed": 0.01}}, 2000, seed)
        flagged += guardrail_table(df, ["unsubscribed"], "control", 0.05).filter(pl.col("segment") == "all")["flagged"].sum()
    assert flagged / 200 <= 0.08


def test_no_significant_lift_means_control_stays():
    from tasks.experiment.analysis import lift_table

    df = outcome_frame({"control": {"clicked": 0.05}, "treatment_1": {"clicked": 0.05}}, 3000)
    results = lift_table(df, ["clicked"], "control", bootstrap=False)
    guards = guardrail_table(df, ["unsubscribed"], "control", 0.05)
    assert guards.is_empty()
    [win] = winners(results, guards, "clicked", "control", ["s"])
    assert win["arm"] == "control" and math.isnan(win["rel_lift_ci_low"])


def test_a_partition_is_rendered_in_pieces_to_the_rows_of_one_rendering(brand, tmp_path, monkeypatch):
    """export_part renders RENDER_ROWS customers at a time, each a piece of sends.csv: the same rows, in the
    customers' order, as rendering the partition at once; the holdout gets nothing, control the BAU message."""
    from tasks import partitions as P
    from tasks.experiment.sends import to_send

    control = control_variant(ControlMessage(), brand).model_copy(update={"status": "passed"})
    msgs = {"seg.t1.value": message(brand), "seg.t2.value": message(brand, "seg.t2.value", 2), CONTROL_ID: control}
    arms = ["treatment_1", "control", "treatment_2", "holdout"]
    rows = [{"customer_id": f"C{i:03d}", "segment": "seg", "arm": arms[i % 4],
             "variant_id": {0: "seg.t1.value", 2: "seg.t2.value"}.get(i % 4)} for i in range(23)]
    pl.DataFrame(rows).write_parquet(tmp_path / "assign.parquet")
    pl.DataFrame({"customer_id": [r["customer_id"] for r in rows], "segment": ["seg"] * 23,
                  "email": [f"c{i}@x.org" for i in range(23)],
                  "first_name": [None if i % 5 == 0 else f"N{i}" if i % 5 == 1 else "Ann" for i in range(23)]}
                 ).write_parquet(tmp_path / "c.parquet")
    monkeypatch.setattr(P, "RENDER_ROWS", 4)
    args = (str(tmp_path / "assign.parquet"), str(tmp_path / "c.parquet"), msgs, brand, {"first_name": "there"}, "r",
            None, None, CONTROL_ID)
    pieces, unused = P.export_part(*args, str(tmp_path / "piece"), str(tmp_path / "sent.parquet"))
    whole = render_sends(to_send(P.join_part(*args[:2]), CONTROL_ID), msgs, brand, {"first_name": "there"}, "r")
    assert [Path(p).name for p in pieces] == [f"piece-{k:03d}.parquet" for k in range(5)]  # 18 sent, 4 a piece
    assert whole.height == 18 and pl.concat([pl.read_parquet(p) for p in pieces]).equals(whole)
    assert unused == len([i for i in range(23) if i % 5 == 1 and i % 4 != 3])  # "N6": not a name; holdout not sent
    assert whole["customer_id"].to_list() == [r["customer_id"] for r in rows if r["arm"] != "holdout"]
    sent = pl.read_parquet(tmp_path / "sent.parquet")
    assert sent.height == 18 and set(sent.filter(pl.col("arm") == "control")["variant_id"]) == {CONTROL_ID}


def test_a_seed_id_is_refused_when_a_customer_has_it_even_one_who_gets_no_email(brand):
    """Control without email is measured (intention to treat), so its events count: a control customer whose id
    is a seed's would be credited with the seed's events (found by an attack)."""
    frame = assigned([{"customer_id": "seed-001", "email": "c@x.org", "first_name": "C", "segment": "seg",
                       "arm": "control", "variant_id": None},
                      {"customer_id": "c2", "email": "t@x.org", "first_name": "T", "segment": "seg",
                       "arm": "treatment_1", "variant_id": "seg.t1.value"}])
    seeds = pl.DataFrame({"email": ["qa@brand.example"], "first_name": ["QA"]})
    with pytest.raises(InputError, match=r"customer ids \['seed-001'\] are the seed list's own ids"):
        render_sends(frame, {"seg.t1.value": message(brand)}, brand, {"first_name": "there"}, "r", seeds=seeds)
