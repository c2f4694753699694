"""Reading tables of other people's making, and the one CSV writer (formula cells neutralised)."""
import csv
import io

import polars as pl
import pytest
from hypothesis import given, strategies as st

from tasks.errors import InputError
from tasks.files import neutralise, read_table, read_table_info, safe_cell, unneutralised, write_csv
from tasks.ingest import load_customers

ROWS = "customer_id;recency_days;frequency;monetary;first_name\n1;5;2;10.5;José\n2;9;1;5;Zoë\n"


def test_latin1_file_is_decoded_not_mangled(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes(ROWS.replace(";", ",").encode("latin-1"))
    df, info = read_table_info(p)
    assert df["first_name"].to_list() == ["José", "Zoë"] and info["encoding"] == "cp1252"


def test_utf16_with_bom(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes(ROWS.replace(";", ",").encode("utf-16"))
    assert read_table(p)["first_name"].to_list() == ["José", "Zoë"]


@pytest.mark.parametrize("delimiter,name", [(";", "c.csv"), ("\t", "c.tsv"), ("|", "c.txt"), ("\t", "c.csv")])
def test_delimiters_are_sniffed(tmp_path, delimiter, name):
    p = tmp_path / name
    p.write_text(ROWS.replace(";", delimiter), encoding="utf-8")
    df = read_table(p)
    assert df.columns == ["customer_id", "recency_days", "frequency", "monetary", "first_name"]
    assert df["monetary"].to_list() == [10.5, 5.0]


def test_xlsx_is_read(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    for row in csv.reader(io.StringIO(ROWS), delimiter=";"):
        wb.active.append(row)
    wb.save(tmp_path / "c.xlsx")
    df = load_customers(tmp_path / "c.xlsx")
    assert df.height == 2 and df["first_name"].to_list() == ["José", "Zoë"]


def test_binary_file_is_refused_with_advice(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes(b"\x00\x01\x02garbage\x00" * 50)
    with pytest.raises(InputError, match="binary.*save it as CSV"):
        read_table(p)


def test_a_broken_spreadsheet_says_save_as_csv(tmp_path):
    p = tmp_path / "c.xlsx"
    p.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="c.xlsx.*save it as CSV"):
        read_table(p)


def test_undecodable_bytes_name_the_line(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes(b"customer_id,name\n1,ok\n2,\xff\xfe\xfd\x81\x8d\x8f\x90\x9d\n")
    try:
        df = read_table(p)  # a legacy encoding may explain it; then the text must survive as text
        assert df.height == 2
    except InputError as e:
        assert "line 3" in str(e)


def test_empty_and_header_only_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "h.csv").write_text("customer_id,recency_days,frequency,monetary\n")
    with pytest.raises(InputError, match="header but no customer rows"):
        load_customers(tmp_path / "h.csv")


def test_ragged_rows_are_named(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(InputError, match="c.csv"):
        read_table(p)


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_table(tmp_path)


def test_leading_zeros_in_ids_survive(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("customer_id,recency_days,frequency,monetary\n000123,1,1,1\n")
    assert load_customers(p)["customer_id"].to_list() == ["000123"]


DANGEROUS = ["=HYPERLINK(\"http://x\",\"y\")", "@SUM(1)", "+1+1", "-1+cmd|' /C calc'!A0", "\t=1", "\r=1",
             "\n=1", " =1", "\u00a0=1", "\uff1d1+1", "\uff0b1", "\uff20SUM(1)", "\uff0d1"]


@pytest.mark.parametrize("cell", DANGEROUS)
def test_formula_cells_are_neutralised(tmp_path, cell):
    out = tmp_path / "o.csv"
    write_csv(pl.DataFrame({"customer_id": [cell], "n": [-5]}), out)
    back = pl.read_csv(out, infer_schema=False)
    assert back["customer_id"][0] == "'" + cell and safe_cell(cell) == "'" + cell
    assert back["n"][0] == "-5"  # numbers stay numbers


@pytest.mark.parametrize("cell", DANGEROUS)
def test_a_neutralised_cell_reads_back_as_it_was(tmp_path, cell):
    """An id quoted in sends.csv and sent back in the service's events matches the recipient again."""
    back = pl.read_csv(write_csv(pl.DataFrame({"customer_id": [cell]}), tmp_path / "o.csv"), infer_schema=False)
    assert back.select(unneutralised(pl.col("customer_id")))["customer_id"][0] == cell
    assert pl.select(unneutralised(pl.lit(cell))).item() == cell  # an id sent back unquoted stays itself


@pytest.mark.parametrize("cell", ["-5", "+3.5", "1e-3", "hello", "a=b", "", "'=already"])
def test_plain_cells_are_left_alone(cell):
    assert safe_cell(cell) == cell
    assert neutralise(pl.DataFrame({"v": [cell]}))["v"][0] == cell


@given(st.text(max_size=30))
def test_row_writer_and_frame_writer_agree(cell):
    assert neutralise(pl.DataFrame({"v": [cell]}, schema={"v": pl.String}))["v"][0] == safe_cell(cell)


@given(st.text(max_size=30))
def test_no_written_cell_can_start_a_formula(cell):
    safe = safe_cell(cell)
    stripped = safe.lstrip(" \u00a0\u3000\u2000\u2001\u2002\u2003\n\r\t\ufeff")
    assert safe.startswith("'") or not (safe[:1] in "\t\r" and safe) and stripped[:1] not in set("=+-@\uff1d\uff0b\uff0d\uff20") \
        or stripped.lstrip("+-").replace(".", "", 1).isdigit()


def test_mac_line_endings_huge_fields_and_cut_utf16(tmp_path):
    (tmp_path / "cr.csv").write_bytes(b"customer_id,name\r1,a\r2,b\r")
    assert read_table(tmp_path / "cr.csv").height == 2
    (tmp_path / "big.csv").write_text("customer_id,note\n1," + "x" * 200_000 + "\n")
    assert read_table(tmp_path / "big.csv").height == 1
    (tmp_path / "cut.csv").write_bytes("customer_id\n1\n".encode("utf-16")[:-1])
    with pytest.raises(InputError, match="cut.csv.*UTF-16"):
        read_table(tmp_path / "cut.csv")


def test_a_file_mixing_utf8_and_latin1_is_refused_with_the_line(tmp_path):
    (tmp_path / "m.csv").write_bytes("customer_id,name\n1,José\n".encode() + "2,Zoë\n".encode("latin-1"))
    with pytest.raises(InputError, match="mixes encodings: line 3"):
        read_table(tmp_path / "m.csv")


def test_short_cp1252_text_is_not_mistaken_for_another_code_page(tmp_path):
    (tmp_path / "m.csv").write_bytes("customer_id,name\n1,Müller\n2,Anaïs\n".encode("cp1252"))
    assert read_table(tmp_path / "m.csv")["name"].to_list() == ["Müller", "Anaïs"]


def test_header_names_are_trimmed_and_a_repeated_one_is_refused(tmp_path):
    (tmp_path / "h.csv").write_text(" customer_id ,email_opt_in\n1,yes\n")
    assert read_table(tmp_path / "h.csv").columns == ["customer_id", "email_opt_in"]
    (tmp_path / "d.csv").write_text("customer_id,email_opt_in,email_opt_in\n1,true,false\n")
    with pytest.raises(InputError, match="email_opt_in appear more than once"):
        read_table(tmp_path / "d.csv")


def test_header_cells_are_neutralised_too(tmp_path):
    write_csv(pl.DataFrame({"=HYPERLINK(1)": ["a"], "@SUM(1)": ["b"]}), tmp_path / "o.csv")
    assert (tmp_path / "o.csv").read_text().splitlines()[0] == "'=HYPERLINK(1),'@SUM(1)"


@given(st.lists(st.tuples(st.text(max_size=12), st.one_of(st.none(), st.floats(allow_nan=False, width=64)),
                          st.integers(-10**12, 10**12)), max_size=40),
       st.lists(st.integers(0, 40), max_size=5))
def test_a_file_written_from_its_partitions_is_the_file_written_whole(tmp_path_factory, rows, cuts):
    """assignments.csv and outcomes.csv are written partition by partition: the bytes must not depend on it
    (header once, quoting, neutralised formulas, float formatting), including empty partitions."""
    folder = tmp_path_factory.mktemp("csv")
    df = pl.DataFrame(rows, schema={"id": pl.String, "value": pl.Float64, "n": pl.Int64}, orient="row")
    bounds = sorted({0, df.height, *[min(c, df.height) for c in cuts]})
    parts = [df.slice(a, b - a) for a, b in zip(bounds, bounds[1:])] or [df]
    write_csv(df, folder / "whole.csv")
    write_csv(iter(parts), folder / "parts.csv")
    assert (folder / "parts.csv").read_bytes() == (folder / "whole.csv").read_bytes()
