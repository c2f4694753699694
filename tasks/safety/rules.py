"""Marketing rules (CAN-SPAM, FTC, brand): each rule reads a message and says what is wrong, if anything.

A rule returns a list of findings (plain sentences); the policy decides whether its id blocks or warns.
"""
from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from config import Brand, Policy
from tasks.records import Document
from tasks.safety.scan import AtAnchored, Gated

NUMBER = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)?%?")
# NUMBER, and what follows it: " percent"/" per cent" (group 2) or " dollar(s)" (group 3), each empty when absent.
# The lookaheads are optional, so the numbers matched are NUMBER's own; the letter classes are what reading
# the lower-cased text after the number means (only "P" lower-cases to "p", and so on: checked over Unicode by
# tests/safety/test_speed.py).
NUMBER_UNIT = re.compile(r"(?<![\w.])(\$?\d[\d,]*(?:\.\d+)?%?)"
                         r"(?=(\s?[pP][eE][rR](?:[cC][eE][nN][tT]| [cC][eE][nN][tT])\b)?)"
                         r"(?=(\s?[dD][oO][lL][lL][aA][rR][sS]?\b)?)")
URL = re.compile(r"https?://\S+|www\.\S+", re.I)
# Gated: searched only around the literals each match must contain ("@" here), so long text stays fast
EMAIL = AtAnchored(re.compile(r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+\b"))
PHONE = re.compile(r"(?<!\d)(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)")
SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
PHONE_BARE = Gated(re.compile(r"\b(?:call|text|phone|tel|mobile|cell|sms|whatsapp|dial|ring|reach|on)\b[^\d\n]{0,15}"
                        r"(\+?1?\d{10})(?!\d)", re.I))
PHONE_INTL = re.compile(r"(?<![\w+])\+(?!1[ .-]?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4})\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\d)")
BIRTH_DATE = Gated(re.compile(r"\b(?:dob|d\.o\.b\.|date of birth|born on)\b[:\s]*\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}", re.I))
# a bracketed slot naming what should go in it ("[First Name]", "[INSERT DISCOUNT]", "[Customer Name]"); a markdown
# link "[Product details](https://...)" is not one
PLACEHOLDER = Gated(re.compile(
    r"\{\{.*?\}\}|\[[^\]\n]{0,40}?\b(?:insert|name|first ?name|last ?name|product|company|discount|amount|date|link|url|"
    r"city|price|code|placeholder|tbd|cta|offer|x{2,}|recipient|customer|user|email|phone|address|store|location|brand|"
    r"title|image|logo|button|headline|number|percent|deadline)\b[^\]\n]{0,40}\](?!\()|"
    r"\b(?:dear|hi|hello|hey)\s+\[[^\]\n]{1,30}\](?!\()|<[A-Z_]{3,}>|%%\w+%%|"
    r"(?<![\w%])%[A-Z][A-Z0-9_]{2,}%(?![\w%])|\*\|[A-Z0-9_:]+\|\*|\bX{2,}%|\$X{2,}|\bTBD\b|lorem ipsum", re.I))
MERGE = re.compile(r"\{\s*(\w*)\s*\}")
FAKE_THREAD = re.compile(r"^\s*(?:re|fw|fwd)\s*:", re.I)
MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
# a claim of time pressure or scarcity in a subject line ("before winter", "until spring" are not)
URGENCY = re.compile(
    rf"\b(?:urgent|last chance|last call|final (?:notice|hours?|call|days?|chance)|last day|act (?:now|fast)|hurry|"
    rf"today only|only today|(?:only )?\d+ hours? (?:left|only|to go)|hours? left|expir(?:es|ing)|deadline|limited[- ]time|"
    rf"before (?:it'?s|they'?re) gone|while (?:supplies|stocks?) last|(?:don'?t|do not) miss (?:out|it)|going fast|"
    rf"almost gone|selling out|now or never|until midnight|ends? (?:today|tonight|tomorrow|soon|at midnight|"
    rf"this (?:week(?:end)?|month)|(?:on )?{WEEKDAY}|in \d+|{MONTH}\b|\d))\b", re.I)
# a dated or bounded offer in the cited source ("ends December 31, 2029", "valid for 30 days"); "never expire" is not
DEADLINE_IN_SOURCE = re.compile(
    rf"\b{MONTH} \d{{1,2}}\b|\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b|\b(?:ends?|until|through|expires?|before|by) "
    rf"(?:the end of|midnight|tonight|today|tomorrow|{WEEKDAY})\b|\blimited[- ]time\b|\bwhile supplies last\b|"
    rf"\blast day\b|\bdeadline\b|\b(?:valid|good) (?:for|until|through) \d", re.I)
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad\u034f\u115f\u1160\u17b4"
                       "\u17b5\u180e\u3164\uffa0\ufff9-\ufffb\U000e0000-\U000e007f]")
FULLWIDTH = re.compile("[\uff01-\uff5e]")
# Cyrillic and Greek letters drawn like Latin ones: a word made only of them passes for English
CONFUSABLE = set("\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0430\u0435\u043e\u0440\u0441"
                 "\u0443\u0445\u0456\u0458\u0455\u0501\u051b\u051d\u0405\u0406\u0408\u0391\u0392\u0395\u0396\u0397"
                 "\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u03bf")
ECHO = Gated(re.compile(
    r"\b(?:ignore|disregard|forget) (?:all |any |the |your )?(?:previous |prior |above |earlier |preceding )?"
    r"(?:instructions|prompts?|rules|guidelines)\b|\bas an ai\b|\bas a (?:large )?language model\b|system prompt|"
    r"<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>|\[/?inst\]|###\s*(?:instruction|response|system)|"
    r"\byou are (?:chatgpt|claude|gpt-?\d?|an? (?:helpful |friendly |expert |professional )?(?:[\w-]+ )?(?:assistant|"
    r"copywriter|ai|language model|chatbot))\b|\bi(?:'m| am) (?:just )?an? (?:ai|language model|large language model)\b|"
    r"\bi(?:'m| am) sorry,? but i (?:can(?:'|no)t|am unable to|won'?t)\b|\bi can(?:'|no)t (?:help|assist) with (?:that|"
    r"this)\b|\b(?:sure|certainly|of course|absolutely)[!,.]? (?:here(?:'s| is| are)|i(?:'d| would) be happy to)\b|"
    r"\bhere(?: is|'s| are) (?:the|a|an|your|some)\b[^.\n]{0,40}?\b(?:email|e-mail|subject lines?|preheaders?|drafts?|"
    r"variants?|rewrites?|(?:marketing|email|ad) copy|versions? of (?:the|your) (?:email|message))\b(?! (?:address|list))|"
    r"^\s*(?:subject(?: line)?|preheader|body|cta|call to action)\s*:|\[(?:note|notes|editor'?s note|internal note|todo|"
    r"to do|comment|draft)\s*:|\b(?:this|the above|the following) (?:version|draft|variant|rewrite) (?:uses|is|has|keeps|"
    r"focuses)\b|\bas (?:you )?requested\b[^.\n]{0,40}\b(?:tone|version|draft|length|word count)\b", re.I | re.M))


@dataclass
class Message:
    subject: str
    body: str
    preheader: str = ""
    citations: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.preheader}\n{self.body}"


@dataclass
class Context:
    brand: Brand
    policy: Policy
    documents: dict[str, Document]
    today: date
    subject_max_chars: int = 60

    def cited(self, message: Message) -> list[Document]:
        """The cited documents; with no citations (ad-hoc screening), the whole approved library."""
        if not message.citations:
            return [d for d in self.documents.values() if d.usable_on(self.today)]
        return [self.documents[c] for c in message.citations if c in self.documents]

    @property
    def brand_text(self) -> str:
        b = self.brand
        return " ".join([b.company_name, b.postal_address, b.unsubscribe_url, b.contact_email])


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


UNSUB_LINK = re.compile(r"(?:https?://|www\.)\S*(?:unsub|opt-?out|optout|preferences|email-settings)\S*", re.I)
UNSUB_PHRASE = re.compile(r"unsubscribe|opt[- ]?out|manage (?:your )?(?:email )?preferences|stop receiving", re.I)
LINK = re.compile(r"https?://\S+|www\.\S+|mailto:\S+", re.I)


def _has_unsubscribe_link(body: str) -> bool:
    """A link that is itself an unsubscribe link, or an unsubscribe phrase with a link after it on its line (or on
    the next line when the phrase ends its line: "Unsubscribe here:\nhttps://...")."""
    if body.isascii():  # in ASCII, a case-insensitive literal is a substring of the lower-cased text
        lower = body.lower()
        if "http" not in lower and "www." not in lower and "mailto:" not in lower:
            return False  # no link at all, so no unsubscribe link (one C scan instead of the regexes)
    if UNSUB_LINK.search(body):
        return True
    if not UNSUB_PHRASE.search(body):  # a phrase has no line break in it: no line has one either
        return False
    lines = body.splitlines()
    for i, line in enumerate(lines):
        first = UNSUB_PHRASE.search(line)
        if first is None:
            continue
        last_link = max((m.start() for m in LINK.finditer(line)), default=-1)  # one scan per line: linear
        if last_link >= first.end():  # a link after the first phrase is after a phrase
            return True
        tail = line[-80:]  # "Unsubscribe here:" ending the line, the link on the next
        for phrase in UNSUB_PHRASE.finditer(tail):
            rest = tail[phrase.end():]
            if len(rest) <= 40 and re.fullmatch(r"[\w ]{0,20}[:\-]?\s*", rest) and i + 1 < len(lines) \
                    and LINK.match(lines[i + 1].strip()):
                return True
    return False


def missing_unsubscribe(m: Message, ctx: Context) -> list[str]:
    return [] if _has_unsubscribe_link(m.body) else ["the body has no unsubscribe link"]


def _words(text: str) -> str:
    """Lowercase words only: "Harbor & Pine Outfitters\n1200 Alder Street" -> "harbor and pine outfitters 1200 ..."."""
    return " ".join(re.findall(r"[^\W_]+", text.lower().replace("&", " and ")))


def missing_postal_address(m: Message, ctx: Context) -> list[str]:
    address = _words(ctx.brand.postal_address)
    body = m.body.lower().replace("&", " and ")
    if address and not all(w in body for w in address.split(" ")):
        return ["the body lacks the brand's postal address"]  # a word of it is nowhere in the body
    found = f" {address} " in f" {_words(m.body)} "
    return [] if found else ["the body lacks the brand's postal address"]


def deceptive_subject(m: Message, ctx: Context) -> list[str]:
    found = []
    if FAKE_THREAD.match(m.subject):
        found.append(f"subject fakes a reply or forward: {m.subject[:20]!r}")
    urgency = URGENCY.search(m.subject)
    if urgency and not any(DEADLINE_IN_SOURCE.search(d.text) for d in ctx.cited(m)):
        found.append(f"subject urgency {urgency.group(0)!r} not backed by a deadline in a cited document")
    return found


@lru_cache(maxsize=256)
def _claim_pattern(term: str) -> Gated:
    """"risk-free" also matches "risk free", "lowest price" also "lowest prices", "cure" also "cures"/"cured"."""
    words = [re.escape(w) for w in re.split(r"[\s-]+", term.strip().lower()) if w]
    tail = r"(?:s|es|d|ed)?" if term[-1:].isalpha() else ""
    return Gated(re.compile(r"(?<!\w)" + r"[\s-]{0,5}".join(words) + tail + r"(?!\w)", re.I), reach=200)


def unsupported_claim(m: Message, ctx: Context) -> list[str]:
    sources = " ".join(d.text for d in ctx.cited(m))
    return [f"claim {term!r} not supported by a cited document" for term in ctx.policy.claim_terms
            if (rx := _claim_pattern(term)).search(m.text) and not rx.search(sources)]


def _norm(n: str) -> str:
    n = n.replace(",", "").replace("$", "").rstrip("%")
    return n.rstrip("0").rstrip(".") if "." in n else n


def _numbers(text: str) -> list[tuple[str, str, str]]:
    """(as written, value, unit) for each number; unit is "%", "$" or "" (a bare number)."""
    return [(raw, _norm(raw), _unit(raw, percent, dollar)) for raw, percent, dollar in NUMBER_UNIT.findall(text)]


def _unit(raw: str, percent: str, dollar: str) -> str:
    return "%" if raw.endswith("%") or percent else "$" if raw.startswith("$") or dollar else ""


def _number_kinds(text: str) -> set[tuple[str, str, str]]:
    """The distinct (as written, value, unit) of `_numbers`: one C-level scan, Python work per distinct number
    only (text of 500,000 numbers costs what a few do)."""
    return {(raw, _norm(raw), _unit(raw, percent, dollar)) for raw, percent, dollar in set(NUMBER_UNIT.findall(text))}


@lru_cache(maxsize=8)
def _without_urls(text: str) -> str:
    """URLs out: shared by pii and uncited_number (one pass for both on long text)."""
    lower = text.lower()
    if "http" not in lower and "www." not in lower:  # str.find is far faster than the regex's scan
        return text
    return URL.sub(" ", text)


class Found(NamedTuple):
    """Matches as three parallel tuples, not a tuple per match: 100,000 small tuples kept alive make the garbage
    collector walk them again and again (a third of the time on 1 MB of e-mail addresses)."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    texts: tuple[str, ...]


def _found(matches) -> Found:
    starts, ends, texts = [], [], []
    for m in matches:
        starts.append(m.start())
        ends.append(m.end())
        texts.append(m.group(0))
    return Found(tuple(starts), tuple(ends), tuple(texts))


@lru_cache(maxsize=8)
def _emails(text: str) -> Found:
    """Every email address: one search shared by pii and uncited_number (EMAIL's matches come in order, not
    overlapping: finditer gives them without holding them all)."""
    return _found(EMAIL.finditer(text))


# ASCII text with every digit read as "0" and every character but " .-()+" as "x": in ASCII, \d is [0-9], so
# a contact pattern can only match where its digit shape is (a C-speed substring test instead of a regex scan
# that tries every position)
SHAPE = bytes(ord("0") if chr(c).isdigit() else c if chr(c) in " .-()+" else ord("x") for c in range(128)) + b"x" * 128


@lru_cache(maxsize=8)
def _shape(text: str) -> bytes | None:
    return text.encode("ascii").translate(SHAPE) if text.isascii() else None


# what every match of each contact pattern holds, in the digit shape
MAY_MATCH = {
    "PHONE": lambda shape: any(b"000" + p + bytes([a]) + b"000" + bytes([b]) + b"0000" in shape
                               for p in (b"", b")") for a in b" .-" for b in b" .-"),  # \d{3}\)?[ .-]\d{3}[ .-]\d{4}
    "PHONE_BARE": lambda shape: b"0000000000" in shape,  # \d{10}
    "PHONE_INTL": lambda shape: b"+" in shape,
    "SSN": lambda shape: b"000-00-0000" in shape,
    "CARD": lambda shape: re.search(rb"0(?:[ -]?0){12}", shape) is not None,  # (?:\d[ -]?){13}
}


@lru_cache(maxsize=32)
def _spans(rx: re.Pattern | Gated, text: str) -> Found:
    """Start, end and matched text of every match of `rx` in `text`, as `findall` and `sub` find them. pii and
    uncited_number search the same text with the same patterns (the same text when it holds no email address
    and no brand address, as long text mostly does): each search runs once for both. Keyed on pattern and text."""
    may = MAY_MATCH.get(next((k for k, v in CONTACTS.items() if v is rx), ""))
    if may is not None and (shape := _shape(text)) is not None and not may(shape):
        return Found((), (), ())
    return _found(rx.matches(text) if isinstance(rx, Gated) else rx.finditer(text))


CONTACTS = {"PHONE": PHONE, "PHONE_BARE": PHONE_BARE, "PHONE_INTL": PHONE_INTL, "SSN": SSN, "CARD": CARD}


def _blank(text: str, found: Found) -> str:
    """`text` with each match replaced by a space: `rx.sub(" ", text)` for the matches of `rx` (none is empty)."""
    if not found.starts:
        return text
    out, last = [], 0
    for a, b in zip(found.starts, found.ends):
        out += [text[last:a], " "]
        last = b
    return "".join(out) + text[last:]


@lru_cache(maxsize=8)
def _strip_contacts(text: str) -> str:
    """Phone numbers, emails, SSNs and card numbers are the pii rule's business, not claims to ground."""
    text = _blank(text, _emails(text))
    for rx in (PHONE, PHONE_BARE, PHONE_INTL, SSN, CARD):
        text = _blank(text, _spans(rx, text))
    return text


def uncited_number(m: Message, ctx: Context) -> list[str]:
    """Every number in the message must be in a cited document (or the brand's contact lines); a percentage must
    be a percentage there and a dollar amount a dollar amount (a "$25 off" source does not ground "25% off")."""
    sources = [n for d in ctx.cited(m) for n in _numbers(d.text)] + _numbers(ctx.brand_text)
    values = {v for _, v, _ in sources}
    typed = {(v, u) for _, v, u in sources}
    text = _strip_contacts(_without_urls(m.text))
    missing = sorted({raw for raw, v, u in _number_kinds(text) if (v, u) not in typed and not (u == "" and v in values)})
    return [f"number {n!r} is in no cited document" for n in missing]


def citation_not_approved(m: Message, ctx: Context) -> list[str]:
    if not m.citations:
        return []
    found = []
    for c in m.citations:
        doc = ctx.documents.get(c)
        if doc is None:
            found.append(f"cites unknown document {c!r}")
        elif not doc.usable_on(ctx.today):
            found.append(f"cites document {c!r} that is not approved or has expired")
    return found


def _brand_domains(ctx: Context) -> set[str]:
    hosts = {ctx.brand.contact_email.rsplit("@", 1)[-1].lower()}
    host = re.match(r"https?://([^/:]+)", ctx.brand.unsubscribe_url or "")
    if host:
        hosts.add(host.group(1).lower())
    return {h[4:] if h.startswith("www.") else h for h in hosts if h}


def pii(m: Message, ctx: Context) -> list[str]:
    """A person's email, phone number, SSN, card number or date of birth; the brand's own addresses are fine.
    Findings name the kind of personal data, never the value: the audit log must not become a copy of it."""
    text = _without_urls(m.text)
    domains = _brand_domains(ctx)
    contact = ctx.brand.contact_email.strip().lower()
    # each distinct address, number or card is judged once (Counter: text of 100,000 repeats costs what one does)
    emails = sum(n for e, n in Counter(_emails(text).texts).items() if e.lower() != contact
                 and not any(e.lower().endswith("@" + d) or e.lower().endswith("." + d) for d in domains))
    if contact:  # an empty one would put a space between every character
        text = text.replace(ctx.brand.contact_email, " ")
    phone = _spans(PHONE, text)
    phones = len(phone.starts) + len(_spans(PHONE_BARE, _blank(text, phone)).starts)
    phones += sum(n for p, n in Counter(_spans(PHONE_INTL, text).texts).items()
                  if len(re.sub(r"\D", "", p)) >= 8)
    cards = Counter(_spans(CARD, text).texts)
    kinds = [("an email address", emails), ("a phone number", phones),
             ("a date of birth", len(BIRTH_DATE.findall(text))), ("an SSN-like number", len(_spans(SSN, text).starts)),
             ("a payment card number", sum(n for c, n in cards.items() if _luhn(re.sub(r"\D", "", c))))]
    return [f"contains {kind}" + (f" ({n} found)" if n > 1 else "") for kind, n in kinds if n]


def _luhn(digits: str) -> bool:
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
                for i, d in enumerate(int(x) for x in reversed(digits)))
    return len(digits) >= 13 and total % 10 == 0


CORPORATE = re.compile(r"[\s,]+(?:co|inc|llc|ltd|corp|company|corporation|gmbh)\.?$", re.I)


def _competitor_words(name: str) -> list[str]:
    core = CORPORATE.sub("", name.strip()) or name.strip()
    return [w for part in re.split(r"[\s-]+", core) for w in re.findall(r"[A-Z]?[a-z0-9&.']+|[A-Z]+(?![a-z])", part)]


def _competitor_pattern(name: str) -> re.Pattern:
    """"Summit Supply Co." also matches "Summit Supply"; "TrailMart" also "Trail Mart", "Trail-Mart", "TrailMart's"."""
    return re.compile(r"(?<!\w)" + r"[\s-]*".join(re.escape(w) for w in _competitor_words(name)) + r"(?!\w)", re.I)


def competitor_mention(m: Message, ctx: Context) -> list[str]:
    text = m.text
    lower = text.lower() if text.isascii() else None

    def named(c: str) -> bool:
        words = _competitor_words(c)
        if lower is not None and all(w.isascii() for w in words) and not all(w.lower() in lower for w in words):
            return False  # ASCII: a case-insensitive match holds each word, lower-cased, as a substring
        return bool(_competitor_pattern(c).search(text))
    return [f"names competitor {c!r}" for c in ctx.brand.competitors if named(c)]


def unresolved_placeholder(m: Message, ctx: Context) -> list[str]:
    found = [f"unresolved placeholder {p.group(0)!r}" for p in PLACEHOLDER.matches(m.text)]
    found += [f"unknown merge field {{{f}}}" for f in MERGE.findall(m.text)
              if f not in ctx.policy.allowed_merge_fields]
    return found


CYRILLIC_GREEK = re.compile("[\u0370-\u03ff\u0400-\u052f]")
LATIN_LETTER = re.compile("[A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\uff21-\uff3a\uff41-\uff5a]")


def _emoji(ch: str) -> bool:
    return unicodedata.category(ch) in ("So", "Sk") or ch in "\ufe0f\u20e3" or 0x1F3FB <= ord(ch) <= 0x1F3FF


def hidden_characters(m: Message, ctx: Context) -> list[str]:
    """Invisible or direction-changing characters, fullwidth letters, and words that mix Latin with Cyrillic or
    Greek or are spelled wholly in look-alike letters ("ТОР" in Cyrillic). A zero-width joiner inside an emoji
    sequence (family emoji) is how emoji are written, not a trick."""
    text = m.text
    hidden = {x.group(0) for x in INVISIBLE.finditer(text) if not (  # regex scans: linear, in C
        x.group(0) == "\u200d" and 0 < x.start() < len(text) - 1 and _emoji(text[x.start() - 1])
        and _emoji(text[x.start() + 1]))}
    found = [f"invisible character U+{ord(ch):04X}" for ch in sorted(hidden)]
    if FULLWIDTH.search(text):
        found.append(f"fullwidth characters {''.join(FULLWIDTH.findall(text))[:20]!r}")
    if not CYRILLIC_GREEK.search(text):  # no Cyrillic or Greek letter: no homoglyph word to look at
        return found
    letters = len(re.findall(r"[^\W\d_]", text))
    latin = len(LATIN_LETTER.findall(text))
    for word in re.findall(r"\w*[\u0370-\u03ff\u0400-\u052f]\w*", text):
        scripts = {unicodedata.name(ch, "").split(" ")[0] for ch in word if ch.isalpha()}
        if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK"}:
            found.append(f"mixed-script word {word!r} (homoglyph trick)")
        elif len(word) >= 2 and scripts & {"CYRILLIC", "GREEK"} and all(ch in CONFUSABLE for ch in word) \
                and latin > letters / 2:
            found.append(f"look-alike word {word!r} written in {'/'.join(sorted(scripts)).lower()} letters")
    return found


DECLINING = "opens by declining, as a model's refusal does"


def prompt_echo(m: Message, ctx: Context) -> list[str]:
    """Instructions or a model's own words left in the copy. A message that opens by declining a request reads as a
    model's refusal, and the harm scorer lowers what such an answer goes on to say: in copy it is an echo."""
    from tasks.safety.harm import opening_decline

    found = [f"echoed instruction {e.group(0)!r}" for e in ECHO.matches(m.text)]
    declined = opening_decline(m.text)  # the text the harm scorer reads
    return found + ([f"{DECLINING}: {declined[:60]!r}"] if declined else [])


def subject_too_long(m: Message, ctx: Context) -> list[str]:
    limit = ctx.subject_max_chars
    return [f"subject has {len(m.subject)} characters (limit {limit})"] if len(m.subject) > limit else []


def shouting(m: Message, ctx: Context) -> list[str]:
    """Mostly capitals, "!!", three or more "!", or two or more all-capital words that are not codes or acronyms
    the sources or brand spell that way ("FREE SHIPPING on orders", but not "UIAA" or "TRAIL20")."""
    letters = [c for c in m.subject if c.isalpha()]
    caps = len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.7
    known = set(re.findall(r"\b[A-Z]{2,}\b", " ".join([ctx.brand_text] + [d.text for d in ctx.cited(m)])))
    loud = [w for w in re.findall(r"\b[A-Z]{4,}\b", m.subject) if w not in known]
    if caps or "!!" in m.subject or m.subject.count("!") >= 3 or len(loud) >= 2:
        return ["subject is shouting (capitals or '!!')"]
    return []


def unsupported_language(m: Message, ctx: Context) -> list[str]:
    """Text the embedded harm scorer cannot read (it was built for English) is flagged, never passed on a
    score of 0 it did not earn; the policy says block or warn (review). Skipped for multilingual backends."""
    from tasks.safety.language import unsupported_language as detect

    found = detect(m.text)
    return [f"written in {found}: the embedded harm scorer reads English only; review it or screen with a "
            f"multilingual backend (CPO_SCREENER)"] if found else []


# markup that runs code in a mail client or a browser: event handlers, script URLs, active elements
ACTIVE_MARKUP = re.compile(
    r"(?<![\w-])(?:java|vb|live)script\s*:|\bdata\s*:\s*(?:text/html|image/svg\+xml|application/(?:x-)?(?:java|ecma)script)|"
    r"<\s*/?\s*(?:script|iframe|frame|object|embed|applet|form|base|link|svg|math)\b|"
    r"<\s*meta\b[^<>]{0,200}?http-equiv", re.I)
TAG = re.compile(r"<[a-z][^<>]*>?", re.I)  # one tag with its attributes, however long: tags never overlap, so linear
HANDLER = re.compile(r"[\s/\"']on[a-z]{3,25}\s*=", re.I)
URL_NOISE = re.compile(r"[\t\n\r\x00]")  # browsers drop these inside a URL scheme ("java\tscript:")


def unsafe_markup(m: Message, ctx: Context) -> list[str]:
    text = m.text
    if "&" in text:  # "javascript&colon;", "&#x6A;avascript:": as a mail client reads them
        text = html.unescape(text)
    if "<" not in text:  # every alternative needs a "<", but "script:" and "data: text/html" (which need ":")
        if ":" not in text:
            return []
        lower = text.lower()
        if text.isascii() and "script" not in lower and "data" not in lower and "\t" not in text:
            return []
    found = {f.group(0)[:40] for f in ACTIVE_MARKUP.finditer(URL_NOISE.sub("", text))}
    found |= {h.group(0).strip()[:40] for t in TAG.finditer(text) if (h := HANDLER.search(t.group(0)))}
    return [f"active markup {f!r}" for f in sorted(found)]


# a marketing email never asks for a password, a code or a card, nor threatens an account (phishing)
CREDENTIALS = r"(?:password|passcode|pin(?: code| number)?|one[- ]time (?:code|password)|verification code|security code|" \
              r"cvv|cvc|card (?:number|details)|bank (?:details|account (?:number|details))|social security|ssn|login " \
              r"(?:details|credentials)|credentials|username and password|seed phrase|recovery phrase|" \
              r"(?:mother's )?maiden name)"
PHISHING = Gated(re.compile(
    rf"\b(?:enter|confirm|verify|update|provide|send|reply with|share|re-?enter|type|submit|validate|tell us|email us|"
    rf"text us|give us|send us|dm us|message us|what(?:'s| is))\b[^.!?\n]{{0,40}}?"
    rf"\b(?:your|the|a)(?: [\w'-]+)? {CREDENTIALS}\b|"
    rf"\b(?:verify|confirm|validate|re-?activate|unlock|restore|secure) (?:your|the) (?:account|identity|login|card|"
    rf"billing (?:details|information)|payment (?:details|information))\b|"
    rf"\byour (?:account|card|membership|access|mailbox) (?:has been|was|will be|is) (?:suspended|locked|disabled|"
    rf"closed|deactivated|terminated|compromised|on hold|limited|blocked|deleted|removed|cancell?ed)\b|"
    rf"\b(?:log ?in|sign ?in) (?:now |immediately |within \d+ hours )?(?:to|or) (?:avoid|prevent|restore|keep|unlock|"
    rf"verify|confirm)\b|\bunusual (?:sign-?in|login|activity) (?:attempt|detected)\b", re.I))


def credential_request(m: Message, ctx: Context) -> list[str]:
    found = {f.group(0)[:60] for f in PHISHING.matches(m.text)}
    if not m.text.isascii():  # "pässword", "pаssword" with a Cyrillic a: read as the harm scorer reads them
        from tasks.safety.normalize import fold

        found |= {f.group(0)[:60] for f in PHISHING.matches(fold(m.text))}
    return [f"asks for credentials or threatens an account (phishing): {f!r}" for f in sorted(found)]


RULES = {f.__name__: f for f in [
    missing_unsubscribe, missing_postal_address, deceptive_subject, unsupported_claim, uncited_number,
    citation_not_approved, pii, competitor_mention, unresolved_placeholder, hidden_characters, prompt_echo,
    subject_too_long, shouting, unsupported_language, unsafe_markup, credential_request]}
