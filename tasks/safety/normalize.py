"""Text as the embedded harm scorer reads it: the disguises people use to slip harm past a word list undone.

    fold("I will k-i-l-l y0u")  ->  "i will kill you"

In order, each step one linear pass:
1. NFKC (full-width and styled letters become plain ones: "ｋｉｌｌ", "𝐤𝐢𝐥𝐥" -> "kill").
2. Invisible characters removed: every format character (Unicode category Cf: zero-width space, joiners,
   direction marks, soft hyphen, tag characters) and combining marks on Latin letters ("k̶i̶l̶l̶", zalgo).
3. Homoglyphs folded: Cyrillic and Greek letters drawn like Latin ones become Latin — in a word that mixes
   scripts, or everywhere when the text is mostly Latin (so "Я тебя убью" stays Russian for the language
   check, while "kіll" with a Cyrillic і becomes "kill").
4. Weapon and death emoji read as words ("🔪" -> " knife ", "💀" -> " dead ").
5. Lower case, straight quotes.
6. Spaced letters joined: three or more single letters separated by one space, dot, dash, underscore or
   asterisk ("k-i-l-l", "k i l l", "k.i.l.l") become one word; a wider gap separates words.
7. Leetspeak: in a word that has letters, digits and symbols standing for letters are read as letters
   ("k1ll", "h4te", "$ex", "d!e"); numbers alone ("20%", "$15") are left alone.
8. A letter repeated three or more times is read twice, or once for letters English never doubles
   ("kiiiilll" -> "kill", "diiie" -> "die"); whitespace collapsed.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l",
    "ɡ": "g", "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t",
    "У": "y", "Х": "x", "І": "i", "Ј": "j", "Ѕ": "s",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "Α": "a", "Β": "b", "Ε": "e", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p",
    "Τ": "t", "Υ": "y", "Χ": "x", "Ζ": "z",
    # Latin look-alikes outside ASCII
    "ı": "i", "ł": "l", "ø": "o", "ß": "ss", "đ": "d", "ħ": "h",
})
CONFUSABLE = set(k for k in map(chr, HOMOGLYPHS) if ord(k) > 127)
# Folded whatever the script around them: "İ" (whose lower case is "i" plus a combining dot), the micro sign read as
# "u" ("mµrder"), blanks drawn as nothing (braille blank, Hangul fillers), line and paragraph separators as spaces.
VARIANTS = str.maketrans({"İ": "I", "µ": "u", "μ": "u", "\u2800": "", "\u3164": "", "\u115f": "", "\u1160": "",
                          "\uffa0": "", "\u2028": " ", "\u2029": " "})
VARIANT_RX = re.compile("[\u0130\u00b5\u03bc\u2800\u3164\u115f\u1160\uffa0\u2028\u2029]")
EMOJI = {"🔪": "knife", "🗡": "knife", "⚔": "swords", "🔫": "gun", "💣": "bomb", "🧨": "explosive", "💀": "dead",
         "☠": "dead", "⚰": "coffin", "🪦": "grave", "🩸": "blood", "💉": "needle", "🔥": "fire", "🪓": "axe",
         "🏹": "bow", "🧟": "zombie", "🖕": "fuck you", "🍆": "penis", "🍑": "ass", "💦": "wet"}
EMOJI_RX = re.compile("[" + "".join(map(re.escape, EMOJI)) + "]")  # one code point each: a class scans fast
QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
                        "\u2013": "-", "\u2014": "-", "\u2212": "-"})
WORD = re.compile(r"\S+")
# three or more single letters joined by one separator character, the same all along ("k-i-l-l", "k i l l")
SPACED = re.compile(r"(?<![^\W\d_])[^\W\d_](?=( ?[.\-_*·/\\] ?| ))(?:\1[^\W\d_](?![^\W\d_])){2,}")
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
                      "!": "i", "|": "l", "+": "t", "€": "e", "¡": "i"})
LEET_CHARS = set("0134578@$!|+€¡")
MAX_WORD = 40
LEET_CHAR = re.compile(r"[0134578@$!|+€¡](?:(?<=[^\W\d_].)|(?=[^\W\d_]))")  # next to a letter
REPEAT = re.compile(r"([a-vyz])\1\1+")  # ASCII letters: a class the regex engine scans fast
SINGLE = set("aiuyhjkqvz")  # letters English never doubles: a run of them is one


# every format character (Unicode category Cf, Unicode 15): zero-width, joiners, direction marks, soft hyphen, tags
FORMAT = re.compile("[" + '\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f' + "]+")
VARIATION = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]+")  # variation selectors: they change no letter
# combining marks on an ASCII letter ("k̶i̶l̶l̶", zalgo, "kíll" once decomposed); accents of real words in other
# scripts stay
MARK_CLASS = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
# an accented Latin letter inside an otherwise plain ASCII word ("kíll", "hàng"): the accent is read as a disguise
ACCENTED_IN_ASCII = re.compile(r"(?<![^\W\d_])(?:[A-Za-z]+[\u00c0-\u024f][A-Za-z]*|[\u00c0-\u024f][A-Za-z]+)(?![^\W\d_])")
MARKS = re.compile(rf"(?<=[A-Za-z]){MARK_CLASS}+")
ANY_MARK = re.compile(MARK_CLASS)
CONFUSABLE_RX = re.compile(f"[{''.join(sorted(CONFUSABLE))}]")
LATIN_LETTER = re.compile(r"[A-Za-z]")
ANY_LETTER = re.compile(r"[^\W\d_]")


def _fold_homoglyphs(text: str) -> str:
    if not CONFUSABLE_RX.search(text):
        return text
    if len(LATIN_LETTER.findall(text)) >= len(ANY_LETTER.findall(text)) / 2:
        return text.translate(HOMOGLYPHS)
    # mostly another script: fold only words that mix Latin letters with look-alikes
    def word(m: re.Match) -> str:
        w = m.group(0)
        return w.translate(HOMOGLYPHS) if LATIN_LETTER.search(w) else w
    return WORD.sub(word, text)


def _join_spaced(m: re.Match) -> str:
    return m.group(0).replace(m.group(1), "")


SPACED_HINT = re.compile(r"[ .\-_*·/\\][^\W\d_]( ?[.\-_*·/\\] ?| )[^\W\d_]\1[^\W\d_](?![^\W\d_])")


def _spaced_words(text: str) -> str:
    """"K I L L   Y O U R S E L F": a gap of two or more spaces between spaced letters separates words."""
    if not SPACED_HINT.search(" " + text):  # a fast scan first: most text has no spaced letters at all
        return text
    if "  " in text:  # the gap it marks is two or more spaces
        text = re.sub(r"(?<=\b[^\W\d_]) {2,}(?=[^\W\d_]\b)", " \x00 ", text)
    text = SPACED.sub(_join_spaced, text)
    return text.replace(" \x00 ", " ").replace("\x00", " ")


# a word (a run of non-space characters) holding a leet character next to a letter: found by one C-level scan
# (the lazy run stops at the first such character, so each word is read once: linear)
LEET_WORD = re.compile(r"(?<!\S)\S*?(?:(?<=[^\W\d_])[0134578@$!|+€¡]|[0134578@$!|+€¡](?=[^\W\d_]))\S*")


def _leet(text: str) -> str:
    """Only the words that hold a leet character next to a letter are looked at; a word longer than MAX_WORD is
    read in pieces of MAX_WORD (no English word is that long). A word met again is not read again."""
    if not LEET_CHAR.search(text):
        return text
    seen: dict[str, str] = {}

    def word(m: re.Match) -> str:
        w = m.group(0)
        out = seen.get(w)
        if out is None:
            out = _leet_word(w) if len(w) <= MAX_WORD else "".join(
                _leet_word(w[i:i + MAX_WORD]) for i in range(0, len(w), MAX_WORD))
            if len(seen) < 100_000:
                seen[w] = out
        return out
    return LEET_WORD.sub(word, text)


def _leet_word(w: str) -> str:
    if not any(c in LEET_CHARS for c in w):
        return w
    core = w.strip(".,;:!?\"'()[]{}")
    if "11" in core:  # "ki11", "a11": a pair of ones after letters is a double l
        core = re.sub(r"(?<=[a-z])11", "ll", core)
    letters = sum(c.isalpha() for c in core)
    if letters == 0 or re.fullmatch(r"[$€]?\d[\d.,]*%?|\d+(?:st|nd|rd|th|am|pm|k|x|s|m|h|d|yo)|[a-z]+\d+|\d+[a-z]+\d*", core):
        return w  # a number, a price, "3pm", "k2", "s3": not a disguised word
    lead = w[:len(w) - len(w.lstrip(".,;:!?\"'()[]{}"))]
    trail = w[len(w.rstrip(".,;:!?\"'()[]{}")):]
    return lead + core.translate(LEET) + trail


# a capital I after small letters in one word stands for an l ("kiII", "kilI"): no English word is written so
CAPITAL_I_AS_L = re.compile(r"(?<=[a-z])I+(?![A-Z])")
YOURSELF = re.compile(r"\b(?:your|ur|yo|ya) ?se[li1|]f\b")  # "your self", "ur self", "urself", "yourse1f"


def _plain_word(m: re.Match) -> str:
    return _plain(m.group(0))


@lru_cache(maxsize=65536)  # a word met again is not read again
def _plain(w: str) -> str:
    """A word of ASCII letters and one accented Latin letter ("kíll") read without the accent."""
    if sum(not c.isascii() for c in w) != 1:
        return w  # "décès", "Ærøskøbing": a word of another language keeps its letters
    return "".join(c for c in unicodedata.normalize("NFD", w) if not unicodedata.combining(c))


def fold(text: str) -> str:
    if not text.isascii():  # steps 1-4 and the quotes change only characters outside ASCII
        if VARIANT_RX.search(text):
            text = text.translate(VARIANTS)
        text = unicodedata.normalize("NFKC", text)
        text = FORMAT.sub("", text)
        text = VARIATION.sub("", text)
        text = ACCENTED_IN_ASCII.sub(_plain_word, text)
        if ANY_MARK.search(text):
            text = MARKS.sub("", text)
        text = _fold_homoglyphs(text)
        text = EMOJI_RX.sub(lambda m: f" {EMOJI[m.group(0)]} ", text)
        text = text.translate(QUOTES)
    if CAPITAL_I_AS_L.search(text):
        text = CAPITAL_I_AS_L.sub(lambda m: "l" * len(m.group(0)), text)
    text = text.lower()
    text = _spaced_words(text)
    if "se" in text:
        text = YOURSELF.sub("yourself", text)
    text = _leet(text)
    text = REPEAT.sub(lambda m: m.group(1) if m.group(1) in SINGLE else m.group(1) * 2, text)
    return re.sub(r"[ \t]{2,}|\t", " ", text) if "\t" in text or "  " in text else text
