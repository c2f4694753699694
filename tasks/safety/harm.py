"""Embedded harm scorer: hate, self-harm, sexual and violence on Azure AI Content Safety's 0-7 scale.

The lexicon is data (config/screening/lexicon.yaml): every pattern has an id, a category and a severity
(2 Low, 4 Medium, 6 High, 7 Extreme), and verdicts cite the ids behind their scores. This module is the
engine that reads it. Scoring reads structure, not single words:

- violence: a harm verb needs a *person* target ("kill him", "stab the cashier", "shoot up the school");
  "kill two birds", "crush your goals", "attack the trail" have no person and score low. Past tense is a
  description (Medium).
- self-harm: encouragement addressed to the reader ("kill yourself", "starve yourself") is High or Extreme;
  first-person ideation Medium; prevention, recovery and research context Low.
- sexual: explicit acts, pornography, solicitation are High (anything sexual near a minor 7); suggestive
  words Medium.
- hate: a protected group with a dehumanizing predicate, a call to remove or hurt them, or supremacist
  language is High; stereotypes and exclusion Medium; discussion of discrimination Low.

Context lowers a match to Low: a negated clause ("so you don't hurt yourself"), a thing as subject ("this
hill will kill you"), meta speech ("it's a myth that ..."), a benefactive ("hang yourself a hammock"), and
a refusal ("I can't help you hurt yourself", tasks/safety/context.py). Marketing idioms ("killer deal",
"to die for") are removed before scoring.

Before scoring, the text is normalised (tasks/safety/normalize.py): NFKC, zero-width characters removed,
homoglyphs folded, leetspeak and spaced letters ("k-i-l-l") joined, weapon emoji read as words.

Linear time: text is cut into sentences, and sentences longer than WINDOW characters into overlapping
windows, so no pattern ever runs on more than WINDOW characters; a pattern runs on a window only when the
window contains one of the literals every match of the pattern must contain (computed from the pattern
itself, `necessary_literals`). Screening 1 MB takes well under 2 s (benchmarks/screening_speed.py).
"""
from __future__ import annotations

import hashlib
import re
import re._constants as sre
import re._parser as sre_parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple

import yaml

from config import CONFIG_DIR
from tasks.records import HARM_CATEGORIES
from tasks.safety.context import declines_a_request, refusal_split
from tasks.safety.normalize import fold

LEXICON_PATH = CONFIG_DIR / "screening" / "lexicon.yaml"
LOW, MEDIUM, HIGH, EXTREME = 2, 4, 6, 7
WINDOW, OVERLAP = 400, 160  # a match longer than OVERLAP characters may be cut by a window edge


class Finding(NamedTuple):
    pattern_id: str
    category: str
    severity: int
    text: str
    lowered: bool = False  # context (refusal, negation, a thing as subject, meta speech) lowered the pattern's severity


@dataclass
class Pattern:
    id: str
    category: str
    severity: int
    rx: re.Pattern
    negatable: bool = True   # a negated clause ("don't", "never", "no one") drops it to Low
    hyperbole: bool = False  # a thing as subject ("this hill will kill you") drops it to Low
    check: str | None = None  # a named condition (CHECKS) on (sentence, match, whole text)
    meta: bool = False       # meta speech ("it's a myth that ...") drops it to Low
    branches: tuple = ()  # (compiled alternative, its literal sets or None) per top-level alternative


# ---------------------------------------------------------------- the lexicon as data

def expand(template: str, vocabulary: dict[str, str]) -> str:
    return re.sub(r"\{([A-Z_]+)\}", lambda m: expand(vocabulary[m.group(1)], vocabulary), template)


class Lexicon:
    def __init__(self, path: Path = LEXICON_PATH):
        raw = path.read_bytes()
        data = yaml.safe_load(raw)
        self.path, self.version, self.sha256 = path, str(data["version"]), hashlib.sha256(raw).hexdigest()
        vocab = {name: v if isinstance(v, str) else "(?:" + "|".join(v) + ")" for name, v in data["vocabulary"].items()}
        vocab.update(data["context"])
        self.vocabulary = vocab
        self.context = {name: re.compile(expand(p, vocab), re.I) for name, p in data["context"].items()}
        self.words = {name: re.compile(rf"\b{expand('{' + name + '}', vocab)}\b", re.I) for name in ("WEAPON", "GROUP", "GORE")}
        idioms = [(i["id"], r"\b(?:" + expand(i["pattern"], vocab) + ")") for i in data["idioms"]]
        self.idioms = [(name, _guarded(source, re.I)) for name, source in idioms]
        self.idiom_anchors = [necessary_literals(source) for _, source in idioms]

        self.patterns = []
        for p in data["patterns"]:
            if p.get("check") and p["check"] not in CHECKS:
                raise ValueError(f"{path}: pattern {p['id']} names an unknown check {p['check']!r}")
            source = expand(p["pattern"], vocab)
            branches = tuple(_branch(b) for b in alternatives(source))
            self.patterns.append(Pattern(p["id"], p["category"], int(p["severity"]), re.compile(source, re.I),
                                         p.get("negatable", True), p.get("hyperbole", False), p.get("check"),
                                         p.get("meta", False), branches))
        ids = [p.id for p in self.patterns] + [i for i, _ in self.idioms]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{path}: pattern ids must be unique")
        # every alternative of every pattern is its own searcher, with its own necessary literals
        owners = [(("p", i, b, k), conj) for i, p in enumerate(self.patterns) for b, (_, alts) in enumerate(p.branches)
                  if alts for k, conj in enumerate(alts)]
        owners += [(("i", i, 0, k), conj) for i, alts in enumerate(self.idiom_anchors) if alts for k, conj in enumerate(alts)]
        self.always = [(i, b) for i, p in enumerate(self.patterns) for b, (_, sets) in enumerate(p.branches) if not sets]
        self.always_idioms = [i for i, a in enumerate(self.idiom_anchors) if a is None]
        self.needs = {owner: len(sets) for owner, sets in owners}
        # each owner's literal sets are consecutive bits of one integer, with a clear bit above them: adding 1 at
        # the lowest bit of every owner carries into that bit exactly when all of the owner's sets were met
        self.slot: dict[tuple, int] = {}
        self.ones = self.complete = 0
        self.owner_at: dict[int, tuple] = {}  # the bit above an owner's sets -> the owner
        bit = 0
        for owner, sets in owners:
            self.slot[owner] = bit
            self.ones |= 1 << bit
            self.complete |= 1 << (bit + len(sets))
            self.owner_at[bit + len(sets)] = owner
            bit += len(sets) + 1
        self.automaton = _automaton(owners, self.slot)

    def candidates(self, segment: str) -> tuple[list[tuple[int, int]], list[int]]:
        """(pattern, alternative) pairs and idioms that can match `segment`: one Aho-Corasick pass finds every
        necessary literal present (time linear in the segment); an alternative is a candidate when each of
        its literal sets has a string there."""
        met = 0  # a bit per (owner, literal set) met: the automaton's value for a literal is the bits it meets
        for _, bits in self.automaton.iter(segment):
            met |= bits
        pats, idioms = set(self.always), set(self.always_idioms)
        done = (met + self.ones) & self.complete if met else 0
        while done:
            low = done & -done
            owner = self.owner_at[low.bit_length() - 1]
            if owner[0] == "p":
                pats.add(owner[1:3])
            else:
                idioms.add(owner[1])
            done ^= low
        return sorted(pats), sorted(idioms)


def _guarded(source: str, flags: int) -> re.Pattern:
    """`source` compiled behind its first-character lookahead (the same matches: first_char_guard)."""
    return re.compile(first_char_guard(source, sre_parse.parse(source, flags), flags) + source, flags)


def _branch(source: str) -> tuple[re.Pattern, tuple | None]:
    """An alternative of a pattern, compiled behind its first-character lookahead, and its literal sets (the
    pattern parsed once for both)."""
    parsed = sre_parse.parse(source, re.I)
    return re.compile(first_char_guard(source, parsed) + source, re.I), necessary_literals(source, parsed)


def _automaton(entries, slot: dict[tuple, int]):
    import ahocorasick

    bits: dict[str, int] = {}
    for owner, sets in entries:
        for j, literals in enumerate(sets):
            for lit in literals:
                bits[lit] = bits.get(lit, 0) | 1 << (slot[owner] + j)
    automaton = ahocorasick.Automaton()
    for lit, value in bits.items():
        automaton.add_word(lit, value)
    automaton.make_automaton()
    return automaton


# ---------------------------------------------------------------- which literals every match must contain

def alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a pattern ("a|b" -> a, b; "\\b(?:a|b)" -> \\ba, \\bb): searched one by
    one, each only where its own literals are."""
    parts = _split_top(pattern)
    if len(parts) == 1:
        m = re.fullmatch(r"(\\b)?\(\?:(.*)\)", pattern, re.S)
        if m and _balanced(m.group(2)):
            inner = _split_top(m.group(2))
            if len(inner) > 1:
                return [(m.group(1) or "") + p for p in inner]
    return parts


def _balanced(s: str) -> bool:
    depth = 0
    for kind, _ in _tokens(s):
        depth += {"(": 1, ")": -1}.get(kind, 0)
        if depth < 0:
            return False
    return depth == 0


def _tokens(s: str):
    """("(", ")", "|" or "x", text) for the structural characters of a regular expression."""
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            yield "x", s[i:i + 2]
            i += 2
        elif c == "[":
            j = i + 1
            if j < len(s) and s[j] == "^":
                j += 1
            if j < len(s) and s[j] == "]":
                j += 1
            while j < len(s) and s[j] != "]":
                j += 2 if s[j] == "\\" else 1
            yield "x", s[i:j + 1]
            i = j + 1
        else:
            yield (c if c in "()|" else "x"), c
            i += 1


def _split_top(s: str) -> list[str]:
    parts, cur, depth = [], [], 0
    for kind, text in _tokens(s):
        if kind == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += {"(": 1, ")": -1}.get(kind, 0)
        cur.append(text)
    parts.append("".join(cur))
    return parts


def necessary_literals(pattern: str, parsed=None) -> tuple[tuple[tuple[str, ...], ...], ...] | None:
    """For each top-level alternative of `pattern`, sets of strings such that every match of that alternative
    contains at least one string of *each* set (all lower-cased); None when some alternative has none. A
    window is only searched by a pattern when, for one alternative, every set has a string in the window:
    exact (a skipped window cannot match), and what keeps screening fast, since most sentences hold none of
    the rarer literals."""
    parsed = [item for item in (parsed if parsed is not None else sre_parse.parse(pattern, re.I))
              if item[0] is not sre.AT]  # \b adds no literal
    branches = parsed[0][1][1] if len(parsed) == 1 and parsed[0][0] is sre.BRANCH else [parsed]
    out = []
    for branch in branches:
        # ties in commonness broken by the strings themselves, not by the set's order (which changes with
        # PYTHONHASHSEED): the same literals gate a pattern in every process
        sets = sorted({tuple(sorted(c)) for c in _necessary(branch) if all(x.strip(" '-") for x in c)},
                      key=lambda c: (_commonness(c), c))
        if not sets:
            return None
        rare = [c for c in sets if _commonness(c)[0] == 0]  # a set with a common word filters little, costs much
        out.append(tuple(rare[:MAX_SETS] or sets[:1]))
    return tuple(out)


MAX_SETS = 3


def first_char_guard(pattern: str, parsed=None, flags: int = re.I) -> str:
    """A lookahead "(?=[...])" naming every character a match of `pattern` can begin with, or "" when that set is
    not plain from the pattern. Zero-width and implied by the pattern, so the matches are the same; the regex
    engine rejects a position with one class test instead of trying each alternative of a long word list
    ("\\b(?:fight\\w*|punch\\w*|...)": half the scorer's time on 1 MB without sentence breaks). Under re.I the
    class and the literals it is made of match the same characters (the same case folding)."""
    parsed = parsed if parsed is not None else sre_parse.parse(pattern, flags)
    if parsed.state.flags != sre_parse.parse("x", flags).state.flags:
        return ""  # inline global flags ("(?x)..."): the pattern must start with them, so no prefix
    items: list[str] = []
    if not _first(list(parsed), items):
        return ""
    return "(?=[" + "".join(dict.fromkeys(items)) + "])"


def _first(seq, items: list[str]) -> bool:
    """Add to `items` the class items for the first character of every match of `seq`; False when unsure (a
    part that may match nothing, a flag change, an operator not handled)."""
    for op, av in seq:
        if op is sre.AT or op in (sre.ASSERT, sre.ASSERT_NOT):
            continue  # zero-width: the first character comes later
        if op is sre.LITERAL:
            items.append(_class_char(av))
            return True
        if op is sre.IN:
            for iop, iav in av:
                if iop is sre.LITERAL:
                    items.append(_class_char(iav))
                elif iop is sre.RANGE:
                    items.append(_class_char(iav[0]) + "-" + _class_char(iav[1]))
                else:
                    return False
            return True
        if op is sre.SUBPATTERN:
            return not av[1] and not av[2] and _first(av[3], items)
        if op is sre.BRANCH:
            return all(_first(b, items) for b in av[1])
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            return av[0] >= 1 and _first(av[2], items)
        if op is sre.ATOMIC_GROUP:
            return _first(av, items)
        return False
    return False  # nothing consumed: the sequence may match the empty string


def _class_char(code: int) -> str:
    c = chr(code)
    return "\\" + c if c in "\\]^-[&~|" else c  # escaped: no range, no nested-set operator


def _necessary(seq) -> list[set[str]]:
    """A conjunction of literal sets for a parsed sequence (every match meets each set)."""
    out, run = [], ""
    for op, av in seq:
        if op is sre.LITERAL:
            run += chr(av).lower()
            continue
        if run:
            out.append({run})
            run = ""
        if op is sre.SUBPATTERN:
            out += _necessary(av[3])
        elif op is sre.BRANCH:
            branches = [_best(_necessary(b)) for b in av[1]]
            if all(branches):
                out.append(set().union(*branches))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)) and av[0] >= 1:
            out += _necessary(av[2])
        elif op is sre.ATOMIC_GROUP:
            out += _necessary(av)
        elif op is sre.ASSERT and av[0] == 1:  # a positive lookahead must match too
            out += _necessary(av[1])
    if run:
        out.append({run})
    return out


def _best(sets: list[set[str]]) -> set[str] | None:
    sets = [c for c in sets if all(x.strip(" '-") for x in c)]
    return min(sets, key=_commonness) if sets else None


# the words most English sentences have: a pattern gated on one of them would run almost everywhere
COMMON = set("""the a an and or but to of in on at for with by from as is are was were be been being it its this that
these those he she they we you i me him her his hers them their theirs our us your my mine all any some no not do does
did have has had will would should can could may might must shall if so then than out up off over into get got go make
one just what who when where how there here very more most much""".split())


def _commonness(literals: set[str]) -> tuple:
    """How often a set of literals is met in ordinary text (lower is rarer): common words first, then length."""
    words = [s.strip(" '-") for s in literals]
    return (sum(w in COMMON or len(w) < 3 for w in words), -min(len(w) for w in words), len(literals))


# ---------------------------------------------------------------- context

def _ctx(name: str) -> re.Pattern:
    return LEXICON.context[name]


def _clause_before(sentence: str, start: int) -> str:
    head = sentence[max(0, start - 200):start]
    cuts = [m.end() for m in _ctx("BOUNDARY").finditer(head)]
    return head[cuts[-1]:] if cuts else head


def _negated(sentence: str, m: re.Match) -> bool:
    """A negation word among the five words before the match; "no doubt", "without fail" affirm, so they are
    taken out first."""
    clause = _clause_before(sentence, m.start())
    if "AFFIRMING" in LEXICON.context:
        clause = _ctx("AFFIRMING").sub(" ", clause)
    return bool(_ctx("NEG").search(" ".join(clause.split()[-5:])))


def _hyperbolic(sentence: str, m: re.Match) -> bool:
    return bool(_ctx("THING_SUBJECT").match(_clause_before(sentence, m.start())))


def _after(sentence: str, m: re.Match) -> str:
    return sentence[m.end():]


def person_target(sentence: str, m: re.Match, text: str = "") -> bool:
    """The target is a person (not "your family portraits"), and "shoot" is not photography."""
    if _ctx("COMPOUND").match(_after(sentence, m)):
        return False
    return not (re.match(r"shoot|shot", m.group(0), re.I) and _ctx("PHOTO").search(sentence))


def moderate_ok(sentence: str, m: re.Match, text: str = "") -> bool:
    """An everyday verb (beat, hit, hurt) with a person is violence when a violent complement follows, or it is
    a threat or an imperative; "beat you to the summit" and "beat them at chess" are not."""
    if not person_target(sentence, m):
        return False
    rest = _after(sentence, m)
    if re.match(r"^\s*(?:to (?!death|a pulp)|at\b|in (?:a|the) (?:race|game|match|final))", rest, re.I):
        return False
    if _ctx("COMPLEMENT").match(rest):
        return True
    before = _clause_before(sentence, m.start()).strip()
    return not before or bool(_ctx("THREAT").search(before)) or before in ("just", "now", "then", "please")


def no_water_landing(sentence: str, m: re.Match, text: str = "") -> bool:
    return not re.search(r"\binto\b[^.]{0,25}\b(?:water|lake|sea|ocean|pool|river|bay|lagoon|waves)\b", _after(sentence, m))


def not_ditransitive(sentence: str, m: re.Match, text: str = "") -> bool:
    """"cut yourself a slice", "hang yourself a hammock": a benefactive, not an injury."""
    return not re.match(r"^\s*(?:a|an|some|one|another|up a|up some|a new|your own)\b", _after(sentence, m), re.I)


CHECKS: dict[str, Callable[[str, re.Match, str], bool]] = {
    "person_target": person_target,
    "moderate_ok": moderate_ok,
    "no_water_landing": no_water_landing,
    "not_ditransitive": not_ditransitive,
    "not_photo": lambda s, m, text: not _mentions("PHOTO", s),
    "not_medical": lambda s, m, text: not _mentions("MEDICAL", s),
    "not_help_context": lambda s, m, text: not _mentions("HELP_CONTEXT", s),
    "not_care": lambda s, m, text: not _mentions("CARE", s),
    "weapon_in_sentence": lambda s, m, text: bool(LEXICON.words["WEAPON"].search(s)),
    # "you're next" is a threat with a weapon or death in the sentence (emoji read as words: "🔪 you're next");
    # the other phrases of its pattern are threats on their own
    "weapon_or_threat": lambda s, m, text: not m.group(0).endswith("next") or bool(
        LEXICON.words["WEAPON"].search(s) or re.search(r"\b(?:dead|die|coffin|grave|blood)\b", s)),
    "two_sex_acts": lambda s, m, text: _sex_acts(s) >= 2,
    "group_in_text": lambda s, m, text: _group_in(text),
    "group_in_sentence": lambda s, m, text: _group_in(s),
    "graphic": lambda s, m, text: _graphic(s),
    "not_gore_context": lambda s, m, text: not _mentions("GORE_CONTEXT", s),
}


# what a check reads of the sentence alone, once per sentence: a window dense with matches asks for each match
@lru_cache(maxsize=1024)
def _mentions(context: str, sentence: str) -> bool:
    return bool(_ctx(context).search(sentence))


@lru_cache(maxsize=256)
def _sex_acts(sentence: str) -> int:
    """How many different sexual acts the sentence names."""
    return len({c.group(0) for c in _ctx("SEX_ACT").finditer(sentence)})

GRAPHIC_WORDS = 3  # different words of injury or death in one sentence that make a description graphic


@lru_cache(maxsize=256)
def _graphic(sentence: str) -> bool:
    """Several different words of injury or death (GORE) and a violent act (GORE_ACT) in one sentence, outside an
    animal, food, medical or fiction-and-games context (GORE_CONTEXT)."""
    words = {w.group(0) for w in LEXICON.words["GORE"].finditer(sentence)}
    return (len(words) >= GRAPHIC_WORDS and bool(_ctx("GORE_ACT").search(sentence))
            and not _ctx("GORE_CONTEXT").search(sentence))


@lru_cache(maxsize=64)
def _group_in(text: str) -> bool:
    return bool(LEXICON.words["GROUP"].search(text))


LEXICON = Lexicon()


# ---------------------------------------------------------------- scanning

def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", text) if s.strip()]


def windows(sentence: str, size: int = WINDOW, overlap: int = OVERLAP) -> list[str]:
    """The sentence itself, or overlapping windows of at most `size` characters cut at spaces."""
    if len(sentence) <= size:
        return [sentence]
    out, start = [], 0
    while start < len(sentence):
        end = min(len(sentence), start + size)
        if end < len(sentence):
            cut = sentence.rfind(" ", start + overlap + 1, end)
            end = cut if cut > 0 else end
        out.append(sentence[start:end])
        if end >= len(sentence):
            break
        nxt = sentence.find(" ", max(start + 1, end - overlap), end)
        start = nxt + 1 if nxt > 0 else end
    return out


def _remove_idioms(segment: str, idioms: list[int]) -> str:
    for i in idioms:
        segment = LEXICON.idioms[i][1].sub(" ", segment)
    return segment


def _severity(p: Pattern, sentence: str, m: re.Match, text: str) -> int:
    if p.check and not CHECKS[p.check](sentence, m, text):
        return 0
    if p.negatable and _negated(sentence, m):
        return LOW
    if p.hyperbole and _hyperbolic(sentence, m):
        return LOW
    if p.meta and _ctx("META").search(sentence[:m.start()]):
        return LOW
    return p.severity


def _scan_segment(segment: str, text: str, refusal: bool, cap: int = EXTREME,
                  settled: set[int] | None = None) -> list[Finding]:
    """The findings of every pattern in `segment`; with `settled`, the patterns in it are skipped and a pattern
    is added (and its other matches skipped) once it is found at the highest severity it can have here."""
    found = []
    patterns, idioms = LEXICON.candidates(segment)
    if idioms:
        segment = _remove_idioms(segment, idioms)
        patterns = LEXICON.candidates(segment)[0]  # an idiom removed may leave a pattern nothing to match
    for i, b in patterns:
        if settled is not None and i in settled:
            continue
        p = LEXICON.patterns[i]
        for m in p.branches[b][0].finditer(segment):
            sev = _severity(p, segment, m, text)
            if sev and refusal:
                sev = min(sev, LOW)  # "I can't help you hurt yourself": the topic is named, not promoted
            if sev:
                sev = min(sev, cap)
                found.append(Finding(p.id, p.category, sev, m.group(0), sev < p.severity))
                if settled is not None and sev == min(p.severity, cap):
                    settled.add(i)
                    break
    return found


class Prepared(NamedTuple):
    """Text as both embedded scorers read it: normalised once, cut into sentences, refusals marked; `declining`
    when the text opens with a refusal (one of its first two sentences)."""

    text: str
    sentences: list[tuple[str, bool]]
    declining: bool = False


DECLINE_WITHIN = 2  # a text whose first or second sentence declines a request is a declining answer


def prepare(text: str) -> Prepared:
    cleaned = fold(text)
    sentences, splits = [], {}
    for sentence in _sentences(cleaned):
        split = splits[sentence] if sentence in splits else splits.setdefault(sentence, refusal_split(sentence))
        if split is None:
            sentences.append((sentence, False))
            continue
        declined, rest = split
        sentences += [(declined, True)] + ([(rest, False)] if rest else [])
    # one reading of "does it open by declining", the one the prompt-echo rule blocks in copy: what lowers the
    # harm scores is always what that rule sees
    return Prepared(cleaned, sentences, opening_decline(text) is not None)


def declines(clause: str, text: str) -> bool:
    """A declined clause that declines something asked: it points back at the request ("I can't help with that")
    or names the harm it declines ("I can't help you kill someone")."""
    return declines_a_request(clause) or any(_scan_segment(w, text, True) for w in windows(clause))


def opening_decline(text: str) -> str | None:
    """The refusal a text opens with (one of its first two sentences declines something asked), or None."""
    cleaned = fold(text[:2000])
    for sentence in _sentences(cleaned)[:DECLINE_WITHIN]:
        split = refusal_split(sentence)
        if split and declines(split[0], cleaned):
            return split[0]
    return None


def findings(text: str | Prepared, summary: bool = False) -> list[Finding]:
    """Every pattern that matched, with its id: why `harm_scores` said what it said.

    `summary`: only the findings that can change what the scorers make of them (per category the highest
    severity, the ids found at it in their order, whether a finding was not lowered). Once a pattern is found
    at the highest severity it can have in this text (its own, or the cap), it is not searched again: any
    later finding of it has that severity or less, an id already cited, and is lowered unless the first was
    not. Dense harm text without sentence breaks (1 MB of harm words) then costs what its first windows do."""
    prepared = text if isinstance(text, Prepared) else prepare(text)
    cleaned = prepared.text
    seen: dict[str, list[Finding]] = {}
    out = []
    # an answer that opens by declining explains why the harm is harmful ("Making a bomb is illegal and could
    # kill you"): its other sentences score at most Medium (a warning a reviewer reads), never a block
    cap = MEDIUM if prepared.declining else EXTREME
    settled: set[int] | None = set() if summary else None
    for sentence, refusal in prepared.sentences:
        for segment in windows(sentence):
            if segment not in seen:  # a repeated segment is scanned once
                seen[segment] = _scan_segment(segment, cleaned, refusal, cap, settled)
            out += seen[segment]
    return out


def explain(text: str) -> list[tuple[str, int, str]]:
    """(category, severity, matched text) for every pattern that matched."""
    return [(f.category, f.severity, f.text) for f in findings(text)]


def harm_scores(text: str) -> dict[str, int]:
    """Severity 0-7 per category for `text`."""
    return scores_and_evidence(text)[0]


def scores_and_evidence(text: str | Prepared, found: list[Finding] | None = None
                        ) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Per category: the severity and the ids of the patterns that gave it."""
    scores, evidence = dict.fromkeys(HARM_CATEGORIES, 0), {c: [] for c in HARM_CATEGORIES}
    for f in findings(text, summary=True) if found is None else found:
        if f.severity > scores[f.category]:
            scores[f.category], evidence[f.category] = f.severity, [f.pattern_id]
        elif f.severity == scores[f.category] and f.pattern_id not in evidence[f.category]:
            evidence[f.category].append(f.pattern_id)
    return scores, evidence
