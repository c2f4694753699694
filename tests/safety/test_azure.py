"""Contract of the Azure AI Content Safety scorer, against the local fake service (tests/fakes/content_safety.py).

A rejected key is ScreenerUnavailable (exit 3, fail closed), not InputError: it is only found by the
screening call itself. Missing variables are InputError (exit 2) before any call.
"""
import threading
import time

import pytest
from azure.core.exceptions import AzureError

from tasks.errors import InputError, ScreenerUnavailable
from tasks.safety.azure import COMPETITOR_BLOCKLIST, ENDPOINT_VAR, KEY_VAR, AzureHarmScorer, split_text
from tasks.services import RateLimiter
from tests.fakes.content_safety import FakeContentSafety, Fault

KEY = "k3y-9f2c5e7a-do-not-print"  # distinctive, so "never in a message" means something
FOUR = {"hate", "self_harm", "sexual", "violence"}
COMPETITORS = ["Summit Supply Co.", "TrailMart", "Peak Gear Depot"]


@pytest.fixture
def fake():
    with FakeContentSafety(key=KEY) as f:
        yield f


def scorer(fake, **options) -> AzureHarmScorer:
    """Small timeouts and backoff so failure paths take well under a second."""
    return AzureHarmScorer(fake.url, KEY, **{"timeout": 0.5, "backoff": 0.01, **options})


def unavailable(call, *args) -> ScreenerUnavailable:
    with pytest.raises(ScreenerUnavailable) as info:
        call(*args)
    err = info.value
    assert KEY not in str(err) and KEY not in repr(err)
    # no SDK exception rides along: it holds the request, and the request holds the key header
    assert err.__cause__ is None and not isinstance(err.__context__, AzureError)
    return err


def test_scores_come_back_on_the_eight_level_scale(fake):
    s = scorer(fake)
    assert s.name == "azure"
    assert s.score("I will punch you. Go hurt yourself.") == {"hate": 0, "self_harm": 5, "sexual": 0, "violence": 3}
    assert s.score("I will kill you")["violence"] == 6
    (first, _) = fake.analyze_requests()
    assert first.key_ok and first.query["api-version"] == "2023-10-01"
    assert first.body["outputType"] == "EightSeverityLevels"
    assert first.body["categories"] == ["Hate", "SelfHarm", "Sexual", "Violence"]
    assert KEY not in repr(s)


def test_blank_text_scores_zero_without_a_call(fake):
    assert scorer(fake).score("  \n ") == dict.fromkeys(FOUR, 0)
    assert fake.requests == []


def test_long_text_is_split_on_whitespace_and_the_worst_chunk_wins(fake):
    text = "calm words about boots " * 700 + "and now I will kill you"  # ~16,100 characters
    assert scorer(fake).score(text)["violence"] == 6
    sent = [r.body["text"] for r in fake.analyze_requests()]
    assert len(sent) >= 2 and all(len(t) <= 10_000 for t in sent)
    assert " ".join(sent).split() == text.split()  # cut between words, nothing lost


def test_split_text_cuts_a_run_without_whitespace_hard():
    chunks = split_text("a" * 25 + " bb", limit=10)
    assert chunks == ["a" * 10, "a" * 10, "aaaaa bb"]
    assert split_text("short", limit=10) == ["short"]


@pytest.mark.parametrize("fault", [Fault.throttle(retry_after=1), Fault.throttle(), Fault.error(500),
                                   Fault.error(503), Fault.delay(2.0)],
                         ids=["429-retry-after", "429-bare", "500", "503", "timeout"])
def test_a_transient_failure_is_retried(fake, fault):
    fake.script(fault)
    assert scorer(fake).score("I will kill you")["violence"] == 6
    first, second = fake.analyze_requests()
    if fault.retry_after:
        assert second.at - first.at >= 0.95  # Retry-After: 1 honoured


def test_the_sdk_does_not_retry_on_its_own(fake):
    """With one attempt allowed, a 429 carrying Retry-After (which azure-core would retry) is one request."""
    fake.script(Fault.throttle(retry_after=1))
    unavailable(scorer(fake, attempts=1).score, "hello")
    assert len(fake.requests) == 1


def test_a_retry_after_longer_than_we_allow_fails_at_once(fake):
    fake.script(Fault.throttle(retry_after=120))
    assert "120 s" in str(unavailable(scorer(fake, max_backoff=5).score, "hello"))
    assert len(fake.requests) == 1


@pytest.mark.parametrize("fault", [
    Fault.malformed(),
    Fault.reply({"blocklistsMatch": []}),
    Fault.reply({"categoriesAnalysis": [{"category": "Hate", "severity": 9}, {"category": "SelfHarm", "severity": 0},
                                        {"category": "Sexual", "severity": 0}, {"category": "Violence", "severity": 0}]}),
    Fault.reply({"categoriesAnalysis": [{"category": "Hate", "severity": 0}]}),
    Fault.reply(["not", "an", "object"]),
    Fault.reply({"categoriesAnalysis": [{"category": "Violence", "severity": 6}, {"category": "Hate", "severity": 0},
                                        {"category": "SelfHarm", "severity": 0}, {"category": "Sexual", "severity": 0},
                                        {"category": "Violence", "severity": 0}]}),
], ids=["not-json", "no-categoriesAnalysis", "severity-9", "missing-categories", "json-list", "repeated-category"])
def test_a_malformed_reply_fails_closed_without_retrying(fake, fault):
    fake.script(fault)
    err = unavailable(scorer(fake).score, "hello")
    assert "malformed" in str(err) or "0-7 severity" in str(err)
    assert len(fake.requests) == 1


def test_a_service_that_stays_down_fails_closed_after_the_bounded_attempts(fake):
    fake.down = True
    assert "after 3 attempts (last: HTTP 503)" in str(unavailable(scorer(fake, attempts=3).score, "hello"))
    assert len(fake.requests) == 3


def test_nothing_listening_fails_closed(fake):
    with FakeContentSafety() as gone:
        url = gone.url
    s = AzureHarmScorer(url, KEY, attempts=2, timeout=0.5, backoff=0.01)
    assert "after 2 attempts" in str(unavailable(s.score, "hello"))


def test_a_wrong_key_fails_closed_at_once_and_names_the_variable(fake):
    s = AzureHarmScorer(fake.url, "wrong-" + KEY, timeout=0.5, backoff=0.01)
    err = unavailable(s.score, "hello")
    assert "401" in str(err) and KEY_VAR in str(err) and "wrong-" not in str(err)
    assert len(fake.requests) == 1 and not fake.requests[0].key_ok


def test_the_rate_limiter_spaces_requests(fake):
    s = scorer(fake, rate_limit=2, rate_window=0.4)
    granted, acquire = [], s._limiter.acquire
    s._limiter.acquire = lambda *a: (acquire(*a), granted.append(time.monotonic()))  # when each request may go
    for text in ["a", "b", "c", "d", "e"]:
        s.score(text)
    assert len(fake.requests) == len(granted) == 5  # every request went through the limiter, once
    assert granted[-1] - granted[0] >= 0.8 - 1e-3  # requests 3 and 5 each waited for a window to pass
    assert all(granted[i + 2] - granted[i] >= 0.4 - 1e-3 for i in range(3))  # never 3 in one window
    at = [r.at for r in fake.requests]  # as the service saw them (a loaded machine adds jitter in transit)
    assert at[-1] - at[0] >= 0.6


def test_the_rate_limiter_is_shared_by_threads():
    limiter, done = RateLimiter(requests=3, per=0.3), []
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: (limiter.acquire(), done.append(time.monotonic()))) for _ in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 7 and max(done) - start >= 0.6  # 7 acquisitions need three windows


def test_from_env_syncs_the_competitor_blocklist(fake):
    env = {ENDPOINT_VAR: fake.url + "/", KEY_VAR: KEY}
    s = AzureHarmScorer.from_env(env, competitors=COMPETITORS, timeout=0.5, backoff=0.01)
    patch, add = fake.requests
    assert (patch.method, patch.path) == ("PATCH", f"/contentsafety/text/blocklists/{COMPETITOR_BLOCKLIST}")
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert add.path == f"/contentsafety/text/blocklists/{COMPETITOR_BLOCKLIST}:addOrUpdateBlocklistItems"
    assert sorted(i["text"] for i in add.body["blocklistItems"]) == sorted(COMPETITORS)
    assert s.score("Cheaper than TrailMart!") == dict.fromkeys(FOUR, 0)  # a hit is not harm ...
    assert s.last_blocklist_hits == ["TrailMart"]  # ... it is reported; the local competitor rule blocks it
    assert fake.analyze_requests()[0].body["blocklistNames"] == [COMPETITOR_BLOCKLIST]


def test_a_long_competitor_list_is_sent_in_batches_of_100(fake):
    terms = [f"Rival {i}" for i in range(150)]
    assert scorer(fake).sync_blocklist("big", terms) == 150
    adds = [r for r in fake.requests if r.path.endswith(":addOrUpdateBlocklistItems")]
    assert [len(r.body["blocklistItems"]) for r in adds] == [100, 50]


def test_a_failing_blocklist_sync_fails_closed(fake):
    fake.down = True
    env = {ENDPOINT_VAR: fake.url, KEY_VAR: KEY}
    err = unavailable(lambda: AzureHarmScorer.from_env(env, competitors=COMPETITORS, attempts=2, backoff=0.01))
    assert "create blocklist" in str(err)


@pytest.mark.parametrize("missing", [ENDPOINT_VAR, KEY_VAR])
def test_a_missing_variable_is_an_input_error_naming_it(missing):
    env = {ENDPOINT_VAR: "https://example.cognitiveservices.azure.com", KEY_VAR: KEY}
    del env[missing]
    with pytest.raises(InputError, match=missing) as info:
        AzureHarmScorer.from_env(env)
    assert KEY not in str(info.value)


def test_make_harm_scorer_builds_the_azure_scorer_from_the_environment(fake, monkeypatch):
    from tasks.safety import make_harm_scorer

    monkeypatch.setenv(ENDPOINT_VAR, fake.url)
    monkeypatch.setenv(KEY_VAR, KEY)
    s = make_harm_scorer("azure", COMPETITORS)
    assert isinstance(s, AzureHarmScorer) and s.blocklists == [COMPETITOR_BLOCKLIST]
    assert s.score("I will kill you")["violence"] == 6
