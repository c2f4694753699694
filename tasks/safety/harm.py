"""Embedded harm scorer: hate, self-harm, sexual and violence on Azure AI Content Safety's 0-7 scale.

Lexicon patterns carry a severity (2 low, 4 medium, 6 high, 7 extreme); a category's score is the highest
severity that matches. Marketing idioms ("killer deal", "to die for", "shoot us a message") are removed
before scoring, so everyday copy is not read as violence.
"""
from __future__ import annotations

import re

from tasks.records import HARM_CATEGORIES

IDIOMS = [
    r"killer (?:deals?|prices?|views?|look|app|feature|combo|savings?)", r"to die for", r"dying to (?:see|try|know)",
    r"shoot (?:us|me) (?:a|an) (?:message|note|line|email|text)", r"shoot (?:us|me) (?:over|through)",
    r"(?:blow|blew|blown) (?:you|them|us) away", r"blow-?out sale", r"knock(?:s|ed)? (?:it|them) out of the park",
    r"knock ?out (?:deal|price|look)s?", r"crush(?:ed|ing)? (?:it|your goals?|the trail)", r"a steal",
    r"steal (?:of a deal|the show)", r"(?:bang|punch) for (?:the|your) buck", r"drop[- ]dead gorgeous",
    r"fight (?:the|off the) (?:cold|chill|elements|rain)", r"beat the (?:heat|crowds?|rush|cold)",
    r"attack (?:the|any) (?:trail|summit|climb|day)", r"bomb[- ]?proof", r"camp(?:ing)? stove fuel",
    r"(?:hunting|hunt) for (?:a )?(?:deal|bargain|gift)s?", r"sexy new", r"kill(?:s|ing)? (?:time|it)",
    r"shot at (?:winning|a prize)", r"first[- ]aid kit", r"blood orange", r"sleep(?:ing)? like the dead",
]
IDIOM = re.compile(r"\b(?:" + "|".join(IDIOMS) + r")\b", re.I)

LEXICON: dict[str, list[tuple[int, str]]] = {
    "violence": [
        (7, r"(?:mass )?shoot(?:ing)? up (?:a|the) (?:school|church|mall|crowd)|behead|massacre (?:them|everyone)"),
        (6, r"(?:i|we)(?:'ll| will| are going to| gonna) (?:kill|murder|stab|shoot|hurt|beat) (?:you|him|her|them)"),
        (6, r"\b(?:kill|murder|stab|shoot|strangle|torture) (?:you|him|her|them|everyone|people)\b"),
        (6, r"\b(?:bomb|blow up|set fire to|burn down) (?:the|your|their|a) \w+"),
        (6, r"\bbeat (?:you|him|her|them) (?:up|to death|senseless)\b|\bbreak (?:your|his|her) (?:legs|neck)\b"),
        (4, r"\b(?:murder(?:ed|s)?|massacre|slaughter(?:ed)?|bloodbath|gunfire|stabbing|assault(?:ed)?)\b"),
        (4, r"\b(?:weapons?|guns?|rifles?|grenades?|explosives?)\b"),
        (2, r"\b(?:fight|punch|attack|violent|violence|blood(?:y)?)\b"),
    ],
    "self_harm": [
        (7, r"\b(?:kill|hang|cut) yourself\b|\bkys\b|\bend (?:your|it) all\b|you should (?:die|not be alive)"),
        (6, r"\b(?:how to|ways to|best way to) (?:commit suicide|kill myself|end my life|self[- ]harm)\b"),
        (6, r"\bstarve yourself\b|\bstop eating (?:entirely|completely)\b|\bpurge after (?:every )?meals?\b"),
        (4, r"\b(?:suicid(?:e|al)|self[- ]harm(?:ing)?|cutting myself|overdos(?:e|ing))\b"),
        (2, r"\b(?:want to die|hopeless|worthless)\b"),
    ],
    "sexual": [
        (7, r"\b(?:child|minor|underage|teen) (?:porn|sex|nudes?)\b"),
        (6, r"\b(?:porn(?:ographic)?|xxx|explicit sex|sex tape|nudes?|naked pics|hardcore|orgasm|erotic massage)\b"),
        (6, r"\b(?:hook ?up tonight|sexual favou?rs?|escort service)\b"),
        (4, r"\b(?:sexy|seductive|lingerie|aroused|horny|strip(?:per|tease))\b"),
        (2, r"\b(?:flirt(?:y|ing)?|intimate|sensual)\b"),
    ],
    "hate": [
        (7, r"\b(?:exterminate|wipe out|get rid of) (?:all )?(?:the )?(?:immigrants|jews|muslims|christians|blacks|whites|gays|women|asians|mexicans)\b"),
        (6, r"\b(?:immigrants|jews|muslims|christians|blacks|whites|gays|women|asians|mexicans|foreigners) (?:are|is) (?:vermin|animals|subhuman|inferior|parasites|a disease|scum|trash)\b"),
        (6, r"\b(?:subhuman|untermensch|inferior race|racial purity|go back to your (?:own )?country)\b"),
        (4, r"\b(?:no (?:immigrants|foreigners|gays|women) (?:allowed|welcome)|those people are all)\b"),
        (2, r"\b(?:stereotyp\w+|discriminat\w+)\b"),
    ],
}
COMPILED = {cat: [(sev, re.compile(p, re.I)) for sev, p in pats] for cat, pats in LEXICON.items()}


def harm_scores(text: str) -> dict[str, int]:
    """Severity 0-7 per category for `text`, after removing known marketing idioms."""
    cleaned = IDIOM.sub(" ", text)
    return {cat: max((sev for sev, rx in COMPILED[cat] if rx.search(cleaned)), default=0)
            for cat in HARM_CATEGORIES}
