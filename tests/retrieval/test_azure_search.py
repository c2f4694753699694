"""Contract tests for the Azure AI Search backend against the local fake service (tests/fakes/search_server.py)."""
import argparse
import socket
import time
from datetime import date

import pytest

from tasks.errors import CpoError, InputError
from tasks.records import Document
from tasks.retrieval.azure_search import AzureSearchRetriever, SearchUnavailable, index_documents
from tasks.retrieval.local import LocalRetriever
from tests.fakes.search_server import FakeSearchService

TODAY = date(2026, 11, 24)
KEY = "sk-test-9f8e7d6c5b4a"


def doc(i, text, **kw):
    return Document(id=i, title=kw.pop("title", i), text=text, **kw)


CORPUS = [
    doc("boots-all", "Waterproof hiking boots for every trail.", audience=["all"]),
    doc("boots-new", "Hiking boots for your first hikes.", audience=["new"]),
    doc("boots-vip", "Premium hiking boots, resoled for members.", audience=["high_value"]),
    doc("boots-expired", "Hiking boots on clearance.", expires_at=date(2025, 1, 1)),
    doc("boots-draft", "Hiking boots preview.", approval_status="draft"),
    doc("boots-future", "Hiking boots next season.", approved_at=date(2027, 1, 1)),
    doc("boots-last-day", "Hiking boots deal ends today.", expires_at=TODAY, approved_at=TODAY),
    doc("tent-all", "Tents, and boots to walk to camp.", audience=["all"]),
]


@pytest.fixture
def service():
    with FakeSearchService(api_key=KEY) as svc:
        yield svc


@pytest.fixture
def env(service):
    return {"AZURE_SEARCH_ENDPOINT": service.endpoint, "AZURE_SEARCH_API_KEY": KEY, "AZURE_SEARCH_INDEX": "cpo-content"}


@pytest.fixture
def sleeps():
    return []


def retriever(env, docs=None, sleeps=None, **kw):
    return AzureSearchRetriever.from_env(env, docs, sleep=(sleeps.append if sleeps is not None else time.sleep), **kw)


def ids(hits):
    return [h.document_id for h in hits]


def test_index_then_search_returns_the_right_documents(service, env):
    assert index_documents(CORPUS, env) == len(CORPUS)
    definition = service.indexes["cpo-content"]["definition"]
    fields = {f["name"]: f for f in definition["fields"]}
    assert fields["id"]["key"] and fields["audience"]["type"] == "Collection(Edm.String)"
    assert all(fields[f]["filterable"] for f in ("audience", "approval_status", "approved_at", "expires_at"))
    assert all(fields[f]["searchable"] for f in ("title", "text", "keywords", "category"))
    assert fields["approved_at"]["type"] == "Edm.DateTimeOffset" and definition["defaultScoringProfile"]
    hits = retriever(env, CORPUS).search("waterproof hiking boots", ["all"], 2, TODAY)
    assert ids(hits)[0] == "boots-all" and len(hits) == 2
    search = service.ops("docs:search")[-1]
    assert search["params"]["api-version"] == "2026-04-01" and search["index"] == "cpo-content"
    assert search["body"]["top"] >= 2 and "approval_status eq 'approved'" in search["body"]["filter"]


@pytest.mark.parametrize("query,tags,top_k", [("hiking boots", ["new"], 3), ("boots", ["high_value"], 5),
                                              ("boots", ["lapsed"], 8), ("boots first hikes", ["new", "loyal"], 1)])
def test_filters_give_the_same_documents_as_the_local_index(service, env, query, tags, top_k):
    index_documents(CORPUS, env)
    azure = ids(retriever(env, CORPUS).search(query, tags, top_k, TODAY))
    local = ids(LocalRetriever(CORPUS).search(query, tags, top_k, TODAY))
    assert not {"boots-expired", "boots-draft", "boots-future"} & set(azure)
    # the fake scores by term count, not BM25, so ties may order differently: compare the chosen sets
    assert sorted(azure) == sorted(local) and azure[0] == local[0]


def test_audience_is_relaxed_only_when_too_few_fit(service, env):
    index_documents(CORPUS, env)
    hits = ids(retriever(env, CORPUS).search("boots", ["high_value"], 5, TODAY))
    fitting = {"boots-all", "boots-vip", "boots-last-day", "tent-all"}
    assert set(hits[:4]) == fitting and hits[4] == "boots-new"  # fitting first, then the relaxed rest
    filters = [r["body"]["filter"] for r in service.ops("docs:search")]
    assert "audience/any" in filters[0] and "audience" not in filters[1]


def test_long_document_is_chunked_and_hit_names_the_document(service, env):
    long_text = " ".join(f"Sentence {i} is about filler things only." for i in range(50)) + " Crampons grip ice."
    index_documents([doc("manual", long_text), doc("other", "Gift cards.")], env)
    passages = [d for d in service.indexes["cpo-content"]["docs"].values() if d["document_id"] == "manual"]
    assert len(passages) == 3 and all(len(p["text"].split()) <= 120 for p in passages)
    assert ids(retriever(env).search("filler crampons", ["all"], 2, TODAY)) == ["manual"]


def test_uploads_in_batches_of_at_most_1000(service, env):
    docs = [doc(f"d{i}", f"Item {i} text.") for i in range(2300)]
    assert index_documents(docs, env) == 2300
    assert [len(r["body"]["value"]) for r in service.ops("docs:index")] == [1000, 1000, 300]
    assert {a["@search.action"] for a in service.ops("docs:index")[0]["body"]["value"]} == {"mergeOrUpload"}


def test_hits_the_run_content_does_not_allow_are_dropped(service, env):
    index_documents(CORPUS, env)  # the index still has tent-all approved; the run's copy was withdrawn
    run_content = [d if d.id != "tent-all" else d.model_copy(update={"approval_status": "withdrawn"}) for d in CORPUS
                   if d.id != "boots-all"]
    hits = ids(retriever(env, run_content).search("boots", ["all"], 8, TODAY))
    assert hits and not {"boots-all", "tent-all"} & set(hits)


def test_429_with_retry_after_then_success(service, env, sleeps):
    index_documents(CORPUS, env)
    service.script(status=429, retry_after="2", op="docs:search")
    assert ids(retriever(env, CORPUS, sleeps).search("boots", ["all"], 1, TODAY))
    assert sleeps == [2.0] and len(service.ops("docs:search")) == 2


def test_503_then_success(service, env, sleeps):
    index_documents(CORPUS, env)
    service.script(status=503, times=2, op="docs:search")
    assert ids(retriever(env, CORPUS, sleeps).search("boots", ["all"], 1, TODAY))
    # the shared backoff (tasks/services.py): 0.5 s then 1 s, each with jitter in [0.5, 1]
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_timeout_then_success(service, env, sleeps):
    index_documents(CORPUS, env)
    service.script(delay=3.0, op="docs:search")
    start = time.perf_counter()
    assert ids(retriever(env, CORPUS, sleeps, timeout=0.5).search("boots", ["all"], 1, TODAY))
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5 and time.perf_counter() - start < 2.5


def test_service_down_raises_a_clear_error(service, env, sleeps):
    index_documents(CORPUS, env)
    service.script(status=503, times=None)
    with pytest.raises(SearchUnavailable) as e:
        retriever(env, CORPUS, sleeps, attempts=3).search("boots", ["all"], 1, TODAY)
    assert isinstance(e.value, CpoError) and e.value.exit_code == 1
    assert "unavailable" in str(e.value) and "3 times" in str(e.value) and service.endpoint in str(e.value)
    assert len(service.ops("docs:search")) == 3 and len(sleeps) == 2


def test_nothing_listening_raises_a_clear_error(env, sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    env = {**env, "AZURE_SEARCH_ENDPOINT": f"http://127.0.0.1:{port}"}
    with pytest.raises(SearchUnavailable, match="could not connect"):
        retriever(env, CORPUS, sleeps, attempts=2).search("boots", ["all"], 1, TODAY)


def test_retry_after_beyond_the_budget_fails_fast(service, env, sleeps):
    index_documents(CORPUS, env)
    service.script(status=429, retry_after="600", op="docs:search")
    with pytest.raises(SearchUnavailable, match="asked to wait 600 s"):
        retriever(env, CORPUS, sleeps).search("boots", ["all"], 1, TODAY)
    assert sleeps == []


@pytest.mark.parametrize("reply", [True, b"<html>502 Bad Gateway</html>", b'{"value": 5}', b"[]",
                                   b'{"value": [{"@search.score": 1.0, "id": "x"}]}'])
def test_malformed_reply_raises_a_clear_error(service, env, reply):
    index_documents(CORPUS, env)
    service.script(malformed=reply, op="docs:search")
    with pytest.raises(SearchUnavailable, match="not valid search JSON"):
        retriever(env, CORPUS).search("boots", ["all"], 1, TODAY)


def test_wrong_key_and_missing_index_are_config_errors_without_the_key(service, env):
    index_documents(CORPUS, env)
    with pytest.raises(InputError, match="AZURE_SEARCH_API_KEY") as wrong:
        retriever({**env, "AZURE_SEARCH_API_KEY": "not-the-key"}).search("boots", ["all"], 1, TODAY)
    with pytest.raises(InputError, match="no index 'nope'") as missing:
        retriever({**env, "AZURE_SEARCH_INDEX": "nope"}).search("boots", ["all"], 1, TODAY)
    assert "not-the-key" not in str(wrong.value) and KEY not in str(missing.value)


@pytest.mark.parametrize("name", ["AZURE_SEARCH_ENDPOINT", "AZURE_SEARCH_API_KEY", "AZURE_SEARCH_INDEX"])
def test_missing_env_var_is_an_input_error_naming_it(env, name):
    with pytest.raises(InputError, match=name) as e:
        AzureSearchRetriever.from_env({**env, name: " "})
    assert e.value.exit_code == 2 and KEY not in str(e.value)


def test_key_never_appears_in_messages_or_repr(service, env, sleeps):
    index_documents(CORPUS, env)
    r = retriever(env, CORPUS, sleeps, attempts=2)
    service.script(status=503, times=None)
    messages = [repr(r), repr(r.settings)]
    for fail in (lambda: r.search("boots", ["all"], 1, TODAY),
                 lambda: index_documents(CORPUS, env, sleep=sleeps.append)):
        with pytest.raises(CpoError) as e:
            fail()
        messages.append(str(e.value))
    assert all(KEY not in m for m in messages)
    with pytest.raises(InputError, match="https"):
        AzureSearchRetriever.from_env({**env, "AZURE_SEARCH_ENDPOINT": "http://search.example.com"})


def test_make_retriever_builds_the_azure_backend(service, env, monkeypatch):
    from tasks.retrieval import make_retriever
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    index_documents(CORPUS, env)
    r = make_retriever("azure-search", CORPUS)
    assert r.name == "azure-search" and ids(r.search("waterproof", ["all"], 1, TODAY)) == ["boots-all"]


def test_cmd_content_index_against_the_fake(service, env, monkeypatch, capsys):
    from flows.content import add_parser
    from tests.conftest import SAMPLE
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    parser = argparse.ArgumentParser(prog="cpo")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["content", "index", "--content", str(SAMPLE / "content")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "indexed 24 documents" in out and "'cpo-content'" in out and KEY not in out
    assert {d["document_id"] for d in service.indexes["cpo-content"]["docs"].values()} == \
        {p.stem for p in (SAMPLE / "content").iterdir()}
