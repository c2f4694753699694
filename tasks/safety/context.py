"""Context the embedded scorer reads around a match: is the sentence a refusal?

A refusal names the harmful topic in order to decline it ("I can't help you hurt yourself", "I won't write
instructions for making a bomb", "Sorry, but I cannot provide that"). It is the opposite of promoting harm,
and a scorer that blocks it blocks the safest answers a model gives. A sentence is a refusal when its main
clause is a first-person (or "this assistant") decline of a speech act: can't/cannot/won't/will not/am not
able to/must decline/refuse to + help, assist, provide, give, write, create, share, explain, describe, ...;
or an apology followed by such a decline; or the stock forms "I'm sorry, but I can't", "It is not appropriate
to", "I must decline". Harm matches in a refusal score Low.
"""
from __future__ import annotations

import re

SPEECH_ACT = (r"(?:help|assist|aid|support|provide|give|offer|write|create|generate|produce|draft|compose|share|"
              r"explain|describe|detail|list|tell|teach|show|suggest|recommend|encourage|promote|condone|endorse|"
              r"engage|participate|answer|respond|comply|fulfil+|do that|do this|continue|make|facilitate|"
              r"discuss|go into|walk you through|instruct|advise|guide|helping|assisting|providing|giving|writing|creating|"
              r"generating|producing|sharing|explaining|describing|detailing|listing|telling|teaching|encouraging|"
              r"promoting|engaging|participating|discussing|making)")
DECLINE = (r"(?:can ?not|can't|cant|won't|wont|will not|would not|wouldn't|must not|mustn't|shall not|do not|don't|"
           r"am not (?:able|allowed|going|comfortable|programmed|designed|permitted) to|'m not (?:able|allowed|going|"
           r"comfortable|programmed|designed|permitted) to|am unable to|'m unable to|must (?:decline|refuse)|"
           r"have to (?:decline|refuse)|refuse to|decline to|cannot in good conscience|can't in good conscience|"
           r"(?:do not|don't|do n't) (?:feel comfortable|think i (?:can|should|will))|(?:am|'m) not comfortable|"
           r"(?:will|'ll) not be (?:able to|providing|writing|helping))")
# Words that may stand between the decline and what is declined ("I can't really help", "I won't be able to
# provide"); any other ("We can't wait to show you") makes it no refusal.
FILLER = (r"(?: (?:really|simply|possibly|ethically|legally|actually|personally|directly|further|fully|ever|be|able|to|"
          r"in good conscience|you|help you|assist you|continue to|go on to|and|or|nor|will|would|should|not|won't|"
          r"in any way|under any circumstances|knowingly|responsibly|safely))")
REFUSAL = re.compile(
    rf"^(?:(?:i'?m |i am )?(?:really |so |very |truly |deeply )?(?:sorry|apologi[sz]e|afraid|regret)[^.!?]{{0,60}}?(?:,|but|\.)?\s*)?"
    rf"(?:but |however,? |unfortunately,? |as an ai[^,]{{0,40}},\s*|as a (?:responsible|helpful|ethical)[^,]{{0,40}},\s*)?"
    rf"(?:i|we|this assistant|the assistant)(?: really| simply| absolutely| just)?(?: |(?=')){DECLINE}{FILLER}{{0,3}}? {SPEECH_ACT}\b"
    rf"|^(?:i'?m |i am )?sorry,? (?:but )?(?:i|that'?s|this is)\b[^.!?]{{0,30}}?\b(?:can'?t|cannot|not (?:something|able|"
    rf"appropriate))\b"
    rf"|^(?:it is|it's|that is|that's|this is) (?:not (?:appropriate|ethical|safe|okay|ok|acceptable|legal|something i)|"
    rf"(?:inappropriate|unethical|illegal|harmful|dangerous|never (?:okay|ok|acceptable|appropriate))) (?:to|for me to)\b"
    rf"|^i (?:must|have to|need to) (?:respectfully )?(?:decline|refuse)\b"
    rf"|^(?:please )?(?:do not|don't|never) (?:ever )?(?:attempt|try) (?:to )?\w+",
    re.I)


# Where a refusal's declined clause ends: what follows "but", "unless", "except", a semicolon, colon, comma or dash
# is not declined ("I won't help, but I will hurt you").
CLAUSE_END = re.compile(r"\s+(?:but|unless|except|however|yet|instead|and then)\b|[;:,\u2014\u2013]|\s-\s", re.I)
# A refusal that declines a request points back at it ("I can't help with that", "I won't provide instructions for
# ..."); "We can't wait to show you" or "We won't share your data" decline nothing asked. Copy such as "We don't
# offer this discount to everyone" reads as declining too: the screener lets it pass when nothing in it is harm.
REQUEST = re.compile(r"\b(?:that|this|it|such|those|these|your request|requests?|anything|any|content|material|"
                     r"information|instructions?|advice|assistance|guidance)\b", re.I)


def is_refusal(sentence: str) -> bool:
    return bool(REFUSAL.match(sentence.strip(" \"'*-")))


def refusal_split(sentence: str) -> tuple[str, str] | None:
    """(the declined clause, the rest of the sentence) when `sentence` is a refusal, else None. Only the declined
    clause names harm in order to decline it; the rest is read as any other text."""
    lead = len(sentence) - len(sentence.lstrip(" \"'*-"))
    m = REFUSAL.match(sentence[lead:].rstrip(" \"'*-"))
    if not m:
        return None
    end = CLAUSE_END.search(sentence, lead + m.end())
    return (sentence, "") if end is None else (sentence[:end.start()], sentence[end.start():].lstrip(" ;:,-\u2014\u2013"))


def declines_a_request(clause: str) -> bool:
    """A declined clause that refers back to what was asked: what opens a model's refusal."""
    return bool(REQUEST.search(clause))
