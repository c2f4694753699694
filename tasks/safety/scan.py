"""Searching long text in linear time with few passes: a regular expression searched only around the literals
every match of it must contain.

    EMAIL = Gated(re.compile(r"...@..."))     # searched only near an "@"
    EMAIL.findall(text); EMAIL.sub(" ", text); EMAIL.search(text)

Each top-level alternative of the pattern gets its own literal set (tasks/safety/harm.py:necessary_literals);
one Aho-Corasick pass over the text finds where they occur, and the alternative runs only on windows of
`reach` characters around those places. Exact for patterns whose matches are shorter than `reach` (a match
contains a necessary literal, so it lies inside that literal's window); an alternative without derivable
literals runs on the whole text.

Two shapes of alternative would still take quadratic time inside a window, one that has no end of "{{" or of
blank lines: a lazy span "\\{\\{.*?\\}\\}" (each "{{" reads to the end of its line when no "}}" closes it) and
a line start "^\\s*subject:" under re.M (each start of a blank line reads the whole run of blank lines). They are
found by a scan that reads each character a bounded number of times (`_lazy_spans`, `_line_starts`); the
regular expression then only confirms each match, from where it starts, so the matches are its own.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache


class Gated:
    def __init__(self, rx: re.Pattern, reach: int = 256):
        import ahocorasick

        from tasks.safety.harm import alternatives, first_char_guard, necessary_literals

        self.rx, self.reach, self.parts = rx, reach, []
        self.finders: dict[int, Callable[[str, int, int], Iterator[re.Match]]] = {}  # part -> its linear scan
        owners: dict[str, list[int]] = {}  # literal -> the alternatives (parts) it gates
        for alt in alternatives(rx.pattern):
            compiled = re.compile(first_char_guard(alt, None, rx.flags) + alt, rx.flags)  # same matches, faster
            literals = necessary_literals(alt) if rx.flags & re.I or alt.islower() else None
            if (finder := _finder(alt, compiled)) is not None:
                self.finders[len(self.parts)] = finder
            self.parts.append((compiled, literals is not None))
            for conj in literals or ():
                for word in conj[0]:  # the rarest set of each sub-alternative
                    if len(self.parts) - 1 not in owners.setdefault(word, []):
                        owners[word].append(len(self.parts) - 1)
        # one automaton for every alternative: the text is read once, each hit goes to the alternatives it gates
        self.automaton = ahocorasick.Automaton()
        for word, parts in owners.items():
            self.automaton.add_word(word, tuple((k, len(word) - 1 + reach) for k in parts))
        if owners:
            self.automaton.make_automaton()

    def _windows(self, text: str) -> list[list[list[int]]]:
        """Per alternative, the windows of `reach` characters around each of its literals' hits, merged as the
        automaton finds them (text of a million hits: one pass, no list of hits)."""
        spans: list[list[list[int]]] = [[] for _ in self.parts]
        if any(gated for _, gated in self.parts):
            for end, owners in self.automaton.iter(lower_in_place(text)):
                for k, before in owners:  # before: the literal's length - 1 + reach
                    a, b, windows = end - before, end + 1 + self.reach, spans[k]
                    if windows and a <= windows[-1][1]:
                        windows[-1][1] = max(windows[-1][1], b)
                    else:
                        windows.append([max(0, a), b])
        return spans

    def finditer(self, text: str) -> Iterator[re.Match]:
        spans = self._windows(text)
        for k, (compiled, gated) in enumerate(self.parts):
            search = self.finders.get(k, compiled.finditer)
            if not gated:
                yield from search(text, 0, len(text))
                continue
            for a, b in spans[k]:
                yield from search(text, a, min(b, len(text)))

    def matches(self, text: str) -> list[re.Match]:
        """Non-overlapping matches, leftmost first (as one alternation would find them)."""
        out, last = [], -1
        for m in sorted(self.finditer(text), key=lambda m: (m.start(), -m.end())):
            if m.start() >= last:
                out.append(m)
                last = m.end() if m.end() > m.start() else m.start() + 1
        return out

    def search(self, text: str) -> re.Match | None:
        found = self.matches(text)
        return found[0] if found else None

    def findall(self, text: str) -> list[str]:
        return [m.group(1) if self.rx.groups else m.group(0) for m in self.matches(text)]

    def sub(self, repl: str | Callable[[re.Match], str], text: str) -> str:
        out, last = [], 0
        for m in self.matches(text):
            out += [text[last:m.start()], repl(m) if callable(repl) else repl]
            last = m.end()
        return "".join(out) + text[last:] if out else text

    @property
    def pattern(self) -> str:
        return self.rx.pattern


# the letters whose lower case is longer than one character (only "İ", U+0130: "i" + a combining dot above;
# checked over Unicode by tests/safety/test_speed.py), each to its one-character lower case, the one the
# regular expression engine compares under re.I: the lower-cased text keeps every position of the text
ONE_TO_ONE = str.maketrans({"\u0130": "i"})


@lru_cache(maxsize=4)
def lower_in_place(text: str) -> str:
    """`text.lower()` with every character at its own position (what the literal search reads); kept for the
    next pattern that searches the same text (one per claim term)."""
    lower = text.lower()
    return lower if len(lower) == len(text) else text.translate(ONE_TO_ONE).lower()


# "OPEN.*?CLOSE" where OPEN and CLOSE are runs of symbols, plain or escaped ("\\{\\{.*?\\}\\}")
SYMBOLS = r"((?:\\[^\w\s]|[^\w\s\\.*+?()\[\]{}|^$])+)"
LAZY_SPAN = re.compile(SYMBOLS + r"\.\*\?" + SYMBOLS)


def _finder(alt: str, compiled: re.Pattern) -> Callable[[str, int, int], Iterator[re.Match]] | None:
    """A linear scan for an alternative whose regular expression would take quadratic time (module docstring),
    or None."""
    if (m := LAZY_SPAN.fullmatch(alt)) and not compiled.flags & re.S:
        opener, closer = (re.sub(r"\\(.)", r"\1", g) for g in m.groups())  # symbols only: no case to fold
        return lambda text, a, b: _lazy_spans(compiled, opener, closer, text, a, b)
    if alt.startswith(r"^\s*") and compiled.flags & re.M:
        probe = re.compile(r"^[^\S\n]*" + alt[len(r"^\s*"):], compiled.flags)  # the line holding the rest
        return lambda text, a, b: _line_starts(compiled, probe, text, a, b)
    return None


def _lazy_spans(compiled: re.Pattern, opener: str, closer: str, text: str, a: int, b: int) -> Iterator[re.Match]:
    """The matches of `opener.*?closer` in text[a:b], as `compiled.finditer(text, a, b)` finds them: a match starts
    at the first opener with a closer after it before the line ends. The next closer and the next line end are
    found once and kept while they lie ahead, so the text is read a few times, not once per opener."""
    pos, close, eol = a, -1, -1
    while (start := text.find(opener, pos, b)) >= 0:
        if close < start + len(opener):
            if (close := text.find(closer, start + len(opener), b)) < 0:
                return  # no closer after this opener, nor after any later one
        if eol < start:
            eol = text.find("\n", start, b)
            eol = b if eol < 0 else eol
        if eol < close:  # the line ends first: no opener on it up to there has a closer on its line
            pos = eol + 1
            continue
        if (m := compiled.match(text, start, b)) is None:  # not expected: the scan and the pattern agree
            pos = start + 1
            continue
        yield m
        pos = m.end()


def _line_starts(compiled: re.Pattern, probe: re.Pattern, text: str, a: int, b: int) -> Iterator[re.Match]:
    """The matches of "^\\s*rest" (re.M) in text[a:b], as `compiled.finditer(text, a, b)` finds them. `probe`
    ("^[^\\S\\n]*rest") finds the line that holds the rest, reading each line start's own spaces only; the match
    begins at the first line start of the whitespace before it (blank lines included), where `compiled` then
    matches once."""
    pos = a
    for line in probe.finditer(text, a, b):
        if line.start() < pos:
            continue
        gap = text[pos:line.start()]
        start = line.start() - (len(gap) - len(gap.rstrip()))  # the whitespace before the line, from pos on
        if start > 0 and text[start - 1] != "\n":  # after a non-space: the first line start in the whitespace
            start = text.index("\n", start, line.start() + 1) + 1
        if (m := compiled.match(text, start, b)) is None:  # not expected: the probe and the pattern agree
            continue
        yield m
        pos = m.end()


class AtAnchored(Gated):
    """An e-mail address pattern searched from each "@": the local part is walked back at most `local`
    characters, then the pattern is matched once from there. Linear even when the text is all "@"s."""

    def __init__(self, rx: re.Pattern, local: int = 64, domain: int = 256):
        self.rx, self.reach, self.parts, self.local, self.domain = rx, domain, [], local, domain

    def matches(self, text: str) -> list[re.Match]:
        return list(self.finditer(text))  # already leftmost first and non-overlapping: nothing to sort

    def finditer(self, text: str) -> Iterator[re.Match]:
        last = 0
        for at in re.finditer("@", text):
            i = at.start()
            if i < last:
                continue
            j, lo = i, max(last, i - self.local)
            while j > lo and (text[j - 1].isalnum() or text[j - 1] in "._+-"):
                j -= 1
            while j < i:  # the pattern starts at a word character: skip leading dots, pluses and dashes
                m = self.rx.match(text, j, min(len(text), i + self.domain))
                if m:
                    yield m
                    last = m.end()
                    break
                j += 1
                while j < i and not text[j].isalnum() and text[j] != "_":
                    j += 1
