import json
from datetime import date

import pytest

from tasks.content import load_documents
from tasks.errors import InputError


def test_sample_has_twenty_approved_documents(documents):
    usable = [d for d in documents if d.usable_on(date(2026, 11, 24))]
    assert len(usable) >= 20
    assert {d.id for d in documents} - {d.id for d in usable} == {"promo-spring-clearance", "promo-holiday-preview"}


def test_json_variants_of_field_names(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"document_id": 7, "title": "T", "body": "Text one.",
                                                 "audience": "new, loyal", "expiry_date": "2030-01-01"}))
    (tmp_path / "b.md").write_text("---\ncategory: support\n---\n# Care guide\nWash cold.\n")
    docs = {d.id: d for d in load_documents(tmp_path)}
    assert docs["7"].audience == ["new", "loyal"] and docs["7"].expires_at == date(2030, 1, 1)
    assert docs["b"].title == "Care guide" and docs["b"].category == "support"


def test_jsonl(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"id": "x", "title": "X", "text": "Hello there."}\n\n{"id": "y", "title": "Y", "content": "Hi."}\n')
    assert [d.id for d in load_documents(p)] == ["x", "y"]


def test_document_without_text_is_named(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"id": "a", "title": "A"}))
    with pytest.raises(InputError, match="a.json.*no text"):
        load_documents(tmp_path)


def test_duplicate_ids_rejected(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"id": "same", "title": "A", "content": "x y z."}))
    with pytest.raises(InputError, match="appears twice"):
        load_documents(tmp_path)


def test_bad_date_named(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"id": "a", "title": "A", "content": "t", "expires_at": "soon"}))
    with pytest.raises(InputError, match="expires_at"):
        load_documents(tmp_path)


def test_bad_front_matter_names_the_file(tmp_path):
    (tmp_path / "promo.md").write_text("---\ntitle: [unclosed\n---\nBody text that is long enough.\n")
    with pytest.raises(InputError, match=r"promo.md.*front matter"):
        load_documents(tmp_path)


def test_jsonl_line_that_is_not_an_object_is_named(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"id": "a", "title": "A", "content": "Some approved text here."}\n[1, 2]\n')
    with pytest.raises(InputError, match=r"c.jsonl:2.*object"):
        load_documents(p)


def test_latin1_markdown_is_read(tmp_path):
    (tmp_path / "note.md").write_bytes("# Café\nOur café opens at nine every day.\n".encode("latin-1"))
    assert "café" in load_documents(tmp_path)[0].text


def test_only_expired_content_is_an_input_error(tmp_path):
    from datetime import date

    from tasks.content import check_usable

    (tmp_path / "a.json").write_text('{"id": "a", "title": "A", "content": "Old offer text.", "expires_at": "2020-01-01"}')
    with pytest.raises(InputError, match=r"none of the 1 documents.*1 expired"):
        check_usable(load_documents(tmp_path), date(2026, 11, 24), tmp_path)
