"""Reading tables people hand us, and the one CSV writer for everything the product writes.

Reading: CSV in any common encoding (UTF-8, UTF-16 with a BOM, Windows-1252 / Latin-1 detected) and
delimiter (`,` `;` tab `|`, sniffed), Parquet and Excel recognised by their bytes, anything else refused
with a sentence that says what to do. Every failure names the file, and the line where one is known.

Writing: cells that a spreadsheet would run as a formula (OWASP's CSV-injection list `= + - @`, tab and
carriage return, also behind leading whitespace, a line feed, a no-break space, or written in their
fullwidth forms) are prefixed with `'`. Plain numbers are left alone. Files are written whole (temp + rename).
"""
from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from tasks.errors import InputError

EXCEL = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
DELIMITERS = [",", ";", "\t", "|"]
COMMON_ENCODINGS = ["cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "koi8_r",
                    "iso8859_2", "iso8859_5", "iso8859_7", "mac_roman", "shift_jis", "euc_jp", "gb18030", "big5",
                    "euc_kr"]
LATIN = {"cp1252", "cp1250", "cp1254", "cp1257", "latin_1", "iso8859_15", "iso8859_2", "iso8859_9", "mac_roman",
         "mac_latin2", "cp850", "cp437"}
# A cell a spreadsheet would evaluate: a trigger after optional (Unicode) whitespace, or a leading tab / CR.
FORMULA = r"^(?:[\t\r]|[\s\u00a0\u2000-\u200b\u3000\ufeff]*[=+\-@\uff1d\uff0b\uff0d\uff20])"
PLAIN_NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"


def read_table(path: str | Path, what: str = "file", text_columns: tuple[str, ...] = ()) -> pl.DataFrame:
    return read_table_info(path, what, text_columns)[0]


def read_table_info(path: str | Path, what: str = "file",
                    text_columns: tuple[str, ...] = ()) -> tuple[pl.DataFrame, dict]:
    """The table and how it was read ({"format", "encoding", "delimiter"}) for the manifest. `text_columns`
    (ids; "*" for every column) are read as text from a CSV, so `000123` keeps its zeros."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a CSV, TSV, Parquet or Excel {what}")
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot be read: {e.strerror}") from None
    if not data.strip():
        raise InputError(f"{path}: the {what} is empty (no header, no rows)")
    if data[:4] == b"PAR1" or path.suffix.lower() in (".parquet", ".pq"):
        return _parquet(path), {"format": "parquet"}
    if data[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0") or path.suffix.lower() in EXCEL:
        return _excel(path), {"format": "excel"}
    text, encoding = decode(data, path)
    mac = "\r" in text and "\n" not in text  # classic Mac line endings
    if mac:
        text = text.replace("\r", "\n")
    sniffed = sniff_delimiter(text)
    delimiter = "\t" if path.suffix.lower() == ".tsv" and sniffed in (",", "\t") and "\t" in text[:4096] else sniffed
    first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    header = next(csv.reader([first], delimiter=delimiter), [])
    # polars reads UTF-8 bytes: the file's own when it is UTF-8 (no second and third copy of it as text)
    if mac or encoding != "utf-8":
        source = text.encode("utf-8")
    else:
        source = data.removeprefix(b"\xef\xbb\xbf")
    del text
    try:
        df = pl.read_csv(io.BytesIO(source), separator=delimiter, infer_schema_length=None, try_parse_dates=False,
                         truncate_ragged_lines=False,
                         schema_overrides={c: pl.String for c in header if c in text_columns or "*" in text_columns})
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{path}: cannot be read as a table ({_first_line(e)}); check that every row has "
                         f"the header's {first.count(delimiter) + 1} fields") from None
    return checked_header(df, path), {"format": "csv", "encoding": encoding, "delimiter": delimiter}


def checked_header(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Header names stripped of spaces; a name given twice is refused (it would hide one of the columns)."""
    names = [c.replace("\ufeff", "").strip() for c in df.columns]
    twice = sorted({re.sub(r"_duplicated_\d+$", "", n) for n in names if re.search(r"_duplicated_\d+$", n)}
                   | {n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{path}: column(s) {', '.join(twice)} appear more than once in the header; keep one")
    return df.rename(dict(zip(df.columns, names)))


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """Text and its encoding. UTF-8 first (with or without BOM); UTF-16 by its BOM; otherwise the encoding
    charset-normalizer finds. Binary data, or bytes no encoding explains, are named with their line."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: starts as UTF-16 but is cut off or damaged near byte {e.start}; "
                             f"save it again as CSV UTF-8") from None
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: looks like a binary file, not a CSV (save it as CSV, UTF-8)")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as e:
        bad_line = data[:e.start].count(b"\n") + 1
    if re.search(rb"[\xc3-\xc5][\x80-\xbf]|\xe2\x80[\x90-\xa6]", data):  # UTF-8 letters elsewhere in the file
        raise InputError(f"{path}: mixes encodings: line {bad_line} is not UTF-8 while other lines are; save the "
                         f"file again as CSV UTF-8")
    from charset_normalizer import from_bytes

    guess = from_bytes(data, cp_isolation=COMMON_ENCODINGS).best()
    if guess is None:
        raise InputError(f"{path}: line {bad_line} is not valid UTF-8 and no common encoding explains the file; "
                         f"save it as CSV UTF-8")
    # A short Western file reads the same in several code pages; Windows-1252 is what spreadsheets write.
    for encoding in (("cp1252",) if guess.encoding in LATIN else ()) + (guess.encoding,):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path}: line {bad_line} is not valid UTF-8; save it as CSV UTF-8")  # pragma: no cover


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same number (> 1) of fields; a comma otherwise."""
    csv.field_size_limit(2**31 - 1)
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, best_width = ",", 1
    for d in DELIMITERS:
        widths = {len(row) for row in csv.reader(lines, delimiter=d)}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = d, width
    return best


def _parquet(path: Path) -> pl.DataFrame:
    try:
        return checked_header(pl.read_parquet(path), path)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InputError(f"{path}: not a readable Parquet file ({_first_line(e)})") from None


def _excel(path: Path) -> pl.DataFrame:
    try:
        return checked_header(pl.read_excel(path, engine="calamine", infer_schema_length=None), path)
    except InputError:
        raise
    except ImportError:
        raise InputError(f"{path}: Excel files need the 'fastexcel' package; or save the sheet as CSV") from None
    except Exception as e:  # noqa: BLE001 - any reader failure is the same advice
        raise InputError(f"{path}: cannot be read as a spreadsheet ({_first_line(e)}); save it as CSV") from None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def is_formula(expr: pl.Expr) -> pl.Expr:
    """Whether a text cell is one a spreadsheet would run as a formula (and `neutralise` quotes)."""
    text = expr.cast(pl.String)
    return text.str.contains(FORMULA) & ~text.str.contains(PLAIN_NUMBER)


def neutralise(df: pl.DataFrame) -> pl.DataFrame:
    """Every text cell a spreadsheet would run as a formula, prefixed with `'`."""
    fixes = []
    for name, dtype in df.schema.items():
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            col = pl.col(name).cast(pl.String)
            fixes.append(pl.when(is_formula(col)).then(pl.lit("'") + col).otherwise(col).alias(name))
    return df.with_columns(fixes) if fixes else df


_FORMULA, _PLAIN_NUMBER = re.compile(FORMULA), re.compile(PLAIN_NUMBER)


def safe_cell(value: str) -> str:
    """One cell, as `neutralise` treats a column (for writers that go row by row, like the audit log)."""
    return "'" + value if _FORMULA.search(value) and not _PLAIN_NUMBER.search(value) else value


def unneutralised(expr: pl.Expr) -> pl.Expr:
    """A cell read back from a CSV cpo wrote, as it was before `neutralise` (`'=X004` -> `=X004`); any other
    value unchanged. An id that went out in sends.csv and comes back in an email service's events matches."""
    text = expr.cast(pl.String)
    rest = text.str.slice(1)
    quoted = text.str.starts_with("'") & is_formula(rest)
    return pl.when(quoted).then(rest).otherwise(text)


def write_csv(df: pl.DataFrame | Iterable[pl.DataFrame], path: str | Path) -> Path:
    """The product's CSV writer, for every CSV cpo writes (sends.csv too): formula cells neutralised, nested
    values as JSON, written whole. `df` may be the frames of a file's partitions in order (read one at a time: a
    file larger than memory), written as one CSV under the first one's header. sends.csv's ids are quoted like
    every other file's; the text an email service sends (address, subject, body, links) never needs it: the
    export refuses an address or a message that would (`tasks.experiment.sends`)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with tmp.open("wb") as out:
            for i, part in enumerate([df] if isinstance(df, pl.DataFrame) else df):
                nested = [n for n, t in part.schema.items() if isinstance(t, (pl.List, pl.Array, pl.Struct))]
                if nested:
                    part = part.with_columns(pl.col(n).map_elements(_json, return_dtype=pl.String) for n in nested)
                part = part.rename({c: safe_cell(c) for c in part.columns if safe_cell(c) != c})  # header cells too
                neutralise(part).write_csv(out, include_header=i == 0)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return target


def write_parquet(frames: Iterable[pl.DataFrame], path: str | Path) -> Path:
    """Frames of one schema written one after another as one Parquet file (a row group or more each), whole."""
    import pyarrow.parquet as pq

    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    writer = None
    try:
        for frame in frames:
            table = frame.to_arrow()
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.cast(writer.schema))
        if writer is None:
            raise ValueError("write_parquet needs at least one frame (its schema)")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return target


def _json(value) -> str:
    import json
    return json.dumps(value.to_list() if hasattr(value, "to_list") else value, default=str)
