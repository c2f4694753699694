"""Screening time on 1 MB: the embedded scorer and every rule of the policy, on copy and on the inputs that
used to stall a run (issue 14: 100 KB of "1-" took 94 s, 240 KB of "unsubscribe " 112 s; later, 40 KB of "İ" and
blank lines 19.5 s, 80 KB of "{{" 25 s under some PYTHONHASHSEED, 1 MB of random harm words 7.8 s).

    .venv/bin/python benchmarks/screening_speed.py [--size BYTES] [--check SECONDS]

For each input: seconds for the whole verdict (Screener.screen: scorer + rules + policy, measured first, so
nothing of that text is cached), then the harm scorer alone and the rules alone (these two may reuse the
URL-free copy the verdict cached), and the whole verdict at a quarter of the size (time should grow
linearly: the ratio is printed). --check exits 1 when a whole verdict takes longer than SECONDS (default 2).
"""
from __future__ import annotations

import json
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config import load_settings  # noqa: E402
from tasks.content import load_documents  # noqa: E402
from tasks.safety import LocalHarmScorer, Screener, run_rules  # noqa: E402
from tasks.safety.rules import Context, Message  # noqa: E402


def copy_text(size: int, seed: int = 0, breaks: bool = True) -> str:
    """Sentences of random words from the sample's approved content: realistic vocabulary, no repeats."""
    docs = [json.loads(p.read_text())["content"] for p in sorted((ROOT / "data/sample/content").glob("*.json"))]
    words, rng, out, n = " ".join(docs).split(), random.Random(seed), [], 0
    while n < size:
        s = " ".join(rng.choice(words) for _ in range(rng.randint(5, 25))) + (". " if breaks else " ")
        out.append(s)
        n += len(s)
    return "".join(out)[:size]


def harm_words(size: int, seed: int = 0) -> str:
    """Random harm words, negations and targets with no sentence break: the scorer reads one long sentence in
    400-character windows, each full of matches (tasks/safety/harm.py)."""
    vocabulary = "kill you the shoot your him not don't we can't help hate jews sex girls".split()
    rng, out, n = random.Random(seed), [], 0
    while n < size:
        out.append(rng.choice(vocabulary))
        n += len(out[-1]) + 1
    return " ".join(out)[:size]


def inputs(size: int) -> dict[str, str]:
    return {
        "marketing copy": copy_text(size),
        "copy without sentence breaks": copy_text(size, breaks=False).replace(".", " "),
        '"1-" repeated': "1-" * (size // 2),
        '"unsubscribe " repeated': ("unsubscribe " * (size // 12 + 1))[:size],
        "harm words repeated": ("I will kill you and hang yourself " * (size // 34 + 1))[:size],
        "digits and at-signs": ("a@1.b-2 " * (size // 8 + 1))[:size],
        # a letter whose lower case is two characters, then blank lines (the line-start pattern of prompt_echo)
        '"\u0130" and blank lines': ("Visit \u0130stanbul with us!" + " \n" * size)[:size],
        '"{{" repeated': "{{" * (size // 2),  # placeholders opened, never closed
        "random harm words, no breaks": harm_words(size),
    }


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    size = int(argv[argv.index("--size") + 1]) if "--size" in argv else 1_000_000
    limit = float(argv[argv.index("--check") + 1]) if "--check" in argv else None
    _, policy, brand = load_settings()
    docs = {d.id: d for d in load_documents(ROOT / "data/sample/content")}
    ctx = Context(brand, policy, docs, date(2026, 11, 24), 60)
    scorer = LocalHarmScorer()
    screener = Screener(scorer, ctx)
    scorer.score("warm up: load the lexicon and the classifier artefact")
    print(f"{'input':<30} {'bytes':>9} {'scorer s':>9} {'rules s':>8} {'verdict s':>9} {'x4 ratio':>9}")
    worst = 0.0
    small = inputs(size // 4)
    for name, text in inputs(size).items():
        m = Message(subject="Trail news", body=text, citations=["promo-trail-twenty"])
        t_all = timed(lambda: screener.screen(m))  # first: nothing of this text is cached yet
        t_scorer = timed(lambda: scorer.score(m.text))
        t_rules = timed(lambda: run_rules(m, ctx))
        small_m = Message(subject="Trail news", body=small[name], citations=["promo-trail-twenty"])
        ratio = t_all / max(1e-6, timed(lambda: screener.screen(small_m)))
        worst = max(worst, t_all)
        print(f"{name:<30} {len(text.encode()):>9} {t_scorer:>9.2f} {t_rules:>8.2f} {t_all:>9.2f} {ratio:>9.1f}")
    print(f"slowest whole verdict: {worst:.2f} s")
    return 1 if limit is not None and worst > limit else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
