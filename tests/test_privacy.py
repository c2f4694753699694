"""Personal data found by name and by content; masked wherever it is shown."""
import polars as pl
import pytest

from tasks.privacy import kind_by_name, mask, mask_text, names_the_people, pii_columns, safe_row


def test_columns_found_by_name():
    df = pl.DataFrame({"Email Address": ["x"], "phone_number": ["x"], "Full Name": ["x"], "SSN": ["x"],
                       "tier": ["gold"], "recency_days": [1.0]})
    assert pii_columns(df) == {"Email Address": "email", "phone_number": "phone", "Full Name": "name",
                               "SSN": "national_id"}


def test_columns_found_by_content():
    n = 60
    df = pl.DataFrame({"contact": [f"user{i}@mail.example" for i in range(n)],
                       "c2": [f"+1 (415) 555-{1000 + i}" for i in range(n)],
                       "c3": [f"{100 + i}-45-{1000 + i}" for i in range(n)],
                       "who": [f"{a} {b}" for a, b in zip(["Ana", "Bo", "Cy", "Di", "Ed", "Flo"] * 10,
                                                          [f"Smith{chr(97 + i % 26)}" for i in range(n)])],
                       "tier": ["Gold", "Silver", "Bronze"] * 20, "city": ["Portland"] * n,
                       "date": [f"2026-01-{1 + i % 28:02d}" for i in range(n)]})
    assert pii_columns(df) == {"contact": "email", "c2": "phone", "c3": "national_id", "who": "name"}


def test_masks():
    assert mask("jose.garcia@example.org") == "j***@example.org"
    assert mask("+1 415 555 0167", "phone") == "***67"
    assert mask("José", "name") == "J***"
    text = mask_text("row 3: email='ann@ex.org', phone +44 20 7946 0958, date 2026-11-30, n=1234567")
    assert "ann@" not in text and "7946" not in text and "2026-11-30" in text and "1234567" in text


def test_safe_row_drops_pii_and_masks_the_shown_column():
    row = {"customer_id": "c1", "email": "ann@ex.org", "first_name": "Ann", "note": "call ann@ex.org"}
    assert safe_row(row, {"email": "email", "first_name": "name"}, show={"email"}) == {
        "customer_id": "c1", "email": "a***@ex.org", "note": "call a***@ex.org"}


def test_personal_data_hidden_in_other_column_names_and_shares():
    n = 40
    df = pl.DataFrame({"spouse_ssn": ["078-05-1120"] * n, "home_phone": [5035550100 + i for i in range(n)],
                       "billing_address": ["12 Oak Lane"] * n, "account_manager": ["Jane Porter", "Olga Ivanova",
                                                                                  "Li Wei", "Sam Ode", "Ann Bee"] * 8,
                       "referrer": [f"r{i}@gmail.com" if i % 2 else "" for i in range(n)],
                       "email_opt_in": [True] * n, "email_open_rate": [0.1] * n, "tier": ["Gold", "Silver"] * 20})
    assert pii_columns(df) == {"spouse_ssn": "national_id", "home_phone": "phone", "billing_address": "address",
                               "account_manager": "name", "referrer": "email"}


@pytest.mark.parametrize("column", [
    "Nachname", "Vorname", "apellido", "Apellidos", "nombre", "nom", "prenom", "Prénom", "PRÉNOM", "maiden_name",
    "surname", "family_name", "given_name", "cognome", "achternaam", "voornaam", "familyName", "GivenName",
    "Nom de famille", "Mädchenname", "nazwisko", "efternamn", "kunde_vorname", "billing_first_name",
    "mothers_maiden_name", "emergency_contact_name", "customer_nombre"])
def test_name_columns_in_other_languages_and_forms_are_found(column):
    assert kind_by_name(column) == "name"


@pytest.mark.parametrize("column", ["campaign_name", "product_name", "location", "tier", "nominal_value",
                                    "email_opt_in", "emailOptIn", "preferred_category", "segment"])
def test_other_columns_are_not_names(column):
    assert kind_by_name(column) is None


def test_a_few_surnames_under_any_column_name_are_the_customers_own():
    surnames = ["Okafor", "Müller", "Silva", "Okafor", "Chen"] * 8
    df = pl.DataFrame({"email": [f"{first[0]}{last.lower().replace('ü', 'u')}{i}@example.org"
                                 for i, (first, last) in enumerate(zip(["Ann", "Bo", "Cy", "Di"] * 10, surnames))],
                       "first_name": ["Ann", "Bo", "Cy", "Di"] * 10, "x7": surnames,
                       "also_first": ["Ann", "Bo", "Cy", "Di"] * 10,
                       "city": ["Seattle", "Austin", "Boston", "Denver", "Portland"] * 8,
                       "tier": ["gold", "silver"] * 20})
    assert names_the_people(df, "x7") and names_the_people(df, "also_first")
    assert not names_the_people(df, "city") and not names_the_people(df, "tier")
    assert not names_the_people(df.drop("email", "first_name"), "x7")  # nothing to compare with: not this check
