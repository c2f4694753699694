"""ESP engagement events -> per-recipient outcomes: every format, exact counts, properties, refusals."""
from __future__ import annotations

import json
import random
import re
from unittest import mock
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import InputError
from tasks.experiment.events import SCHEMA, outcomes_from_events, read_events, read_events_info, validate_events
from tests.fakes.esp_events import PLANTED, make_sends, write_esp_events

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
OUTCOME_COLUMNS = ["delivered", "opened", "clicked", "converted", "revenue", "unsubscribed", "complained"]
CASES = [("sendgrid", "array"), ("sendgrid", "lines"), ("generic", "csv"), ("mailchimp", "json"), ("mailchimp", "csv")]


@pytest.fixture(scope="module")
def sends() -> pl.DataFrame:
    return make_sends(2500, seeds=3, seed=11)


def run(path: Path, fmt: str, sends: pl.DataFrame):
    events, info = read_events_info(path, fmt)
    return outcomes_from_events(events, sends, info)


def no_email(text: str) -> bool:
    """Only masked addresses (x***@domain) may appear."""
    return all(m.group(0).split("@")[0].endswith("***") for m in EMAIL.finditer(text))


# -------------------------------------------------------------------------------------- per format, exact

@pytest.mark.parametrize("fmt,layout", CASES)
def test_outcomes_match_the_truth_and_counts_are_exact(tmp_path, sends, fmt, layout):
    planted = write_esp_events(sends, fmt, tmp_path / f"events.{layout}", layout=layout, seed=5,
                               duplicate_share=0.15, machine_share=0.25, bounce_share=0.04, unknown=10)
    out, counts = run(planted.path, fmt, sends)
    assert out.height == sends.filter(pl.col("seed") == 0).height == planted.truth.height
    assert out["customer_id"].to_list() == planted.truth["customer_id"].to_list()  # sends order, seeds dropped
    for column in OUTCOME_COLUMNS:
        assert out[column].to_list() == pytest.approx(planted.truth[column].to_list(), abs=1e-9), column
    for key, expected in planted.counts.items():
        assert counts[key] == expected, key
    # the extras were really there, and really did not count
    assert counts["duplicates"] > 0 and counts["machine_opens"] > 0 and counts["bounced_recipients"] > 0
    assert counts["unknown_recipient_events"] > 0 and counts["seed_events"] > 0
    assert no_email(json.dumps(counts))


def test_machine_opens_are_not_opens_and_a_click_is(sends):
    t = datetime(2026, 11, 24, 10, tzinfo=UTC)
    events = frame([("C000000", "customer_id", "delivered", t, None, False),
                    ("C000000", "customer_id", "open", t, None, True),      # machine only: not opened
                    ("C000001", "customer_id", "delivered", t, None, False),
                    ("C000001", "customer_id", "open", t, None, True),
                    ("C000001", "customer_id", "click", t, None, False)])  # click after a machine open: opened
    out, counts = outcomes_from_events(events, sends)
    first, second = out.row(0, named=True), out.row(1, named=True)
    assert (first["delivered"], first["opened"], first["clicked"]) == (1, 0, 0)
    assert (second["delivered"], second["opened"], second["clicked"]) == (1, 1, 1)
    assert counts["machine_opens"] == 2 and counts["opened_via_click_only"] == 1


def test_a_bounce_means_not_delivered_even_after_a_delivered_event(sends):
    t = datetime(2026, 11, 24, 10, tzinfo=UTC)
    events = frame([("customer0@example.com", "email", "delivered", t, None, False),
                    ("CUSTOMER0@EXAMPLE.COM ", "email", "bounce", t + timedelta(minutes=5), None, False),
                    ("C000001", "customer_id", "delivered", t, None, False)])
    out, counts = outcomes_from_events(events, sends)
    assert out["delivered"].head(3).to_list() == [0, 1, 0]
    assert counts["bounced_recipients"] == 1 and counts["delivered_basis"] == "events"


def test_without_delivered_events_everyone_not_bounced_is_delivered(sends):
    t = datetime(2026, 11, 24, 10, tzinfo=UTC)
    events = frame([("C000000", "customer_id", "bounce", t, None, False),
                    ("C000001", "customer_id", "open", t, None, False)])
    out, counts = outcomes_from_events(events, sends)
    assert counts["delivered_basis"] == "sent_not_bounced"
    assert out["delivered"].head(3).to_list() == [0, 1, 1]


def test_revenue_sums_distinct_conversions_and_duplicates_count_once(sends):
    t = datetime(2026, 11, 24, 10, tzinfo=UTC)
    events = frame([("C000000", "customer_id", "conversion", t, 30.0, False, "e1"),
                    ("C000000", "customer_id", "conversion", t, 30.0, False, "e1"),       # redelivered
                    ("C000000", "customer_id", "conversion", t, 30.0, False, "e2"),       # another order, same value
                    ("customer0@example.com", "email", "conversion", t, 12.5, False),
                    ("Customer0@Example.com", "email", "conversion", t, 12.5, False),     # same, no id
                    ("C000000", "customer_id", "unsubscribe", t, None, False),
                    ("C000000", "customer_id", "unsubscribe", t + timedelta(hours=1), None, False),
                    ("C000000", "customer_id", "complaint", t, None, False)])
    out, counts = outcomes_from_events(events, sends)
    row = out.row(0, named=True)
    assert row["converted"] == 1 and row["revenue"] == pytest.approx(72.5)
    assert (row["unsubscribed"], row["complained"]) == (1, 1)
    assert counts["duplicates"] == 2 and counts["events_used"] == 6


def test_seed_unknown_ambiguous_and_other_run_events_are_dropped_and_counted(sends):
    t = datetime(2026, 11, 24, 10, tzinfo=UTC)
    doubled = pl.concat([sends.head(2), sends.head(1).with_columns(pl.lit("C999999").alias("customer_id"))])
    events = frame([("seed0@brand.example", "email", "open", t, None, False),
                    ("SEED1", "customer_id", "click", t, None, False),
                    ("nobody@nowhere.example", "email", "open", t, None, False),
                    ("C424242", "customer_id", "open", t, None, False),
                    ("C000001", "customer_id", "open", t, None, False, None, "other-run"),
                    ("C000001", "customer_id", "click", t, None, False, None, "run-1")])
    out, counts = outcomes_from_events(events, sends, run_id="run-1")
    assert counts["seed_events"] == 2 and counts["unknown_recipient_events"] == 2
    assert counts["unknown_recipients"] == 2 and counts["other_run_events"] == 1 and counts["events_used"] == 1
    assert out.filter(pl.col("customer_id") == "C000001")["clicked"].item() == 1
    assert "SEED0" not in out["customer_id"].to_list() and out.height == sends.height - 3
    shared = frame([("customer0@example.com", "email", "open", t, None, False)])
    _, counts = outcomes_from_events(shared, doubled)
    assert counts["ambiguous_email_events"] == 1 and counts["events_used"] == 0


def test_recipients_without_events_get_zeros(sends):
    out, counts = outcomes_from_events(pl.DataFrame(schema=SCHEMA), sends)
    assert out.height == sends.height - 3 and counts["events_read"] == 0
    assert out.select(OUTCOME_COLUMNS[1:]).sum().row(0) == (0,) * 6


# ------------------------------------------------------------------------------------------ properties

def frame(rows) -> pl.DataFrame:
    full = [tuple(r) + (None,) * (8 - len(r)) for r in rows]
    return pl.DataFrame([dict(zip(SCHEMA, r)) for r in full], schema=SCHEMA)


PROPERTY_SENDS = make_sends(12, seeds=1, seed=3)
EVENT = st.tuples(st.integers(0, 14),                                      # recipient (12, 13 seed; 14 unknown)
                  st.sampled_from(["delivered", "open", "click", "conversion", "unsubscribe", "complaint", "bounce"]),
                  st.integers(0, 5),                                       # minutes after the send
                  st.sampled_from([None, 5.0, 19.99]),
                  st.booleans())                                           # key by email
STREAM = st.lists(EVENT, max_size=40)


def as_rows(stream, *, email_case=lambda e: e) -> list[tuple]:
    base = datetime(2026, 11, 24, 10, tzinfo=UTC)
    rows = []
    for who, event, minute, value, by_email in stream:
        machine = minute % 2 == 1  # opens at odd minutes are machine opens
        if who >= 12:
            cid, email = ("SEED0", "seed0@brand.example") if who < 14 else ("C777777", "ghost@x.example")
        else:
            cid, email = f"C{who:06d}", f"customer{who}@example.com"
        rows.append((email_case(email) if by_email else cid, "email" if by_email else "customer_id", event,
                     base + timedelta(minutes=minute), value if event == "conversion" else None,
                     machine and event == "open"))
    return rows


def mixed_case(rnd: random.Random):
    def change(email: str) -> str:
        return "".join(c.upper() if rnd.random() < 0.5 else c for c in email) + (" " if rnd.random() < 0.2 else "")
    return change


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STREAM, st.randoms(use_true_random=False))
def test_order_duplicates_and_email_case_do_not_change_outcomes(stream, rnd):
    reference, ref_counts = outcomes_from_events(frame(as_rows(stream)), PROPERTY_SENDS)
    rows = as_rows(stream, email_case=mixed_case(rnd))
    rows += [rows[i] for i in range(len(rows)) if rnd.random() < 0.4]      # at-least-once redelivery
    rnd.shuffle(rows)
    again, counts = outcomes_from_events(frame(rows), PROPERTY_SENDS)
    assert again.equals(reference)
    # case and order do not make an event new; nor does one event keyed once by id and once by address
    known = {r for r, (who, *_) in zip(as_rows(stream), stream) if who < 12}
    logical = {(who, e, m, v if e == "conversion" else None) for who, e, m, v, _ in stream if who < 12}
    assert counts["duplicates"] == len(rows) - len(set(as_rows(stream))) + len(known) - len(logical)
    for key in ("machine_opens", "seed_events", "unknown_recipient_events", "events_used", "bounced_recipients"):
        assert counts[key] == ref_counts[key], key


@settings(max_examples=60, deadline=None)
@given(STREAM)
def test_outcomes_follow_the_rules(stream):
    rows = as_rows(stream)
    out, _ = outcomes_from_events(frame(rows), PROPERTY_SENDS)
    for i, row in enumerate(out.iter_rows(named=True)):
        mine = {r for r in rows if r[0] in (f"C{i:06d}", f"customer{i}@example.com")}
        kinds = {r[2] for r in mine}
        assert row["clicked"] == ("click" in kinds)
        assert row["opened"] == ("click" in kinds or any(r[2] == "open" and not r[5] for r in mine))
        assert row["delivered"] == (0 if "bounce" in kinds else 1 if kinds - {"conversion"} or
                                    not any(r[2] == "delivered" for r in rows) else 0)
        conversions = {(r[3], r[4]) for r in mine if r[2] == "conversion"}  # one event, whichever key it came by
        assert row["revenue"] == pytest.approx(sum(v or 0.0 for _, v in conversions))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(STREAM, st.randoms(use_true_random=False))
def test_the_same_stream_reads_the_same_from_generic_and_sendgrid_files(tmp_path, stream, rnd):
    rows = as_rows(stream, email_case=mixed_case(rnd))
    csv = tmp_path / "events.csv"
    pl.DataFrame({"customer_id": [r[0] if r[1] == "customer_id" else None for r in rows],
                  "email": [r[0] if r[1] == "email" else None for r in rows],
                  "event": [rnd.choice([r[2], r[2].upper(), r[2] + "s"]) if r[2] != "delivered" else "Delivered"
                            for r in rows],
                  "timestamp": [r[3].isoformat() for r in rows], "value": [r[4] for r in rows],
                  "machine": [r[5] for r in rows]},
                 schema={"customer_id": pl.String, "email": pl.String, "event": pl.String, "timestamp": pl.String,
                         "value": pl.Float64, "machine": pl.Boolean}).write_csv(csv)
    names = {"complaint": "spamreport"}
    sg = tmp_path / "events.json"
    sg.write_text(json.dumps([{**({"email": r[0]} if r[1] == "email" else {"customer_id": r[0], "email": "x@y.example"}),
                               "timestamp": int(r[3].timestamp()), "event": names.get(r[2], r[2]),
                               **({"sg_machine_open": r[5]} if r[2] == "open" else {}),
                               **({"value": r[4]} if r[4] is not None else {})} for r in rows]))
    expected, _ = outcomes_from_events(frame(rows), PROPERTY_SENDS)
    for path, fmt in ((csv, "generic"), (sg, "sendgrid")):
        got, _ = outcomes_from_events(read_events(path, fmt), PROPERTY_SENDS)
        assert got.equals(expected), fmt


SHARED_SENDS = PROPERTY_SENDS.with_columns(  # a household's address on two customers, and a seed's on a third
    pl.when(pl.col("customer_id") == "C000007").then(pl.lit("customer3@example.com"))
    .when(pl.col("customer_id") == "C000005").then(pl.lit("SEED0@brand.example ")).otherwise(pl.col("email"))
    .alias("email"))


@settings(max_examples=60, deadline=None)
@given(STREAM, st.lists(st.integers(0, 13), max_size=4), st.booleans())
def test_outcomes_read_partition_by_partition_are_the_whole_files(stream, cuts, run_id):
    """The flow reads the outcomes one partition of the sends at a time (any cut, empty partitions, the seeds
    in a partition of their own or not): the same rows and the same counts as all at once, shared addresses
    (ambiguous: counted once, used by no partition) included."""
    from tasks.experiment.events import (any_delivered, distinct_events, events_of, outcome_counts,
                                         recipient_outcomes, shared_emails)

    events = frame(as_rows(stream) + [("C000003", "customer_id", "open", datetime(2026, 11, 24, tzinfo=UTC), None,
                                       False, None, "other-run")])
    whole, counts = outcomes_from_events(events, SHARED_SENDS, run_id="run-1" if run_id else None)
    distinct, read = distinct_events(events, None, "run-1" if run_id else None)
    shared = shared_emails(SHARED_SENDS.lazy())
    assert sorted(shared) == ["customer3@example.com", "seed0@brand.example"]
    edges = [0, *sorted(cuts), SHARED_SENDS.height]
    parts = [recipient_outcomes(events_of(distinct.lazy(), part), part, shared, any_delivered(distinct))
             for part in (SHARED_SENDS.slice(a, b - a) for a, b in zip(edges, edges[1:]))]  # each its own events
    assert pl.concat([out for out, _ in parts]).equals(whole)
    assert outcome_counts(distinct, read, shared, [c for _, c in parts]) == counts
    # every distinct event of the run is used, a seed's, a duplicate of a used one, ambiguous or unknown: once
    assert (counts["events_used"] + counts["seed_events"] + counts["duplicates"] - read["duplicates"]
            + counts["ambiguous_email_events"] + counts["unknown_recipient_events"]) == distinct.height
    by_shared = {r for r in as_rows(stream) if r[1] == "email" and r[0] in ("customer3@example.com",
                                                                              "seed0@brand.example")}
    assert counts["ambiguous_email_events"] == len(by_shared)


GENERIC_ROW = st.fixed_dictionaries({  # forms a generic file may hold, every one accepted
    "customer_id": st.sampled_from(["", "C1", " C2 ", "c-3"]),
    "email": st.sampled_from(["a@x.org", " B@X.ORG "]),
    "event": st.sampled_from(["open", "Opens", "CLICK", "clicked", "machine open", "Machine-Opens", "delivered",
                              "purchase", " unsubscribed ", "spam", "bounce"]),
    "timestamp": st.sampled_from(["2026-11-24T10:15:00Z", " 2026-11-24T10:15:00Z ", "2026-11-25T01:00:59Z",
                                  "2026-11-24 10:15:00", "2026-11-24T10:15:00+02:00", "2026-11-24T10:15:00.123Z",
                                  "1764000000", ""]),
    "value": st.sampled_from(["", "5", "$1,234.50", "€3", "1e3", " 7 ", "-2"]),
    "machine": st.sampled_from(["", "true", "FALSE", "1", "0", "yes"])})
ODD = {"event": ["bogus", ""], "timestamp": ["2026-11-24T10:15:60Z", "2026-02-30T10:00:00Z", "nonsense",
                                             "2026-11-24T24:00:00Z", "1764000000000", "1764000000.5"],
       "value": ["inf", "abc", "1_000"], "machine": ["maybe", "2"], "email": [""]}
SPOIL = st.none() | st.tuples(st.integers(0, 7), st.sampled_from(sorted(ODD)), st.integers(0, 5))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(GENERIC_ROW, max_size=8), SPOIL, st.sets(st.sampled_from(["value", "machine", "customer_id"])),
       st.booleans())
def test_a_generic_file_reads_the_same_column_by_column_as_row_by_row(tmp_path, rows, spoil, dropped, numbers_only):
    """A large generic file is read column by column; any value that needs more (another form of a time, a
    refused value) sends the whole file to the row-by-row reader. Either way: the same events, or the same
    error (typed columns too: a column of numbers only is read as numbers)."""
    import csv
    from unittest import mock

    from tasks.experiment import events as E

    if numbers_only:  # unix seconds, 0/1 flags and plain amounts: columns typed as numbers by the reader
        rows = [{**r, "timestamp": "1764000000", "machine": "1" if r["machine"] in ("true", "1") else "0",
                 "value": "5"} for r in rows]
    if spoil and rows:
        i, field, k = spoil
        rows[i % len(rows)] = {**rows[i % len(rows)], field: ODD[field][k % len(ODD[field])],
                               **({"customer_id": ""} if field == "email" else {})}
    path = tmp_path / "events.csv"
    columns = [c for c in ("customer_id", "email", "event", "timestamp", "value", "machine") if c not in dropped]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    def read():
        try:
            return read_events_info(path, "generic")[0]
        except InputError as e:
            return str(e)

    fast = read()
    with mock.patch.object(E, "_generic_columns", lambda df, names: None):
        slow = read()
    assert (fast.equals(slow) if isinstance(fast, pl.DataFrame) and isinstance(slow, pl.DataFrame)
            else fast == slow), (fast, slow)


def test_a_clean_generic_file_is_read_column_by_column(tmp_path, sends):
    from tasks.experiment import events as E

    planted = write_esp_events(sends.head(300), "generic", tmp_path / "events.csv", seed=3)
    df = E.read_table(planted.path, "events file", text_columns=("customer_id", "email", "event_id", "cpo_run"))
    names = {k: (k if k in df.columns else None) for k in ("customer_id", "email", "event", "timestamp", "value",
                                                            "machine", "event_id")}
    fast = E._generic_columns(df, {**names, "run": "cpo_run" if "cpo_run" in df.columns else None})
    assert fast is not None and fast.height == df.height  # the test above compares it with the row-by-row reader


# ----------------------------------------------------------------------------------------- planted lift

@pytest.mark.parametrize("fmt", ["sendgrid", "generic", "mailchimp"])
def test_per_arm_means_are_close_to_the_planted_rates(tmp_path, fmt):
    sends = make_sends(20000, seeds=2, seed=2)
    planted = write_esp_events(sends, fmt, tmp_path / "events", seed=9, bounce_share=0.0, unknown=0)
    out, _ = run(planted.path, fmt, sends)
    means = out.group_by("arm").agg(pl.col("opened", "clicked", "converted").mean(), pl.col("revenue").mean())
    for arm, opened, clicked, converted, revenue in means.iter_rows():
        rates = planted.planted[arm]
        n = out.filter(pl.col("arm") == arm).height
        for got, rate in ((opened, rates["open"]), (clicked, rates["click"]), (converted, rates["convert"])):
            assert abs(got - rate) < 4 * (rate * (1 - rate) / n) ** 0.5 + 1e-9, (arm, got, rate)
        assert revenue == pytest.approx(rates["convert"] * 1.2 * rates["revenue"], rel=0.25)
    lift = means.filter(pl.col("arm") == "treatment_1")["clicked"].item() - \
        means.filter(pl.col("arm") == "control")["clicked"].item()
    assert lift == pytest.approx(PLANTED["treatment_1"]["click"] - PLANTED["control"]["click"], abs=0.015)


# ---------------------------------------------------------------------------------------------- refusals

def refused(path: Path, fmt: str) -> str:
    with pytest.raises(InputError) as caught:
        read_events(path, fmt)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and str(path) in message
    assert no_email(message), message
    return message


def test_generic_refuses_an_unknown_event_naming_column_and_masked_rows(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("email,event,timestamp\njane.doe@example.com,opened,2026-11-24T10:00:00Z\n"
                    "john.roe@example.com,forwarded,2026-11-24T10:00:00Z\n")
    message = refused(path, "generic")
    assert "column 'event'" in message and "row 2" in message and "j***@example.com" in message
    assert "forwarded" in message


@pytest.mark.parametrize("body,needle", [
    ("customer_id,timestamp\nC1,2026-11-24\n", "event"),
    ("event,timestamp\nopen,2026-11-24\n", "customer_id or email"),
    ("email,event,timestamp\nann@example.com,open,yesterday-ish\n", "timestamp"),
    ("email,event,timestamp,value\nann@example.com,conversion,2026-11-24,lots\n", "value"),
    ("email,event,timestamp,machine\nann@example.com,open,2026-11-24,perhaps\n", "machine"),
    ("", "empty"),
])
def test_generic_malformed_files_are_input_errors(tmp_path, body, needle):
    path = tmp_path / "events.csv"
    path.write_text(body)
    assert needle in refused(path, "generic")


@pytest.mark.parametrize("body,needle", [
    ('[{"email": "ann@example.com", "timestamp": 1700000000, "event": "open"', "not valid JSON"),
    ('{"email": "ann@example.com", "event": "open"}\n{"email": "bob@example.com", "event": "open", "timestamp": 1}\n',
     "timestamp"),
    ('[{"email": "ann@example.com", "timestamp": 1700000000}]', "'event'"),
    ('[{"email": "ann@example.com", "timestamp": 1700000000, "event": "teleported"}]', "teleported"),
    ('[{"email": "ann@example.com", "timestamp": "soon", "event": "open"}]', "timestamp"),
    ('[1, 2]', "not an event object"),
    ('{"emails": []}\n{"emails": [broken\n', "line 2"),
])
def test_sendgrid_malformed_files_are_input_errors(tmp_path, body, needle):
    path = tmp_path / "events.json"
    path.write_text(body)
    assert needle in refused(path, "sendgrid")


@pytest.mark.parametrize("body,needle", [
    ('{"campaign_id": "x", "reports": []}', "not a Mailchimp report"),
    ('{"emails": [{"email_address": "ann@example.com", "activity": [{"action": "forward", "timestamp": "2026-11-24"}]}]}',
     "forward"),
    ('{"emails": [{"activity": []}]}', "email_address"),
    ('{"emails": [{"email_address": "ann@example.com", "activity": [{"action": "open", "timestamp": "tuesday"}]}]}',
     "timestamp"),
    ("email_address,action\nann@example.com,open\n", "timestamp"),
    ("email_address,action,timestamp\nann@example.com,forward,2026-11-24\n", "action"),
])
def test_mailchimp_malformed_files_are_input_errors(tmp_path, body, needle):
    path = tmp_path / ("events.json" if body.startswith("{") else "events.csv")
    path.write_text(body)
    assert needle in refused(path, "mailchimp")


def test_an_unknown_format_and_a_missing_file_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="--format"):
        read_events(tmp_path / "x.json", "constantcontact")
    with pytest.raises(InputError, match="not found"):
        read_events(tmp_path / "nothing.json", "sendgrid")


def test_sendgrid_ignored_kinds_are_counted_and_custom_args_identify_the_recipient(tmp_path, sends):
    path = tmp_path / "events.json"
    path.write_text("\n".join(json.dumps(e) for e in [
        [{"email": "ann@example.com", "timestamp": 1700000000, "event": "processed", "sg_event_id": "a"},
         {"email": "ann@example.com", "timestamp": 1700000000, "event": "deferred", "sg_event_id": "b"}],
        {"email": "ann@example.com", "timestamp": 1700000001, "event": "open", "sg_event_id": "c",
         "sg_machine_open": True, "customer_id": "C000002", "cpo_run": "run-1"},
        {"email": "ann@example.com", "timestamp": 1700000002, "event": "click", "sg_event_id": "d",
         "custom_args": {"customer_id": "C000002"}},
    ]))
    events, info = read_events_info(path, "sendgrid")
    assert info["ignored_event_kinds"] == {"deferred": 1, "processed": 1}
    assert events["recipient"].to_list() == ["C000002", "C000002"] and events["machine"].to_list() == [True, False]
    assert events["run"].to_list() == ["run-1", None]
    assert events["timestamp"][0] == datetime.fromtimestamp(1700000001, UTC)
    out, counts = outcomes_from_events(events, sends, info)
    assert out.row(2, named=True)["opened"] == 1 and counts["ignored_events"] == 2


def test_mailchimp_open_details_mark_proxy_opens(tmp_path, sends):
    path = tmp_path / "report.json"
    path.write_text(json.dumps([
        {"emails": [{"email_address": "customer0@example.com",
                     "activity": [{"action": "open", "timestamp": "2026-11-24T10:00:00+00:00"}]}]},
        {"members": [{"email_address": "customer0@example.com",
                      "opens": [{"timestamp": "2026-11-24T10:00:00Z", "is_proxy_open": True}]},
                     {"email_address": "customer1@example.com",
                      "opens": [{"timestamp": "2026-11-24T11:00:00Z", "is_proxy_open": False}]}]},
    ]))
    events, info = read_events_info(path, "mailchimp")
    assert events.height == 2 and events["machine"].to_list() == [True, False]
    assert info["opens_only_in_open_details"] == 1
    out, _ = outcomes_from_events(events, sends, info)
    assert out["opened"].head(2).to_list() == [0, 1]


# --------------------------------------------------------------------------------------------- checkpoint

def test_the_events_checkpoint_passes_clean_events_and_refuses_bad_ones_with_masked_rows(tmp_path, sends):
    planted = write_esp_events(sends.head(200), "generic", tmp_path / "events.csv", seed=1)
    events = read_events(planted.path, "generic")
    assert validate_events(events, str(planted.path), tmp_path / "docs").success
    assert (tmp_path / "docs" / "index.html").is_file()
    path = tmp_path / "bad.csv"
    path.write_text("email,event,timestamp,value\njane.doe@example.com,conversion,2026-11-24T10:00:00Z,-5\n"
                    "not-an-address,open,2026-11-24T10:00:00Z,\njohn.roe@example.com,open,,\n")
    with pytest.raises(InputError) as caught:
        validate_events(read_events(path, "generic"), str(path))
    message = str(caught.value)
    assert caught.value.exit_code == 2 and str(path) in message
    for words in ("must not be negative", "must be an email address", "must have a timestamp"):
        assert words in message
    assert no_email(message), message
    import tasks.experiment.events as E  # checked a part at a time: the rows are still the file's

    good = read_events(planted.path, "generic").head(5)
    bad = pl.concat([good, good.head(1).with_columns(pl.lit(-3.0).alias("value"))])
    with mock.patch.object(E, "CHECK_ROWS", 2), pytest.raises(InputError, match=r"(?s)rows 5-6, partition 3 of 3.*"
                                                                              r"must not be negative -- 1 row; e.g. row 6"):
        validate_events(bad, "events")
    t = datetime(2026, 11, 24, 10, tzinfo=UTC)  # only an open can be a machine event (not from a reader: a contract)
    with pytest.raises(InputError, match="only an open can be a machine event -- 1 row; e.g. row 2"):
        validate_events(frame([("C1", "customer_id", "open", t, None, True), ("C2", "customer_id", "click", t, None,
                                                                                 True)]), "events")


def test_checkpoint_messages_show_iso_timestamps_and_blank_values(tmp_path):
    """A blind attacker's find: the events checkpoint printed `timestamp=datetime.datetime(…, tzinfo=zoneinfo…)`
    and a missing id as `'None'`."""
    (tmp_path / "ev.csv").write_text("customer_id,event,timestamp\nC1,open,2026-03-01T10:00:00Z\n")
    events, _ = read_events_info(tmp_path / "ev.csv", "generic")
    events = pl.concat([events, events.with_columns(recipient=pl.lit(None, pl.String), machine=pl.lit(True),
                                                    event=pl.lit("complaint"))])
    with pytest.raises(InputError) as e:
        validate_events(events, "ev.csv")
    message = str(e.value)
    assert "row 2: recipient='', key_kind='customer_id', event='complaint', timestamp='2026-03-01T10:00:00+00:00'" \
        in message
    assert "datetime" not in message and "None" not in message
