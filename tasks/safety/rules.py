"""Marketing rules (CAN-SPAM, FTC, brand): each rule reads a message and says what is wrong, if anything.

A rule returns a list of findings (plain sentences); the policy decides whether its id blocks or warns.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from config import Brand, Policy
from tasks.records import Document

NUMBER = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)?%?")
URL = re.compile(r"https?://\S+|www\.\S+", re.I)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
PHONE = re.compile(r"(?<!\d)(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)")
SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\[(?:insert|name|first ?name|product|company|x+|tbd)[^\]]*\]|<[A-Z_]{3,}>|%%\w+%%"
                         r"|\bX{2,}%|\$X{2,}|\bTBD\b|lorem ipsum", re.I)
MERGE = re.compile(r"\{(\w*)\}")
FAKE_THREAD = re.compile(r"^\s*(?:re|fw|fwd)\s*:", re.I)
URGENCY = re.compile(r"\b(?:urgent|last chance|final (?:notice|hours?)|ends? (?:today|tonight|soon)|act now|hurry|"
                     r"only today|expires?|expiring|ends?|until|before|deadline|limited time)\b", re.I)
DEADLINE_IN_SOURCE = re.compile(r"\b(?:ends?|until|through|expires?|before|limited|last day|deadline)\b|"
                                r"(?:January|February|March|April|May|June|July|August|September|October|"
                                r"November|December) \d", re.I)
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
ECHO = re.compile(r"ignore (?:all |any )?(?:previous|prior|above) instructions|as an ai (?:language )?model|"
                  r"system prompt|<\|im_(?:start|end)\|>|you are (?:chatgpt|an ai assistant)|"
                  r"disregard (?:the|your) (?:rules|instructions)", re.I)


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


def missing_unsubscribe(m: Message, ctx: Context) -> list[str]:
    body = m.body.lower()
    if "unsubscribe" not in body or not (URL.search(m.body) or "mailto:" in body):
        return ["the body has no unsubscribe link"]
    return []


def missing_postal_address(m: Message, ctx: Context) -> list[str]:
    return [] if _squash(ctx.brand.postal_address) in _squash(m.body) else ["the body lacks the brand's postal address"]


def deceptive_subject(m: Message, ctx: Context) -> list[str]:
    found = []
    if FAKE_THREAD.match(m.subject):
        found.append(f"subject fakes a reply or forward: {m.subject[:20]!r}")
    urgency = URGENCY.search(m.subject)
    if urgency and not any(DEADLINE_IN_SOURCE.search(d.text) for d in ctx.cited(m)):
        found.append(f"subject urgency {urgency.group(0)!r} not backed by a deadline in a cited document")
    return found


def unsupported_claim(m: Message, ctx: Context) -> list[str]:
    sources = " ".join(d.text.lower() for d in ctx.cited(m))
    text = m.text.lower()
    return [f"claim {term!r} not supported by a cited document" for term in ctx.policy.claim_terms
            if re.search(rf"(?<!\w){re.escape(term.lower())}(?!\w)", text) and term.lower() not in sources]


def _norm(n: str) -> str:
    return n.replace(",", "").replace("$", "").rstrip("%")


def uncited_number(m: Message, ctx: Context) -> list[str]:
    grounded = {_norm(n) for d in ctx.cited(m) for n in NUMBER.findall(d.text)}
    grounded |= {_norm(n) for n in NUMBER.findall(ctx.brand_text)}
    text = URL.sub(" ", m.text)
    missing = sorted({n for n in NUMBER.findall(text) if _norm(n) not in grounded})
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


def pii(m: Message, ctx: Context) -> list[str]:
    text = URL.sub(" ", m.text).replace(ctx.brand.contact_email, " ")
    found = [f"contains an email address {e!r}" for e in EMAIL.findall(text)]
    found += [f"contains a phone number {p!r}" for p in PHONE.findall(text)]
    found += [f"contains an SSN-like number {s!r}" for s in SSN.findall(text)]
    found += ["contains a payment card number" for c in CARD.findall(text) if _luhn(re.sub(r"\D", "", c))]
    return found


def _luhn(digits: str) -> bool:
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
                for i, d in enumerate(int(x) for x in reversed(digits)))
    return len(digits) >= 13 and total % 10 == 0


def competitor_mention(m: Message, ctx: Context) -> list[str]:
    return [f"names competitor {c!r}" for c in ctx.brand.competitors
            if re.search(rf"(?<!\w){re.escape(c)}", m.text, re.I)]


def unresolved_placeholder(m: Message, ctx: Context) -> list[str]:
    found = [f"unresolved placeholder {p.group(0)!r}" for p in PLACEHOLDER.finditer(m.text)]
    found += [f"unknown merge field {{{f}}}" for f in MERGE.findall(m.text)
              if f not in ctx.policy.allowed_merge_fields]
    return found


def hidden_characters(m: Message, ctx: Context) -> list[str]:
    found = [f"invisible character U+{ord(ch):04X}" for ch in sorted(set(INVISIBLE.findall(m.text)))]
    for word in re.findall(r"\w+", m.text):
        scripts = {unicodedata.name(ch, "").split(" ")[0] for ch in word if ch.isalpha()}
        if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK"}:
            found.append(f"mixed-script word {word!r} (homoglyph trick)")
    return found


def prompt_echo(m: Message, ctx: Context) -> list[str]:
    return [f"echoed instruction {e.group(0)!r}" for e in ECHO.finditer(m.text)]


def subject_too_long(m: Message, ctx: Context) -> list[str]:
    limit = ctx.subject_max_chars
    return [f"subject has {len(m.subject)} characters (limit {limit})"] if len(m.subject) > limit else []


def shouting(m: Message, ctx: Context) -> list[str]:
    letters = [c for c in m.subject if c.isalpha()]
    caps = len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.7
    return ["subject is shouting (mostly capitals or '!!')"] if caps or "!!" in m.subject else []


RULES = {f.__name__: f for f in [
    missing_unsubscribe, missing_postal_address, deceptive_subject, unsupported_claim, uncited_number,
    citation_not_approved, pii, competitor_mention, unresolved_placeholder, hidden_characters, prompt_echo,
    subject_too_long, shouting]}
