"""Safety: screen every variant before anything is assigned, fail closed, and keep the evidence."""
from __future__ import annotations

import threading
from typing import Protocol

from config import Policy
from tasks.records import HARM_CATEGORIES, Verdict
from tasks.safety.classifier import classifier_scores
from tasks.safety.harm import findings, prepare, scores_and_evidence
from tasks.safety.rules import DECLINING, RULES, Context, Message


SCREENERS = ("local", "azure", "openai-moderation", "guard-model")


class HarmScorer(Protocol):
    """Scores the four harm categories 0-7. Raises ScreenerUnavailable when it cannot (we fail closed)."""

    name: str

    def score(self, text: str) -> dict[str, int]: ...


class LocalHarmScorer:
    """The lexicon (readable, explainable patterns, each with an id) and the learned classifier (new phrasings).

    The classifier cannot block on its own: where it is confident and the lexicon found the same category at
    least at Low, the category scores High (6); where the lexicon found nothing, the classifier's finding is a
    warning (Medium, 4) for a reviewer. So every block cites a lexicon pattern. (Measured on text written by
    others, the classifier alone blocked 44% of refusals and 5% of marketing paragraphs: README, Evaluation.)
    `evidence()` names what gave each category its score on this thread's last call."""

    name = "local"
    languages = ("en",)  # what the lexicon and the classifier were built for (rule unsupported_language)

    def __init__(self):
        self._local = threading.local()

    def score(self, text: str) -> dict[str, int]:
        prepared = prepare(text)
        found = findings(prepared, summary=True)  # what the scores, the evidence and `raisable` read
        (lexicon, ids), learned = scores_and_evidence(prepared, found), classifier_scores(prepared)
        # the classifier raises a lexicon finding only where context did not lower it: a match in a refusal, a
        # negation or a declining answer stays what context made it
        raisable = {c: any(f.category == c and not f.lowered for f in found) for c in lexicon}
        if prepared.declining:
            learned = {c: min(v, 4) for c, v in learned.items()}
        scores, evidence = {}, {}
        for c in lexicon:
            if learned[c] >= 6 and raisable[c]:
                scores[c], evidence[c] = max(lexicon[c], 6), ids[c] + ["classifier"]
            elif learned[c] >= 6:
                scores[c], evidence[c] = max(lexicon[c], 4), ["classifier"]
            else:
                scores[c], evidence[c] = lexicon[c], ids[c]
        self._local.evidence = {c: e for c, e in evidence.items() if scores[c] and e}
        return scores

    def evidence(self) -> dict[str, list[str]]:
        return getattr(self._local, "evidence", {})


class Screener:
    """Harm scores from the configured backend plus the local marketing rules, judged by the policy."""

    def __init__(self, scorer: HarmScorer, context: Context):
        self.scorer, self.context = scorer, context

    @property
    def name(self) -> str:
        return self.scorer.name

    def screen(self, message: Message) -> Verdict:
        scores = self.scorer.score(message.text)
        evidence = getattr(self.scorer, "evidence", dict)()  # which lexicon patterns (or the classifier) scored
        skip = () if getattr(self.scorer, "languages", None) else ("unsupported_language",)  # multilingual backend
        found = run_rules(message, self.context, skip)
        if max(scores.values(), default=0) < self.context.policy.warn_at:
            # an opening that reads as declining matters only where it lowered some harm to a warning: copy such as
            # "We don't offer this discount to everyone" with no harm in it is not a model's refusal
            echo = [f for f in found.get("prompt_echo", []) if not f.startswith(DECLINING)]
            found = {r: f for r, f in found.items() if r != "prompt_echo"} | ({"prompt_echo": echo} if echo else {})
        verdict = judge(scores, found, self.context.policy, self.scorer.name, evidence)
        notes = getattr(self.scorer, "notes", lambda: [])()  # what the backend found outside our four categories
        if notes:
            extra = "; ".join(f"warn: {n}" for n in notes)
            reason = extra if verdict.reason == "all checks passed" else f"{verdict.reason}; {extra}"
            verdict = verdict.model_copy(update={"reason": reason})
        return verdict


def run_rules(message: Message, context: Context, skip=()) -> dict[str, list[str]]:
    """Every rule named in the policy runs (but those in `skip`); the findings of those that found something."""
    found = {rule: RULES[rule](message, context) for rule in context.policy.rules if rule in RULES and rule not in skip}
    return {rule: f for rule, f in found.items() if f}


def judge(scores: dict[str, int], findings: dict[str, list[str]], policy: Policy, screener: str,
          evidence: dict[str, list[str]] | None = None) -> Verdict:
    """Block when a category reaches its threshold or a blocking rule fired; Medium scores and warn-rules
    are written into the reason but do not block. `evidence` (category -> pattern ids) is cited."""
    blocks, warns = [], []
    for cat in HARM_CATEGORIES:
        cite = f" [{', '.join(evidence[cat])}]" if evidence and evidence.get(cat) else ""
        if scores[cat] >= policy.category_thresholds[cat]:
            blocks.append(f"{cat} severity {scores[cat]}{cite}")
        elif scores[cat] >= policy.warn_at:
            warns.append(f"{cat} severity {scores[cat]}{cite}")
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
