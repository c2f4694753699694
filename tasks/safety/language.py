"""Is a text in the language the embedded harm scorer was built for (English)?

The lexicon and the classifier read English; on text in another language they score 0 because they cannot
read it, not because it is harmless ("Te voy a matar" is a death threat). So such text is flagged by the
rule `unsupported_language` (block or warn, by policy) instead of passing silently. Backends that read many
languages (azure, openai-moderation, guard-model) declare it and the rule does not run for them.

Detection is deliberately simple, deterministic and linear: the share of letters in a non-Latin script,
then, per sentence of Latin-script text, function words of each language (config/screening/languages.yaml).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

import yaml

from config import CONFIG_DIR

PROFILES = CONFIG_DIR / "screening" / "languages.yaml"
WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
LETTER = re.compile(r"[^\W\d_]")
LATIN = re.compile(r"[a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")
NON_LATIN = re.compile(r"[^\W\d_a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")
SENTENCES = re.compile(r"(?<=[.!?;:])\s+|\n+")


@lru_cache(maxsize=1)
def profiles() -> dict:
    data = yaml.safe_load(PROFILES.read_text("utf-8"))
    index: dict[str, list[str]] = {}
    for lang, words in data["stopwords"].items():
        for w in words:
            index.setdefault(str(w).lower(), []).append(lang)
    data["index"] = index
    data["foreign"] = frozenset(w for w, langs in index.items() if langs != ["en"])
    phrases = sorted((str(x).lower() for x in data.get("phrases", [])), key=len, reverse=True)
    data["phrases_rx"] = re.compile(r"(?<![^\W\d_])(?:" + "|".join(map(re.escape, phrases)) + r")(?![^\W\d_])") \
        if phrases else None
    data["loanwords"] = frozenset(str(w).lower() for w in data.get("loanwords", []))
    return data


# Latin letters with a diacritic English does not write (and no English word needs): what marks a sentence as
# another language when no profile names it
DIACRITIC = re.compile(r"[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")


def _diacritic_language(lower: str, p: dict) -> bool:
    rule = p.get("diacritics")
    if not rule or lower.isascii() or not DIACRITIC.search(lower):
        return False
    need = rule["min_words"] - 1  # spaces a sentence of min_words words has at least
    for sentence in SENTENCES.split(lower):
        if sentence.count(" ") < need or not DIACRITIC.search(sentence):
            continue  # counted in C: a flood of one-word lines ("é\n" x 500,000) costs little
        words = WORDS.findall(sentence)
        marked = [w for w in words if DIACRITIC.search(w) and w not in p["loanwords"]]
        if (len(words) >= rule["min_words"] and len(marked) >= rule["min_words_with"]
                and len(marked) >= rule["min_share"] * len(words)):
            return True
    return False


def unsupported_language(text: str) -> str | None:
    """None when the text reads as English (or has too little text to tell); else what it is written in."""
    p = profiles()
    other = 0 if text.isascii() else len(NON_LATIN.findall(text))  # no ASCII character is non-Latin
    if other >= p["scripts"]["min_letters"] and other >= p["scripts"]["min_share"] * len(LETTER.findall(text)):
        return f"{_script(NON_LATIN.findall(text, 0, 20_000))} script"
    if other >= p["scripts"]["min_letters"]:  # a sentence in another script inside English text
        for sentence in SENTENCES.split(text):
            n = len(NON_LATIN.findall(sentence))
            if n >= p["scripts"]["min_letters"] and n >= 0.5 * len(LETTER.findall(sentence)):
                return f"{_script(NON_LATIN.findall(sentence))} script"
    lower = text.lower()
    if p["phrases_rx"] is not None and p["phrases_rx"].search(lower):
        lower = p["phrases_rx"].sub(" ", lower)  # "c'est la vie" in English copy is English copy
    present = set(_words(lower)) & p["foreign"]
    if not present and not any(c in lower for chars in p["hints"].values() for c in chars):
        # not one word of a language it knows: only letters English does not write can still say it is another
        return "another language (Latin script)" if _diacritic_language(lower, p) else None
    for sentence in _sentences_with(lower, present, p["sentence"]["min_hits"]):
        lang = _sentence_language(sentence, p)
        if lang:
            return p["names"].get(lang, lang)
    return "another language (Latin script)" if _diacritic_language(lower, p) else None


def _sentences_with(lower: str, words: set[str], at_least: int):
    """The sentences holding at least `at_least` of `words` (or a hint character), found in one pass."""
    if not words:
        yield from SENTENCES.split(lower)
        return
    cuts = [0] + [m.end() for m in SENTENCES.finditer(lower)] + [len(lower) + 1]
    hits: dict[int, int] = {}
    rx = re.compile(r"(?<![^\W\d_])(?:" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")(?![^\W\d_'])")
    import bisect
    for m in rx.finditer(lower):
        i = bisect.bisect_right(cuts, m.start()) - 1
        hits[i] = hits.get(i, 0) + 1
    for i, n in sorted(hits.items()):
        if n >= at_least - 1:  # a hint character may count as the last one
            yield lower[cuts[i]:cuts[i + 1]]


@lru_cache(maxsize=4)
def _words(lower: str) -> list[str]:
    """The words of lower-cased text (a text that is one long sentence is read once, not twice)."""
    return WORDS.findall(lower)


def _sentence_language(sentence: str, p: dict) -> str | None:
    words = _words(sentence.lower())
    rule = p["sentence"]
    if len(words) < rule["min_words"]:
        return None
    hits: dict[str, int] = {}
    for w, n in Counter(words).items():  # each distinct word looked up once
        for lang in p["index"].get(w, ()):
            hits[lang] = hits.get(lang, 0) + n
    for lang, chars in p["hints"].items():
        if any(c in sentence for c in chars):
            hits[lang] = hits.get(lang, 0) + 1
    english = hits.pop("en", 0)
    if not hits:
        return None
    lang, best = max(hits.items(), key=lambda kv: kv[1])
    strong = best >= rule["strong_hits"] and best >= rule["strong_share"] * len(words)
    weak = best >= rule["min_hits"] and best >= rule["min_share"] * len(words)
    return lang if (strong or weak) and best > english else None


def _script(chars: list[str]) -> str:
    counts: dict[str, int] = {}
    for c in chars[:2000]:
        name = unicodedata.name(c, "UNKNOWN").split()[0]
        counts[name] = counts.get(name, 0) + 1
    script = max(counts, key=counts.get)
    return {"CJK": "Chinese/Japanese (CJK)"}.get(script, script.title())
