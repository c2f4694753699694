"""Contract of the openai-moderation and guard-model scorers against local fakes of their protocols
(tests/fakes/moderation_server.py): scores on the 0-7 scale, bounded retries on 429 (with and without
Retry-After), 5xx and timeouts, fail closed (ScreenerUnavailable) on malformed replies, a wrong key or a
service that stays down, and the key in no message."""
import time

import pytest

from tasks.errors import InputError, ScreenerUnavailable
from tasks.safety import Screener, make_harm_scorer
from tasks.safety.guard import GuardModelScorer, parse_verdict
from tasks.safety.moderation import OpenAIModerationScorer, parse_moderation
from tests.fakes.moderation_server import CATEGORIES, FakeGuard, FakeModeration, Fault, moderation_result

KEY = "sk-test-7f3a9c1e-do-not-print"
FOUR = {"hate", "self_harm", "sexual", "violence"}
ZERO = dict.fromkeys(FOUR, 0)


@pytest.fixture(params=["openai-moderation", "guard-model"])
def backend(request):
    fake_cls = FakeModeration if request.param == "openai-moderation" else FakeGuard
    with fake_cls(key=KEY) as fake:
        yield request.param, fake


def make(kind, fake, key=KEY, **options):
    options = {"timeout": 0.5, "backoff": 0.01, **options}
    if kind == "openai-moderation":
        return OpenAIModerationScorer(key, base_url=fake.base_url, **options)
    return GuardModelScorer(fake.base_url, "llama-guard-3-8b", key, **options)


def unavailable(call, *args) -> ScreenerUnavailable:
    with pytest.raises(ScreenerUnavailable) as info:
        call(*args)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert info.value.__cause__ is None
    return info.value


def test_scores_come_back_on_our_scale(backend):
    kind, fake = backend
    s = make(kind, fake)
    assert s.name == kind and KEY not in repr(s)
    assert s.score("Our boots are waterproof.") == ZERO
    assert s.score("I will kill you")["violence"] >= 6
    assert s.score("Go hurt yourself.")["self_harm"] == (7 if kind == "openai-moderation" else 6)
    assert s.score("They are vermin")["hate"] >= 6
    assert all(r.key_ok for r in fake.requests)


def test_moderation_request_and_mapping(backend):
    kind, fake = backend
    if kind != "openai-moderation":
        pytest.skip("moderation only")
    s = make(kind, fake)
    assert s.score("I will punch you") == {**ZERO, "violence": 4}  # 0.30: Medium, warns, does not block
    assert s.score("explicit")["sexual"] == 6
    body = fake.requests[0].body
    assert body["model"] == "omni-moderation-latest" and body["input"] == ["I will punch you"]
    s.score("wire the money now")
    assert s.last_other_flags == ["illicit"]


def test_guard_request_and_unmapped_hazards_are_noted(backend, settings):
    kind, fake = backend
    if kind != "guard-model":
        pytest.skip("guard only")
    s = make(kind, fake)
    assert s.score("Wire the money to this account") == ZERO
    assert s.notes() == ["guard-model hazard S2 (Non-Violent Crimes)"]
    body = fake.requests[0].body
    assert body["model"] == "llama-guard-3-8b" and body["messages"][-1] == {
        "role": "user", "content": "Wire the money to this account"}
    from datetime import date

    from tasks.safety.rules import Context, Message
    _, policy, brand = settings
    verdict = Screener(s, Context(brand, policy, {}, date(2026, 11, 24), 60)).screen(
        Message(subject="s", body="Wire the money to this account"))
    assert "guard-model hazard S2" in verdict.reason


def test_long_text_is_split_and_the_worst_part_wins(backend):
    kind, fake = backend
    text = "calm words about boots " * 500 + "and now I will kill you"  # ~11,500 characters
    assert make(kind, fake, max_chars=4000).score(text)["violence"] >= 6
    sent = [r.body["input"] if kind == "openai-moderation" else [r.body["messages"][-1]["content"]]
            for r in fake.requests]
    parts = [p for batch in sent for p in batch]
    assert len(parts) >= 3 and all(len(p) <= 4000 for p in parts)


@pytest.mark.parametrize("fault", [Fault.throttle(retry_after=1), Fault.throttle(), Fault.error(500),
                                   Fault.error(503), Fault.delay(2.0)],
                         ids=["429-retry-after", "429-bare", "500", "503", "timeout"])
def test_a_transient_failure_is_retried(backend, fault):
    kind, fake = backend
    fake.script(fault)
    assert make(kind, fake).score("I will kill you")["violence"] >= 6
    first, second = fake.requests
    if fault.retry_after:
        assert second.at - first.at >= 0.95  # Retry-After: 1 honoured


def test_the_timeout_bounds_each_attempt_end_to_end(backend):
    kind, fake = backend
    fake.script(Fault.trickle(every=0.05, seconds=6.0), Fault.trickle(every=0.05, seconds=6.0))  # each read quick
    started = time.monotonic()
    assert "no reply in time" in str(unavailable(make(kind, fake, timeout=0.5, attempts=2).score, "hello"))
    assert time.monotonic() - started < 2 * 0.5 + 0.5  # two attempts, each over at its deadline
    assert len(fake.requests) == 2


def test_a_trickled_reply_inside_the_timeout_is_read(backend):
    kind, fake = backend
    fake.script(Fault.trickle(every=0.0005, seconds=6.0))
    assert make(kind, fake, timeout=5.0).score("I will kill you")["violence"] >= 6


def test_a_retry_after_longer_than_we_allow_fails_at_once(backend):
    kind, fake = backend
    fake.script(Fault.throttle(retry_after=120))
    assert "120 s" in str(unavailable(make(kind, fake, max_retry_after=5).score, "hello"))
    assert len(fake.requests) == 1


def test_the_sdk_does_not_retry_on_its_own(backend):
    kind, fake = backend
    fake.script(Fault.throttle(retry_after=0))
    unavailable(make(kind, fake, attempts=1).score, "hello")
    assert len(fake.requests) == 1


MALFORMED_MODERATION = [
    Fault.malformed(),
    Fault.reply({"id": "x", "model": "m"}),
    Fault.reply({"id": "x", "model": "m", "results": []}),
    Fault.reply({"id": "x", "model": "m", "results": [{"flagged": False, "categories": {},
                                                       "category_scores": {}}]}),
    Fault.reply({"id": "x", "model": "m", "results": [{**moderation_result("hi"), "category_scores": {
        **moderation_result("hi")["category_scores"], "violence": 1.7}}]}),
    Fault.reply(["not", "an", "object"]),
    Fault.reply({"id": "x", "model": "m", "results": [{**moderation_result("hi"), "flagged": True}]}),
]
MALFORMED_GUARD = [
    Fault.malformed(),
    Fault.content("I think this is fine."),
    Fault.content("unsafe"),
    Fault.content("unsafe\nS15"),
    Fault.content("Safe"),
    Fault.content("safe\nS1"),
    Fault.content(""),
    Fault.content(None),
    Fault.content("uns", finish_reason="length"),
    Fault.reply({"id": "x", "object": "chat.completion", "choices": []}),
]


@pytest.mark.parametrize("n", range(max(len(MALFORMED_MODERATION), len(MALFORMED_GUARD))))
def test_a_malformed_reply_fails_closed_without_retrying(backend, n):
    kind, fake = backend
    faults = MALFORMED_MODERATION if kind == "openai-moderation" else MALFORMED_GUARD
    if n >= len(faults):
        pytest.skip("fewer malformed cases for this backend")
    fake.script(faults[n])
    assert "malformed" in str(unavailable(make(kind, fake).score, "hello"))
    assert len(fake.requests) == 1


def test_a_service_that_stays_down_fails_closed_after_the_bounded_attempts(backend):
    kind, fake = backend
    fake.down = True
    assert "after 3 attempts (last: HTTP 503)" in str(unavailable(make(kind, fake, attempts=3).score, "hello"))
    assert len(fake.requests) == 3


def test_nothing_listening_fails_closed(backend):
    kind, _ = backend
    with FakeModeration() as gone:
        url = gone.base_url
    s = (OpenAIModerationScorer(KEY, base_url=url, attempts=2, timeout=0.5, backoff=0.01) if kind == "openai-moderation"
         else GuardModelScorer(url, "g", KEY, attempts=2, timeout=0.5, backoff=0.01))
    assert "after 2 attempts" in str(unavailable(s.score, "hello"))


def test_a_wrong_key_fails_closed_at_once_and_names_the_variable(backend):
    kind, fake = backend
    err = unavailable(make(kind, fake, key="wrong-" + KEY).score, "hello")
    var = "OPENAI_API_KEY" if kind == "openai-moderation" else "CPO_GUARD_API_KEY"
    assert "401" in str(err) and var in str(err)
    assert len(fake.requests) == 1 and not fake.requests[0].key_ok


def test_the_rate_limit_spaces_requests(backend):
    kind, fake = backend
    s = make(kind, fake)
    s._limiter.__init__(2, 0.4)  # 2 requests per 0.4 s, for the test
    for text in "abcde":
        s.score(text)
    at = [r.at for r in fake.requests]
    assert len(at) == 5 and at[-1] - at[0] >= 0.6  # 0.8 s by the limiter, less the first connection set-up
    assert all(at[i + 2] - at[i] >= 0.35 for i in range(3))


def test_make_harm_scorer_reads_the_environment(backend, monkeypatch):
    kind, fake = backend
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CPO_MODERATION_MODEL", "CPO_GUARD_BASE_URL",
                "CPO_GUARD_MODEL", "CPO_GUARD_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(InputError, match="OPENAI_API_KEY" if kind == "openai-moderation" else "CPO_GUARD_BASE_URL"):
        make_harm_scorer(kind)
    if kind == "openai-moderation":
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("CPO_MODERATION_MODEL", "text-moderation-stable")
    else:
        monkeypatch.setenv("CPO_GUARD_BASE_URL", fake.base_url)
        monkeypatch.setenv("CPO_GUARD_MODEL", "meta-llama/Llama-Guard-3-8B")
        monkeypatch.setenv("CPO_GUARD_API_KEY", KEY)
    s = make_harm_scorer(kind)
    assert s.score("I will kill you")["violence"] >= 6
    assert fake.requests[-1].body["model"] in ("text-moderation-stable", "meta-llama/Llama-Guard-3-8B")


def test_parse_verdict_is_strict():
    assert parse_verdict("safe") == [] and parse_verdict("  safe\n") == []
    assert parse_verdict("unsafe\nS1,S10") == ["S1", "S10"] and parse_verdict("unsafe\n S11 ") == ["S11"]
    for bad in ["unsafe", "unsafe\nS0", "unsafe\nS1\nS2", "SAFE", "safe.", "unsafe\nS1, violence", "", "unsafe S1"]:
        with pytest.raises(ValueError):
            parse_verdict(bad)


def test_moderation_mapping_steps():
    def one(score, flagged=False, name="violence"):
        r = moderation_result("")
        r["category_scores"][name], r["categories"][name] = score, flagged
        return parse_moderation({"results": [r]}, 1)[0]
    assert one(0.01)["violence"] == 0 and one(0.1)["violence"] == 2 and one(0.3)["violence"] == 4
    assert one(0.6)["violence"] == 6 and one(0.95)["violence"] == 7
    assert one(0.3, flagged=True)["violence"] == 6  # OpenAI's own flag blocks
    assert one(0.3, flagged=True, name="sexual/minors")["sexual"] == 7
    assert set(CATEGORIES) >= {"hate", "self-harm", "sexual", "violence"}
