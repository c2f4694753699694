"""Personal data: which columns hold it (by name and by content), and how to show a value without revealing it.

Every message that quotes a customer row goes through `safe_row`, so names, addresses and phone numbers
never reach a terminal, `run_status.json` or Prefect's database; PII columns are never model features.
"""
from __future__ import annotations

import re
import unicodedata

import polars as pl

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w.])\+?\(?\d[\d ().-]{6,}\d(?![\w.])")
NATIONAL_ID = re.compile(r"^\d{3}-\d{2}-\d{4}$|^[A-Z]{2}\d{6}[A-D]$")  # US SSN, UK National Insurance number
CARD = re.compile(r"^(?:\d[ -]?){13,19}$")
DATE = re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b")
FULL_NAME = re.compile(r"^[A-Z][a-zà-ÿ'’-]+(?: [A-Z][a-zà-ÿ'’.-]+){1,3}$")
PERSON_NAME = re.compile(r"^[A-Z][a-zà-ÿ'’-]+(?: [A-Z][a-zà-ÿ'’.-]+){0,3}$")

# Column names (lower case, runs of non-alphanumerics as "_") that hold personal data, by kind.
NAMES = {
    "email": {"email", "e_mail", "email_address", "emailaddress", "mail", "email_addr", "contact_email"},
    "phone": {"phone", "phone_number", "phonenumber", "mobile", "mobile_number", "cell", "cell_phone", "telephone",
              "tel", "msisdn", "sms_number", "whatsapp"},
    "name": {"name", "first_name", "firstname", "last_name", "lastname", "full_name", "fullname", "surname",
             "given_name", "family_name", "middle_name", "customer_name", "contact_name", "fname", "lname",
             "username", "user_name", "display_name", "maiden_name", "birth_name", "nickname", "forename",
             "forenames", "surnames", "given_names", "middle_names", "second_name", "other_names",
             # de, es, fr, it, nl, pt, pl, sv, da/no, fi, tr (accents folded: prénom -> prenom)
             "nachname", "vorname", "vornamen", "familienname", "geburtsname", "madchenname", "rufname",
             "kundenname", "nombre", "nombres", "apellido", "apellidos", "nombre_completo", "primer_apellido",
             "segundo_apellido", "nom", "prenom", "prenoms", "nom_de_famille", "nom_complet", "nom_de_jeune_fille",
             "nome", "cognome", "nome_completo", "achternaam", "voornaam", "voornamen", "meisjesnaam",
             "tussenvoegsel", "sobrenome", "imie", "nazwisko", "fornamn", "efternamn", "fornavn",
             "efternavn", "etternavn", "etunimi", "sukunimi", "soyadi", "soyad"},
    "national_id": {"ssn", "social_security", "social_security_number", "national_id", "national_insurance",
                    "nino", "nin", "passport", "passport_number", "tax_id", "tin", "sin", "driver_license",
                    "drivers_license", "id_number"},
    "address": {"address", "street", "street_address", "address_line1", "address_line_1", "address1",
                "address_line2", "address2", "home_address", "postal_address"},
    "birth_date": {"dob", "date_of_birth", "birth_date", "birthdate", "birthday"},
    "network": {"ip", "ip_address", "ipaddress", "device_id", "cookie_id"},
    "payment": {"credit_card", "card_number", "iban", "account_number", "bank_account", "cc_number"},
}
SAMPLE = 2_000


def normalise_name(column: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", column.lower()).strip("_")


# Name parts that mark personal data wherever they appear (spouse_ssn, home_phone, billing_address).
TOKENS = {"email": "email", "emails": "email", "phone": "phone", "mobile": "phone", "telephone": "phone",
          "msisdn": "phone", "whatsapp": "phone", "ssn": "national_id", "passport": "national_id",
          "nino": "national_id", "iban": "payment", "address": "address", "street": "address", "dob": "birth_date",
          "birthday": "birth_date", "birthdate": "birth_date", "surname": "name", "firstname": "name",
          "lastname": "name", "fullname": "name", "username": "name", "ip": "network",
          **{word: "name" for word in ("forename", "nickname", "nachname", "vorname", "familienname", "apellido",
                                       "apellidos", "prenom", "cognome", "achternaam", "voornaam", "sobrenome",
                                       "nazwisko", "fornamn", "efternamn", "fornavn", "efternavn", "etternavn",
                                       "etunimi", "sukunimi", "soyadi")}}
# "name" in a column name is personal data when a part before it says whose (billing_first_name,
# mothers_maiden_name, emergency_contact_name), not in campaign_name or product_name.
NAME_WORDS = {"name", "names", "nom", "nombre", "nome", "naam", "namn", "navn", "nimi"}
PERSON_PARTS = {"first", "last", "given", "family", "maiden", "middle", "full", "birth", "nick", "sur", "second",
                "legal", "preferred", "real", "spouse", "partner", "mother", "mothers", "father", "fathers",
                "child", "customer", "contact", "client", "cliente", "recipient", "member", "person", "holder",
                "cardholder", "guest", "owner", "patient", "employee", "user", "display", "buyer", "sender"}


def folded_name(column: str) -> str:
    """A column name to look up: camelCase split, accents and case folded, then as `normalise_name`
    (`Prénom` -> `prenom`, `familyName` -> `family_name`, `Mädchenname` -> `madchenname`)."""
    split = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", column.replace("ß", "ss"))
    return normalise_name("".join(c for c in unicodedata.normalize("NFKD", split) if not unicodedata.combining(c)))


def kind_by_name(column: str) -> str | None:
    """By the whole name, or by its last part (home_phone, spouse_ssn, billing_address) or a first part followed
    only by a number word (phone_no, ssn_1); email_opt_in or email_open_rate describe, they are not addresses.
    Names are compared folded (`folded_name`)."""
    name = folded_name(column)
    exact = next((kind for kind, names in NAMES.items() if name in names), None)
    parts = name.split("_")
    if exact or not parts:
        return exact
    if parts[-1] in TOKENS:
        return TOKENS[parts[-1]]
    if parts[-1] in NAME_WORDS and PERSON_PARTS & set(parts[:-1]):
        return "name"
    if parts[0] in TOKENS and len(parts) == 2 and parts[1] in {"number", "no", "num", "nr", "addr", "id", "1", "2"}:
        return TOKENS[parts[0]]
    return None


def kind_by_content(values: pl.Series, share_needed: float = 0.2) -> str | None:
    """What a column's values are when `share_needed` of them look like emails, phone numbers, national ids
    or card numbers, or most look like people's names. Integer columns are checked for phone numbers too."""
    if values.dtype.is_integer():
        digits = values.drop_nulls().cast(pl.String).head(SAMPLE)
        if digits.len() and digits.str.len_chars().is_between(10, 13).mean() >= 0.5:
            return "phone"
        return None
    if values.dtype != pl.String:
        return None
    text = values.drop_nulls().str.strip_chars()
    sample = text.filter(text != "").head(SAMPLE).to_list()
    if not sample:
        return None
    share = lambda pattern: sum(bool(pattern.fullmatch(v)) for v in sample) / len(sample)  # noqa: E731
    if share(EMAIL) >= share_needed:
        return "email"
    if share(NATIONAL_ID) >= share_needed:
        return "national_id"
    if share(CARD) >= share_needed:
        return "payment"
    if sum(bool(PHONE.fullmatch(v)) and _phone_like(v) for v in sample) / len(sample) >= share_needed:
        return "phone"
    distinct = len(set(sample))
    if share(FULL_NAME) >= 0.5 and distinct >= min(5, len(sample)):
        return "name"
    if share(PERSON_NAME) >= 0.8 and distinct >= max(20, 0.05 * len(sample)):
        return "name"
    return None


def pii_columns(df: pl.DataFrame) -> dict[str, str]:
    """Column -> kind of personal data ("email", "phone", "name", ...), found by name or by content."""
    out = {}
    for column in df.columns:
        kind = kind_by_name(column) or kind_by_content(df[column])
        if kind:
            out[column] = kind
    return out


def _letters(expr: pl.Expr) -> pl.Expr:
    """Only the letters, accents and case folded: `O'Connor-Müller` -> `oconnormuller`."""
    return expr.cast(pl.String).str.normalize("NFKD").str.replace_all(r"[^\p{L}]", "").str.to_lowercase()


def names_the_people(df: pl.DataFrame, column: str, share_needed: float = 0.2) -> bool:
    """Whether a text column holds the customers' own names, whatever it is called and however few its values:
    in `share_needed` of the rows that have one (3 letters or more), the value is that row's name in one of the
    frame's name columns or part of its email address before the @ (`Okafor` and `jokafor@...`). A city, tier
    or category is not part of the address of a fifth of the customers who have it."""
    value = _letters(pl.col(column))
    same = [_letters(pl.col(c)) == value for c in df.columns if c != column and kind_by_name(c) == "name"]
    same += [_letters(pl.col(c).cast(pl.String).str.split("@").list.first()).str.contains(value, literal=True)
             for c in df.columns if c != column and kind_by_name(c) == "email"]
    if not same:
        return False
    linked = (df.select(pl.any_horizontal(same).fill_null(False).alias("linked"), value.str.len_chars().alias("n"))
              .filter(pl.col("n") >= 3)["linked"])
    return linked.len() > 0 and linked.mean() >= share_needed


def mask(value: object, kind: str | None = None) -> str:
    """`j***@example.org`, `***-***-**67`, `J***`: enough to find the row, not enough to know the person."""
    if value is None:
        return "None"
    text = str(value)
    if EMAIL.fullmatch(text.strip()):
        local, _, domain = text.strip().partition("@")
        return f"{local[:1]}***@{domain}"
    if kind == "phone" or (kind is None and PHONE.fullmatch(text.strip())):
        digits = re.sub(r"\D", "", text)
        return "***" + digits[-2:] if len(digits) > 4 else "***"
    return (text[:1] + "***") if text else ""


def _phone_like(found: str) -> bool:
    """9 to 15 digits and not a date (2026-11-30, 30.11.2026 12:00)."""
    return 9 <= len(re.sub(r"\D", "", found)) <= 15 and not DATE.search(found)


def _phone_in_text(found: str) -> bool:
    """A phone number in prose: written with a separator or a leading +."""
    return _phone_like(found) and bool(re.search(r"[ ().+-]", found))


def mask_text(text: str) -> str:
    """Mask emails and phone numbers inside free text (a message that may quote a value)."""
    text = EMAIL.sub(lambda m: mask(m.group(0)), text)
    return PHONE.sub(lambda m: mask(m.group(0), "phone") if _phone_in_text(m.group(0)) else m.group(0), text)


def safe_row(row: dict, pii: dict[str, str], show: set[str] = frozenset()) -> dict:
    """A row for a message: personal-data columns dropped, except those in `show`, which are masked.
    Any other value that looks like an email or phone number is masked too."""
    out = {}
    for k, v in row.items():
        if k in pii and k not in show:
            continue
        out[k] = v if v is None else mask(v, pii.get(k)) if k in pii else (mask_text(v) if isinstance(v, str) else v)
    return out


INVISIBLE = r"[\u00AD\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]"


def email_key(expr: pl.Expr) -> pl.Expr:
    """An address as a key: NFKC (fullwidth letters folded), invisible characters removed, trimmed,
    lower-cased. Suppression lists and ESP events are matched on it."""
    return (expr.cast(pl.String).str.normalize("NFKC").str.replace_all(INVISIBLE, "").str.strip_chars()
            .str.to_lowercase())


# A customer id as a suppression key: the same folding, case-insensitive (ingest refuses ids that differ only by
# case or by such characters, so folding can only suppress more, never another customer).
id_key = email_key
