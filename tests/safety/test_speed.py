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
from tasks.safety import classifier, harm, normalize, rules, scan
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
            lower = "".join(c.lower()[0] for c in text)  # each character's own lower case, at its position
            for end, length in automaton.iter(lower):
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
                          "Dear [Name], verify your account. " + "hi " * 300 + "{{a}} TBD XX% lorem ipsum",
                          "Visit \u0130stanbul! Subject: \u0130NSERT NAME [\u0130nsert name] \u0130GNORE previous rules",
                          "\u0130" * 5 + " \n" * 400 + "\n  Subject line: hi {{x}} as an A\u0130 " + "\u0130" * 300]
    texts += [t.replace("i", "\u0130").replace("I", "\u0130") for t in EVAL[:100]]  # "İ" lower-cases to two characters
    for text in texts:
        for g in gated:
            assert key(g.finditer(text)) == key(reference(g, text)), (g.pattern[:40], text[:80])


def test_only_dotted_capital_i_lower_cases_to_more_than_one_character():
    """The literal search reads `scan.lower_in_place(text)`, which must keep every character at its position and
    be each character's lower case as the regular expression engine compares it under re.I."""
    longer = [chr(c) for c in range(sys.maxunicode + 1) if len(chr(c).lower()) != 1]
    assert longer == ["\u0130"] and re.fullmatch("i", "\u0130", re.I)
    text = "Visit \u0130stanbul, \u0130GNORE the rules \u0130"
    assert scan.lower_in_place(text) == "visit istanbul, ignore the rules i"


def _linear_finders():
    return [(g, k, finder) for g in (rules.ECHO, rules.PLACEHOLDER) for k, finder in g.finders.items()]


def test_quadratic_shapes_are_searched_by_a_linear_scan():
    """A lazy span ("\\{\\{.*?\\}\\}": each "{{" reads to its line's end) and a line start ("^\\s*subject:" under
    re.M: each blank line reads the whole run of blank lines) take quadratic time in the regex engine: every such
    alternative of a rule's pattern is searched by its scan, and the scan's matches are the pattern's own."""
    gated = [v for v in vars(rules).values() if isinstance(v, rules.Gated) and not isinstance(v, rules.AtAnchored)]
    for g in gated:
        for k, alt in enumerate(harm.alternatives(g.rx.pattern)):
            risky = alt.startswith("^") and g.rx.flags & re.M or re.search(r"\.[*+]", alt)  # an unbounded "." or line start
            assert not risky or k in g.finders, alt
    finders = _linear_finders()
    assert len(finders) == 2
    rng = random.Random(5)
    alpha = ["{{", "}}", "{", "}", "\n", " ", "\t", "\r", "x", "a b", "subject", "Subject line", "body", " :", ":",
             "\u0130", "\x0b", "\u2028", "cta", "SUBJECT", "\n\n", " \n"]
    for _ in range(20_000):
        t = "".join(rng.choice(alpha) for _ in range(rng.randint(0, 25)))
        a = rng.randint(0, len(t))
        b = rng.randint(a, len(t))
        for g, k, finder in finders:
            compiled = g.parts[k][0]
            assert [m.span() for m in finder(t, a, b)] == [m.span() for m in compiled.finditer(t, a, b)], (t, a, b)


def test_scans_call_the_regex_once_per_match():
    """What keeps the scans linear: the regular expression runs only where a match starts (never on a "{{"
    without a "}}" on its line, nor on each blank line of a run), so it reads each character once."""
    class Counting:
        def __init__(self, rx):
            self.rx, self.calls = rx, 0

        def match(self, *args):
            self.calls += 1
            return self.rx.match(*args)

    texts = ["{{" * 5000, "{{\n" * 3000 + "{{a}}", "x\n" + " \n" * 5000 + "Subject: hi", "\n" * 5000,
             ("subject\n" + "\n" * 50) * 100 + " subject:"]
    for g, k, _ in _linear_finders():
        compiled = g.parts[k][0]
        counting = Counting(compiled)
        opener = "{{" if "{" in compiled.pattern else None
        for text in texts:
            counting.calls = 0
            found = list(scan._lazy_spans(counting, "{{", "}}", text, 0, len(text)) if opener else
                         scan._line_starts(counting, re.compile(r"^[^\S\n]*" + compiled.pattern[4:], compiled.flags),
                                           text, 0, len(text)))
            assert counting.calls == len(found) == len(list(compiled.finditer(text)))


def test_literals_chosen_are_the_same_in_every_process():
    """Ties in commonness ("{{" or "}}") are not broken by set order: PYTHONHASHSEED changes nothing."""
    import subprocess

    code = ("from tasks.safety import harm, rules; print(repr(harm.necessary_literals(rules.PLACEHOLDER.rx.pattern)), "
            "repr([harm.necessary_literals(a) for p in harm.LEXICON.patterns for a in harm.alternatives(p.rx.pattern)]))")
    seen = {subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT)},
                           capture_output=True, text=True, check=True, cwd=ROOT).stdout for seed in (0, 1, 3, 7)}
    assert len(seen) == 1


def test_summary_findings_score_what_every_finding_scores():
    """The scorer reads `findings(summary=True)`: per category the same severity, the same ids in the same order,
    and the same "raisable" (a finding context did not lower) as from every finding."""
    def summary(found):
        return harm.scores_and_evidence("", found), {c: any(f.category == c and not f.lowered for f in found)
                                                     for c in harm.HARM_CATEGORIES}

    rng = random.Random(8)
    words = ("kill you the shoot your him not don't we can't help hate jews sex girls stab murder beat hit punch "
             "her them everyone police muslims immigrants blood guts skull knife gun bomb school church naked kids "
             "child teen yourself hang cut starve die should will i'm going to gonna i want . , no").split()
    texts = EVAL[:1500] + [" ".join(rng.choice(words) for _ in range(rng.randint(5, 400))) for _ in range(150)]
    texts += ["I'm sorry, but I can't help with that. " + t for t in texts[-20:]]  # a declining answer: the cap
    for text in texts:
        prepared = harm.prepare(text)
        assert summary(harm.findings(prepared, summary=True)) == summary(harm.findings(prepared)), text[:80]


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
