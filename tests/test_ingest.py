from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.errors import InputError
from tasks.ingest import load_customers, rfm_from_transactions


def write(tmp_path, text, name="c.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_maps_columns_and_types(tmp_path):
    p = write(tmp_path, "id,last_days,orders,spend,email_opt_in\n1,5,2,10,yes\n2,9,1,5.5,no\n")
    mapping = {"customer_id": "id", "recency_days": "last_days", "frequency": "orders", "monetary": "spend"}
    df, _ = resolve_consent(load_customers(p, mapping), mapping, None, p)
    assert df["customer_id"].to_list() == ["1", "2"]
    assert df["monetary"].dtype == pl.Float64 and df["email_opt_in"].to_list() == [True, False]


def test_late_decimal_does_not_break_inference(tmp_path):
    rows = "\n".join(f"c{i},1,1,{10 if i < 150 else 10.75}" for i in range(200))
    df = load_customers(write(tmp_path, "customer_id,recency_days,frequency,monetary\n" + rows))
    assert df["monetary"][-1] == 10.75


def test_missing_required_column_names_it(tmp_path):
    p = write(tmp_path, "customer_id,recency_days,frequency\n1,2,3\n")
    with pytest.raises(InputError, match="monetary"):
        load_customers(p)


def test_unknown_mapping_source_names_columns(tmp_path):
    p = write(tmp_path, "customer_id,recency_days,frequency,monetary\n1,2,3,4\n")
    with pytest.raises(InputError, match="'nope'.*columns are"):
        load_customers(p, {"recency_days": "nope"})


def test_non_numeric_value_names_row(tmp_path):
    p = write(tmp_path, "customer_id,recency_days,frequency,monetary\n1,2,3,4\n2,two,3,4\n")
    with pytest.raises(InputError, match=r"recency_days.*row=2.*'two'"):
        load_customers(p)


def test_bad_opt_in_names_row(tmp_path):
    p = write(tmp_path, "customer_id,recency_days,frequency,monetary,email_opt_in\n1,2,3,4,maybe\n")
    with pytest.raises(InputError, match="email_opt_in.*maybe"):
        resolve_consent(load_customers(p), {}, None, p)


def test_transactions_give_rfm(tmp_path):
    tx = pl.DataFrame({"customer_id": ["a", "a", "b"], "date": ["2026-01-01", "2026-01-11", "2026-01-05"],
                       "amount": [10.0, 5.0, 7.5]})
    rfm = rfm_from_transactions(tx, tmp_path / "tx.csv").sort("customer_id")
    assert rfm.to_dicts() == [{"customer_id": "a", "recency_days": 1.0, "frequency": 2.0, "monetary": 15.0},
                              {"customer_id": "b", "recency_days": 7.0, "frequency": 1.0, "monetary": 7.5}]


def test_customers_without_transactions_get_zero(tmp_path):
    c = write(tmp_path, "customer_id\na\nz\n")
    t = write(tmp_path, "customer_id,date,amount\na,2026-01-01,3\n", "t.csv")
    df = load_customers(c, transactions=t).sort("customer_id")
    assert df.filter(pl.col("customer_id") == "z").row(0, named=True)["frequency"] == 0.0


def test_bad_transaction_date(tmp_path):
    c = write(tmp_path, "customer_id\na\n")
    t = write(tmp_path, "customer_id,date,amount\na,yesterday,3\n", "t.csv")
    with pytest.raises(InputError, match="date.*yesterday"):
        load_customers(c, transactions=t)


DATE_FORMS = {"iso": "%Y-%m-%d", "iso time": "%Y-%m-%dT%H:%M:%S", "iso space": "%Y-%m-%d 08:30",
              "dd/mm": "%d/%m/%Y", "mm/dd": "%m/%d/%Y", "dd.mm": "%d.%m.%Y", "mm.dd": "%m.%d.%Y"}


@settings(max_examples=120, deadline=None)
@given(st.lists(st.dates(min_value=date(1990, 1, 1), max_value=date(2035, 12, 31)), min_size=1, max_size=12),
       st.sampled_from(sorted(DATE_FORMS)))
def test_transaction_dates_are_read_as_written_or_refused(tmp_path_factory, days, form):
    """A blind attacker's find: a US file (MM/DD/YYYY) whose days are all ≤ 12 was read with day and month
    swapped, silently. ISO dates are read row by row; a slash or dot form only when some day above 12 says which
    number is the day, and then every row alike; otherwise refused naming the column, rows and the fix."""
    from tasks.ingest import transaction_days
    text = [d.strftime(DATE_FORMS[form]) for d in days]
    tx = pl.DataFrame({"customer_id": [f"c{i}" for i in range(len(days))], "date": text})
    source = tmp_path_factory.mktemp("tx") / "tx.csv"
    decided = form.startswith("iso") or any(d.day > 12 for d in days)
    if decided:
        assert transaction_days(tx, source).to_list() == days
    else:
        with pytest.raises(InputError, match=r"tx\.csv: column 'date'.*cannot be told.*row=1.*ISO dates \(YYYY-MM-DD"):
            transaction_days(tx, source)


def test_transaction_dates_that_contradict_each_other_are_refused(tmp_path):
    tx = pl.DataFrame({"customer_id": ["a", "b"], "date": ["13/04/2025", "04/13/2025"], "amount": [1.0, 2.0]})
    with pytest.raises(InputError, match="column 'date' mixes day-first.*row=1.*row=2"):
        rfm_from_transactions(tx, tmp_path / "tx.csv")


@pytest.mark.parametrize("day", ["9999-12-31", "0000-01-01", "1850-06-01"])
def test_a_placeholder_date_is_refused_not_a_crash(tmp_path, day):
    tx = pl.DataFrame({"customer_id": ["a", "b"], "date": ["2025-03-04", day], "amount": [1.0, 2.0]})
    with pytest.raises(InputError, match="from 1900 to 2199.*row=2"):
        rfm_from_transactions(tx, tmp_path / "tx.csv")


def test_parquet(tmp_path):
    p = tmp_path / "c.parquet"
    pl.DataFrame({"customer_id": [1], "recency_days": [1], "frequency": [1], "monetary": [1.0]}).write_parquet(p)
    assert load_customers(p)["customer_id"].to_list() == ["1"]


@pytest.mark.parametrize("value", ["1.234,50", "12,5", "NaN", "nan", "inf", "-Infinity", "1e400x", "ten"])
def test_numbers_that_are_not_plain_numbers_are_named(tmp_path, value):
    p = write(tmp_path, f'customer_id,recency_days,frequency,monetary\nc1,1,1,"{value}"\nc2,1,1,5\n')
    with pytest.raises(InputError, match=r"monetary.*row=1"):
        load_customers(p)


def test_nan_in_a_numeric_column_is_named(tmp_path):
    p = write(tmp_path, "customer_id,recency_days,frequency,monetary\nc1,1,1,1.5\nc2,NaN,1,5.0\n")
    with pytest.raises(InputError, match=r"recency_days.*row=2"):
        load_customers(p)


def test_currency_and_us_thousands_are_numbers(tmp_path):
    p = write(tmp_path, 'customer_id,recency_days,frequency,monetary\nc1,1,1,"$1,234.50"\nc2,1,1,€ 5\nc3,1,1,-2\n')
    assert load_customers(p)["monetary"].to_list() == [1234.5, 5.0, -2.0]


def test_empty_rfm_cell_is_named(tmp_path):
    p = write(tmp_path, "customer_id,recency_days,frequency,monetary\nc1,1,1,1\nc2,,1,1\n")
    with pytest.raises(InputError, match=r"recency_days.*empty on 1 rows.*c2"):
        load_customers(p)


def test_error_rows_mask_personal_data(tmp_path):
    p = write(tmp_path, "customer_id,recency_days,frequency,monetary,email\njose.garcia@example.org,x,1,1,a@b.co\n")
    with pytest.raises(InputError) as e:
        load_customers(p)
    assert "jose.garcia" not in str(e.value) and "j***@example.org" in str(e.value)


# ------------------------------------------------------------------------------------------------ consent
from tasks.ingest import resolve_consent  # noqa: E402

BASE = "customer_id,recency_days,frequency,monetary"


def consent_of(tmp_path, header, rows, mapping=None, basis=None):
    p = write(tmp_path, f"{BASE},{header}\n" + "".join(f"c{i},1,1,1,{v}\n" for i, v in enumerate(rows)))
    mapping = mapping or {}
    return resolve_consent(load_customers(p, mapping), mapping, basis, p)


def test_no_consent_column_stops_and_says_how_to_fix(tmp_path):
    p = write(tmp_path, f"{BASE},email\nc1,1,1,1,a@example.org\n")
    with pytest.raises(InputError) as e:
        resolve_consent(load_customers(p), {}, None, p)
    assert "--column email_opt_in=" in str(e.value) and "--all-opted-in" in str(e.value)


def test_opt_in_column_under_another_name_is_found(tmp_path):
    df, consent = consent_of(tmp_path, "Accepts Marketing", ["yes", "no", ""])
    assert df["email_opt_in"].to_list() == [True, False, False] and consent["column"] == "Accepts Marketing"


def test_opt_out_column_is_read_inverted(tmp_path):
    df, consent = consent_of(tmp_path, "unsubscribed", ["true", "false"])
    assert df["email_opt_in"].to_list() == [False, True] and "inverted" in consent["rule"]


def test_every_consent_column_must_say_yes(tmp_path):
    p = write(tmp_path, f"{BASE},email_opt_in,unsubscribed\nc1,1,1,1,yes,no\nc2,1,1,1,yes,yes\nc3,1,1,1,no,no\n")
    df, consent = resolve_consent(load_customers(p), {}, None, p)
    assert df["email_opt_in"].to_list() == [True, False, False] and "all must say yes" in consent["rule"]


@pytest.mark.parametrize("header,values,expected", [
    ("opt_out", ["opted_out", "", "opted_in"], [False, False, True]),
    ("Unsubscribed", ["unsubscribed", "subscribed", "no"], [False, True, True]),
    ("do_not_email", ["opt-out", "opt-in", "TRUE"], [False, True, False]),
    ("email_opt_in", ["Y", " yes ", "1.0"], [True, True, True]),
])
def test_values_that_say_what_they_mean_win_over_the_column_direction(tmp_path, header, values, expected):
    df, _ = consent_of(tmp_path, header, values)
    assert df["email_opt_in"].to_list() == expected


def test_the_address_column_is_found_by_name_and_blank_addresses_are_not_emailed(tmp_path):
    from tasks.experiment.assign import eligible

    p = write(tmp_path, f"{BASE},Email,email_opt_in\nc1,1,1,1,a@x.org,yes\nc2,1,1,1,,yes\n")
    df, _ = resolve_consent(load_customers(p), {}, None, p)
    assert df.filter(eligible(df))["customer_id"].to_list() == ["c1"]


def test_a_mapped_column_wins(tmp_path):
    df, consent = consent_of(tmp_path, "gdpr_ok", ["1", "0"], mapping={"email_opt_in": "gdpr_ok"})
    assert df["email_opt_in"].to_list() == [True, False] and consent["column"] == "gdpr_ok"


@pytest.mark.parametrize("header,values,expected", [
    ("EmailOptOut", ["true", "false"], [False, True]),
    ("HasOptedOutOfEmail", ["1", "0"], [False, True]),  # Salesforce's field
    ("Unsubscribe Date", ["2026-03-01", ""], [False, True]),  # when it happened: any date is a no
    ("unsubscribed_at", ["2026-03-01T10:00:00Z", "no"], [False, True]),
    ("DoNotEmail", ["yes", "no"], [False, True]),
    ("hard_bounce", ["true", "false"], [False, True]),
])
def test_opt_out_columns_are_found_by_what_their_name_says(tmp_path, header, values, expected):
    df, consent = consent_of(tmp_path, f"email_opt_in,{header}", [f"yes,{v}" for v in values])
    assert df["email_opt_in"].to_list() == expected and header in consent["column"]


def test_a_measure_of_opting_out_is_not_consent(tmp_path):
    df, consent = consent_of(tmp_path, "email_opt_in,opt_out_rate", ["yes,0.25", "no,0.5"])
    assert df["email_opt_in"].to_list() == [True, False] and consent["column"] == "email_opt_in"


def test_mapping_a_column_over_the_files_own_consent_column_is_refused(tmp_path):
    """Mapping gdpr_ok onto email_opt_in used to drop the file's own email_opt_in: its no's were emailed."""
    with pytest.raises(InputError, match="replace the file's own 'email_opt_in'") as e:
        consent_of(tmp_path, "email_opt_in,gdpr_ok", ["no,yes", "yes,yes"], mapping={"email_opt_in": "gdpr_ok"})
    assert "--column marketing_consent=gdpr_ok" in str(e.value)
    df, consent = consent_of(tmp_path, "email_opt_in,gdpr_ok", ["no,yes", "yes,yes"],
                             mapping={"marketing_consent": "gdpr_ok"})
    assert df["email_opt_in"].to_list() == [False, True] and "all must say yes" in consent["rule"]


@pytest.mark.parametrize("canon,src", [("email_opt_in", "do_not_email"), ("email_opt_in", "EmailOptOut"),
                                       ("email_opt_out", "Accepts Marketing")])
def test_mapping_cannot_turn_consent_around(tmp_path, canon, src):
    with pytest.raises(InputError, match="turn every customer's consent around"):
        consent_of(tmp_path, src, ["yes", "no"], mapping={canon: src})


@pytest.mark.parametrize("canon", ["notes", "tier", "email"])
def test_mapping_a_consent_column_onto_another_name_is_refused(tmp_path, canon):
    """The second blind attack: --column notes=unsubscribed renamed the opt-out column away and emailed everyone."""
    with pytest.raises(InputError, match="out of consent"):
        consent_of(tmp_path, "email_opt_in,unsubscribed", ["yes,true", "yes,false"], mapping={canon: "unsubscribed"})


@pytest.mark.parametrize("header,values,expected", [
    ("not_opted_out", ["true", "false"], [True, False]), ("never_unsubscribed", ["yes", "no"], [True, False]),
])
def test_a_name_that_negates_opting_out_is_read_as_opt_in(tmp_path, header, values, expected):
    df, _ = consent_of(tmp_path, f"email_opt_in,{header}", [f"yes,{v}" for v in values])
    assert df["email_opt_in"].to_list() == expected


def test_a_seed_whose_customer_has_two_records_that_both_agreed_is_accepted():
    from tasks.experiment.sends import check_seeds
    from tasks.ingest import by_address

    customers, _ = by_address(pl.DataFrame({"customer_id": ["c1", "c2"], "email": ["boss@shop.com", "Boss@shop.com"],
                                            "email_opt_in": [True, True]}), {"rule": "r"})
    check_seeds(customers, ("boss@shop.com",), set(), "c.csv")


def test_a_no_on_any_record_of_an_address_is_a_no_for_all_and_each_address_gets_one_message(tmp_path):
    p = write(tmp_path, f"{BASE},email,email_opt_in\n"
                        "c1,1,1,1,Ana@Example.org,yes\nc2,1,1,1, ana@example.org ,no\n"  # opted out on another record
                        "c3,1,1,1,bo@example.org,yes\nc4,1,1,1,BO@example.org,yes\n"  # one person, two records
                        "c5,1,1,1,,yes\nc6,1,1,1,,yes\n")  # no address: nothing to share
    df, consent = resolve_consent(load_customers(p), {}, None, p)
    assert df["email_opt_in"].to_list() == [False, False, True, False, True, True]
    assert consent["same_address"] == {"opted_out_elsewhere": 1, "repeated": 1}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a@x.org", "A@x.org ", "b@x.org", "c@x.org", None, ""]), st.booleans()),
                min_size=1, max_size=30))
def test_by_address_never_emails_a_no_nor_an_address_twice(records):
    from tasks.ingest import by_address
    from tasks.privacy import email_key

    df = pl.DataFrame({"customer_id": [f"c{i}" for i in range(len(records))], "email": [r[0] for r in records],
                       "email_opt_in": [r[1] for r in records]}, schema_overrides={"email": pl.String})
    out, _ = by_address(df, {"rule": "r"})
    keys = df.select(email_key(pl.col("email")))["email"].to_list()
    said_no = {k for k, (_, ok) in zip(keys, records) if k and not ok}
    sent = [k for k, ok in zip(keys, out["email_opt_in"]) if ok and k]
    assert not said_no & set(sent) and len(sent) == len(set(sent))
    assert all(old or not new for new, (_, old) in zip(out["email_opt_in"], records))  # only ever takes consent away
    assert [ok for k, ok in zip(keys, out["email_opt_in"]) if not k] == [ok for k, (_, ok) in zip(keys, records) if not k]
    assert set(sent) == {k for k, (_, ok) in zip(keys, records) if k and ok} - said_no  # and emails everyone else


def test_a_seed_address_that_a_customer_said_no_with_is_refused():
    from tasks.experiment.sends import check_seeds

    customers = pl.DataFrame({"customer_id": ["c1", "c2"], "email": ["ruby@example.org", "ok@example.org"],
                              "email_opt_in": [False, True]})
    with pytest.raises(InputError, match="may not be emailed") as e:
        check_seeds(customers, ("qa@shop.example", " Ruby@Example.org"), set(), "c.csv")
    assert "ruby@" not in str(e.value).lower()
    with pytest.raises(InputError, match="may not be emailed"):
        check_seeds(customers, ("gone@example.org",), {"gone@example.org"}, "c.csv")
    check_seeds(customers, ("qa@shop.example", "ok@example.org"), set(), "c.csv")


def test_a_column_mapped_twice_is_refused():
    from flows.cli import parse_pairs

    with pytest.raises(InputError, match="given twice"):
        parse_pairs(["email_opt_in=a", "email_opt_in=b"])
    assert parse_pairs(["email_opt_in=a", "email_opt_in=a"]) == {"email_opt_in": "a"}


def test_declared_consent_is_recorded(tmp_path):
    p = write(tmp_path, f"{BASE}\nc1,1,1,1\n")
    df, consent = resolve_consent(load_customers(p), {}, "double opt-in at sign-up", p)
    assert df["email_opt_in"].to_list() == [True] and consent["basis"] == "double opt-in at sign-up"


@pytest.mark.parametrize("a,b", [("C3", "c3"), ("josé", "jose\u0301"), ("C1", "C1\u200b"), ("C2", "Ｃ２")])
def test_ids_that_differ_only_by_case_form_or_invisible_characters_are_refused(tmp_path, a, b):
    p = write(tmp_path, f"{BASE}\n{a},1,1,1\n{b},1,1,1\n")
    with pytest.raises(InputError, match="differ only by case"):
        load_customers(p)


def test_transaction_ids_are_trimmed_and_a_file_matching_no_customer_is_refused(tmp_path):
    customers = write(tmp_path, "customer_id,email_opt_in\nC1,yes\nC2,yes\n", "c.csv")
    tx = write(tmp_path, "customer_id,date,amount\n\"C1 \",2025-02-11,3.50\n", "t.csv")
    df = load_customers(customers, {}, tx)
    assert df.filter(pl.col("customer_id") == "C1")["frequency"].to_list() == [1.0]
    other = write(tmp_path, "customer_id,date,amount\nX9,2025-02-11,3.50\n", "t2.csv")
    with pytest.raises(InputError, match="no transaction's customer_id matches"):
        load_customers(customers, {}, other)


def test_text_in_a_historical_rate_is_named(tmp_path):
    p = write(tmp_path, f"{BASE},historical_open_rate\nc1,1,1,1,n/a\n")
    with pytest.raises(InputError, match="historical_open_rate.*row=1"):
        load_customers(p)


def test_a_customer_with_a_seed_lists_id_is_refused_at_ingest_before_anything_is_written(tmp_path):
    """The seed list's messages go out under ids seed-001 …: a customer holding one is refused when the file is
    read (exit 2), before the design is approved, not at the export (found by an attack)."""
    from flows.stages import ingest
    from tasks.experiment.sends import seed_ids

    path = tmp_path / "customers.csv"
    path.write_text("customer_id,email,email_opt_in,recency_days,frequency,monetary\n"
                    "c1,a@x.org,true,3,2,40\nseed-002,b@x.org,true,5,1,20\n")
    seeds = pl.DataFrame({"email": ["qa1@brand.example", "qa2@brand.example"], "first_name": [None, None]})
    assert seed_ids(seeds) == ["seed-001", "seed-002"]
    with pytest.raises(InputError, match=r"customer ids \['seed-002'\] are the seed list's own ids") as caught:
        ingest.fn(str(path), None, {}, None, str(tmp_path / "parts"), 100, reserved_ids=tuple(seed_ids(seeds)))
    assert caught.value.exit_code == 2 and not (tmp_path / "parts").exists()
    from prefect.logging import disable_run_logger

    with disable_run_logger():  # without a seed list
        assert ingest.fn(str(path), None, {}, None, str(tmp_path / "parts"), 100)["table"]["rows"] == 2


@pytest.mark.parametrize("blank", ["   ", "\t", "\u200b", " \u00a0 "])
def test_an_id_of_only_spaces_or_invisible_characters_is_blank_and_its_row_is_named(tmp_path, capsys, blank):
    from flows.cli import main

    p = write(tmp_path, f"{BASE},email_opt_in\nc1,1,1,1,yes\n\"{blank}\",2,2,2,yes\nc3,3,3,3,yes\n")
    assert load_customers(p)["customer_id"].to_list() == ["c1", None, "c3"]
    assert main(["validate", "--customers", str(p)]) == 2
    err = capsys.readouterr().err
    assert "customer_id must be present" in err and "row 2" in err and "Traceback" not in err


@pytest.mark.parametrize("column,value", [("monetary", "1e308"), ("monetary", "-2e15"), ("recency_days", "1e16"),
                                          ("frequency", "99999999999999999999")])
def test_a_number_too_large_for_the_analysis_sums_is_refused_naming_column_row_and_bound(tmp_path, column, value):
    values = {"recency_days": "1", "frequency": "1", "monetary": "1", column: value}
    p = write(tmp_path, f"{BASE}\nc1,2,2,2\nc2,{values['recency_days']},{values['frequency']},{values['monetary']}\n")
    with pytest.raises(InputError, match=rf"'{column}'.*1e\+15.*row=2"):
        load_customers(p)


def test_a_transaction_amount_too_large_for_the_analysis_sums_is_refused(tmp_path):
    customers = write(tmp_path, "customer_id,email_opt_in\nC1,yes\n", "c.csv")
    tx = write(tmp_path, "customer_id,date,amount\nC1,2025-02-11,3.50\nC1,2025-02-12,1e308\n", "t.csv")
    with pytest.raises(InputError, match=r"t.csv: column 'amount'.*1e\+15.*row=2"):
        load_customers(customers, {}, tx)
