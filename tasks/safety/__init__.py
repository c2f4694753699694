"""Safety: screen every variant before anything is assigned, fail closed, and keep the evidence."""
from __future__ import annotations

from typing import Protocol

from config import Policy
from tasks.records import HARM_CATEGORIES, Verdict
from tasks.safety.classifier import classifier_scores
from tasks.safety.harm import harm_scores
from tasks.safety.rules import RULES, Context, Message


SCREENERS = ("local", "azure", "openai-moderation", "guard-model")


class HarmScorer(Protocol):
    """Scores the four harm categories 0-7. Raises ScreenerUnavailable when it cannot (we fail closed)."""

    name: str

    def score(self, text: str) -> dict[str, int]: ...


class LocalHarmScorer:
    """The lexicon (readable, explainable patterns) and the learned classifier (new phrasings); the higher wins."""

    name = "local"

    def score(self, text: str) -> dict[str, int]:
        lexicon, learned = harm_scores(text), classifier_scores(text)
        return {c: max(lexicon[c], learned[c]) for c in lexicon}


class Screener:
    """Harm scores from the configured backend plus the local marketing rules, judged by the policy."""

    def __init__(self, scorer: HarmScorer, context: Context):
        self.scorer, self.context = scorer, context

    @property
    def name(self) -> str:
        return self.scorer.name

    def screen(self, message: Message) -> Verdict:
        scores = self.scorer.score(message.text)
        verdict = judge(scores, run_rules(message, self.context), self.context.policy, self.scorer.name)
        notes = getattr(self.scorer, "notes", lambda: [])()  # what the backend found outside our four categories
        if notes:
            extra = "; ".join(f"warn: {n}" for n in notes)
            reason = extra if verdict.reason == "all checks passed" else f"{verdict.reason}; {extra}"
            verdict = verdict.model_copy(update={"reason": reason})
        return verdict


def run_rules(message: Message, context: Context) -> dict[str, list[str]]:
    """Every rule named in the policy runs; the findings of those that found something."""
    found = {rule: RULES[rule](message, context) for rule in context.policy.rules if rule in RULES}
    return {rule: f for rule, f in found.items() if f}


def judge(scores: dict[str, int], findings: dict[str, list[str]], policy: Policy, screener: str) -> Verdict:
    """Block when a category reaches its threshold or a blocking rule fired; Medium scores and warn-rules
    are written into the reason but do not block."""
    blocks, warns = [], []
    for cat in HARM_CATEGORIES:
        if scores[cat] >= policy.category_thresholds[cat]:
            blocks.append(f"{cat} severity {scores[cat]}")
        elif scores[cat] >= policy.warn_at:
            warns.append(f"{cat} severity {scores[cat]}")
    for rule, items in findings.items():
        (blocks if policy.rules[rule] == "block" else warns).append(f"{rule}: {'; '.join(items)}")
    reason = "; ".join(blocks + [f"warn: {w}" for w in warns]) or "all checks passed"
    return Verdict(decision="block" if blocks else "pass", screener=screener, rules_triggered=sorted(findings),
                   reason=reason, **scores)


def make_harm_scorer(kind: str, competitors: list[str] = ()) -> HarmScorer:
    """`competitors` feed the service-side blocklist of backends that have one (azure); the local
    competitor_mention rule blocks them either way."""
    if kind == "local":
        return LocalHarmScorer()
    if kind == "azure":
        from tasks.safety.azure import AzureHarmScorer  # lazy: the SDK is only needed for this backend

        return AzureHarmScorer.from_env(competitors=competitors)
    if kind == "openai-moderation":
        from tasks.safety.moderation import OpenAIModerationScorer

        return OpenAIModerationScorer.from_env()
    if kind == "guard-model":
        from tasks.safety.guard import GuardModelScorer

        return GuardModelScorer.from_env()
    raise ValueError(f"unknown screener {kind!r} (known: {', '.join(SCREENERS)})")


def message_of(variant) -> Message:
    return Message(subject=variant.subject, body=variant.body, preheader=variant.preheader,
                   citations=list(variant.citations))


def passed_by_segment(variants, segments: list[str], minimum: int) -> dict[str, dict[int, str]]:
    """segment -> {slot: variant_id} of passed variants; fails closed when a segment has fewer than `minimum`."""
    from tasks.errors import SafetyGateError

    passed = {s: {} for s in segments}
    for v in variants:
        if v.status == "passed":
            passed[v.segment][v.slot] = v.variant_id
    short = {s: len(p) for s, p in passed.items() if len(p) < minimum}
    if short:
        raise SafetyGateError(f"safety gate: too few passing variants in segment(s) {short} "
                              f"(need at least {minimum} each); nothing was assigned")
    return passed
