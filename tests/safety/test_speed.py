"""The fast paths of screening (issue 14) give what the plain computations give.

Each test compares a fast path with the straightforward computation it replaced (written out here), on the
evaluation sentences and on random strings built to hit the edge cases; the last one pins whole verdicts on
the benchmark's inputs to what they were before the speed work (commit 95712fb).
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import sys
import unicodedata
from pathlib import Path

import pytest

from tasks.safety import LocalHarmScorer, Screener
from tasks.safety import classifier, harm, normalize, rules
from tasks.safety.rules import Message

ROOT = Path(__file__).resolve().parents[2]
EVAL = [json.loads(line)["text"] for line in open(ROOT / "tests/data/screening_eval.jsonl", encoding="utf-8")]


def test_number_units_read_as_the_lower_cased_text_after_the_number():
    def reference(text):
        found = []
        for mt in rules.NUMBER.finditer(text):
            raw, after = mt.group(0), text[mt.end():mt.end() + 12].lower()
            unit = "%" if raw.endswith("%") or re.match(r"\s?(?:percent|per cent)\b", after) else \
                "$" if raw.startswith("$") or re.match(r"\s?dollars?\b", after) else ""
            found.append((raw, rules._norm(raw), unit))
        return found

    rng = random.Random(1)
    alpha = list("0123456789$%,. -pPeErRcCnNtTdDoOlLaAsS\n_xé\u0130\u212a\u017f") + [
        "percent", " per cent", " dollars", " Dollar", "PERCENT", "\u00a0"]
    for _ in range(20_000):
        t = "".join(rng.choice(alpha) for _ in range(rng.randint(1, 30)))
        assert rules._numbers(t) == reference(t), t
        assert rules._number_kinds(t) == set(reference(t)), t
    # the letter classes: only "P" lower-cases to (something starting with) "p", and so on; \s and \w unchanged
    letters = set("percntdolas")
    for code in range(sys.maxunicode + 1):
        c = chr(code)
        low = c.lower()
        assert c in "PERCNTDOLAS" or c == low or not letters & set(low), hex(code)
        assert bool(re.match(r"\w", c)) == bool(re.match(r"\w", low[0])) and (low[0] != " " or c == " "), hex(code)


def test_fast_counts_are_the_vectorizers_count_matrix():
    from sklearn.feature_extraction.text import CountVectorizer

    model = classifier._artefact()
    counter = classifier._counter(id(model))
    assert counter is not None
    parts = [p for text in EVAL[:400] for p in classifier.chunks(text)]
    want, got = CountVectorizer.transform(model["vectorizer"], parts), counter.transform(parts)
    for attr in ("indptr", "indices", "data"):
        assert (getattr(want, attr) == getattr(got, attr)).all() and getattr(want, attr).dtype == getattr(got, attr).dtype
    x, y = model["vectorizer"].transform(parts), classifier.features(model, parts)
    for lr in model["models"].values():
        assert (lr.predict_proba(x) == lr.predict_proba(y)).all()  # bit for bit


def test_candidates_are_the_patterns_whose_literal_sets_all_occur():
    lex = harm.LEXICON

    def reference(segment):
        pats, idioms = set(lex.always), set(lex.always_idioms)
        for owner in lex.slot:
            kind, i, b, k = owner
            sets = (lex.patterns[i].branches[b][1] if kind == "p" else lex.idiom_anchors[i])[k]
            if all(any(lit in segment for lit in lits) for lits in sets):
                pats.add((i, b)) if kind == "p" else idioms.add(i)
        return sorted(pats), sorted(idioms)

    for text in EVAL[:500]:
        for sentence, _ in harm.prepare(text).sentences:
            for window in harm.windows(sentence):
                assert lex.candidates(window) == reference(window), window


def test_first_character_lookaheads_keep_every_match():
    rng = random.Random(9)
    pairs = [(re.compile(src, re.I), rx) for p in harm.LEXICON.patterns
             for (rx, _), src in zip(p.branches, harm.alternatives(p.rx.pattern))]
    assert sum(rx.pattern.startswith("(?=[") for _, rx in pairs) > 250  # most alternatives have one
    guard = re.compile(r"^\(\?=\[(?:\\.|[^\]\\])*\]\)")
    idioms = [(re.compile(guard.sub("", rx.pattern), re.I), rx) for _, rx in harm.LEXICON.idioms]
    assert all(guard.match(rx.pattern) for _, rx in idioms)
    pairs += idioms + [(re.compile(guard.sub("", c.pattern), c.flags), c) for g in (rules.ECHO, rules.PLACEHOLDER)
                       for c, _ in g.parts]
    words = sorted({w for _, rx in pairs for w in re.findall(r"[a-z']{2,}", rx.pattern)})
    odd = list(" .,!?'-\n_1") + ["\u017f", "\u212a", "\u0130", "\u0131", "\u00c9"]
    texts = [harm.fold(t) for t in EVAL[:300]]
    for _ in range(1500):
        t = " ".join(rng.choice(words) if rng.random() < .8 else rng.choice(odd) for _ in range(rng.randint(1, 12)))
        texts.append(t.upper() if rng.random() < .3 else t)
    for text in texts:
        for plain, guarded in pairs:
            assert [m.span() for m in plain.finditer(text)] == [m.span() for m in guarded.finditer(text)], \
                (guarded.pattern[:60], text)


def test_gated_searches_every_alternative_in_its_own_windows():
    import ahocorasick

    def reference(g, text):  # one automaton per alternative, as before
        if len(text.lower()) != len(text):
            return list(g.rx.finditer(text))
        found = []
        for alt in harm.alternatives(g.rx.pattern):
            compiled = re.compile(alt, g.rx.flags)
            literals = harm.necessary_literals(alt) if g.rx.flags & re.I or alt.islower() else None
            if literals is None:
                found += compiled.finditer(text)
                continue
            automaton = ahocorasick.Automaton()
            for conj in literals:
                for word in conj[0]:
                    automaton.add_word(word, len(word))
            automaton.make_automaton()
            spans = []
            for end, length in automaton.iter(text.lower()):
                a, b = max(0, end - length + 1 - g.reach), min(len(text), end + 1 + g.reach)
                if spans and a <= spans[-1][1]:
                    spans[-1][1] = max(spans[-1][1], b)
                else:
                    spans.append([a, b])
            for a, b in spans:
                found += compiled.finditer(text, a, b)
        return found

    key = lambda ms: [(m.start(), m.end()) for m in ms]  # noqa: E731
    gated = [rules.ECHO, rules.PLACEHOLDER, rules.PHISHING, rules.PHONE_BARE, rules.BIRTH_DATE,
             rules._claim_pattern("risk-free"), rules._claim_pattern("lowest price")]
    texts = EVAL[:600] + ["Here is the email you asked for. [Insert name] " * 40 + "x" * 600 + " call 5035551234",
                          "Dear [Name], verify your account. " + "hi " * 300 + "{{a}} TBD XX% lorem ipsum"]
    for text in texts:
        for g in gated:
            assert key(g.finditer(text)) == key(reference(g, text)), (g.pattern[:40], text[:80])


def test_contact_patterns_skip_only_text_without_their_digit_shape():
    rng = random.Random(4)
    alpha = list("0123456789 .-()+x\n") + ["call ", "on ", "+1 ", "555", "1234", "45", "\u0661", "\u0663"]
    texts = ["ssn 123-45-6789", "(503) 555-1234", "503.555.1234", "call 5035551234", "4111 1111 1111 1111",
             "4111-1111-1111-1111", "+44 20 7946 0958", "\u0661\u0662\u0663-45-6789"]
    texts += ["".join(rng.choice(alpha) for _ in range(rng.randint(1, 40))) for _ in range(20_000)]
    for t in texts:
        for rx in rules.CONTACTS.values():
            want = rx.matches(t) if isinstance(rx, rules.Gated) else list(rx.finditer(t))
            assert tuple(zip(*rules._spans(rx, t))) == tuple((m.start(), m.end(), m.group(0)) for m in want), t


def test_fold_steps_skipped_on_ascii_change_nothing_there():
    ascii_text = "".join(map(chr, range(128))) * 2
    assert unicodedata.normalize("NFKC", ascii_text) == ascii_text
    assert normalize.FORMAT.sub("", ascii_text) == ascii_text and not normalize.ANY_MARK.search(ascii_text)
    assert normalize._fold_homoglyphs(ascii_text) == ascii_text and not normalize.EMOJI_RX.search(ascii_text)
    assert ascii_text.translate(normalize.QUOTES) == ascii_text
    from tasks.safety.language import NON_LATIN
    assert not NON_LATIN.search(ascii_text)  # unsupported_language counts no non-Latin letter in ASCII text


def test_email_matches_are_the_sorted_non_overlapping_matches():
    rng = random.Random(3)
    alpha = list("ab.@-+_ 1\u00e9\n") + ["x" * 70, "@@", ".com", "a@b.c"]
    for _ in range(20_000):
        t = "".join(rng.choice(alpha) for _ in range(rng.randint(1, 60)))
        assert [m.span() for m in rules.EMAIL.matches(t)] == [m.span() for m in rules.Gated.matches(rules.EMAIL, t)]


# sha256 (first 16 hex digits) of each whole verdict on 20 KB of the benchmark's inputs, computed with the code
# of commit 95712fb (before the speed work)
FROZEN = {
    "marketing copy": "61b3b89194fb5959",
    "copy without sentence breaks": "209d7b454035e37c",
    '"1-" repeated': "ebdd16234f5abe65",
    '"unsubscribe " repeated': "3fea4f316a8510d0",
    "harm words repeated": "7194278cce7ddcb2",
    "digits and at-signs": "229d62fefcb86d57",
}


@pytest.mark.parametrize("name", list(FROZEN))
def test_benchmark_verdicts_are_those_before_the_speed_work(context, name):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import screening_speed

    text = screening_speed.inputs(20_000)[name]
    verdict = Screener(LocalHarmScorer(), context).screen(
        Message(subject="Trail news", body=text, citations=["promo-trail-twenty"]))
    digest = hashlib.sha256(json.dumps(verdict.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]
    assert digest == FROZEN[name]
