"""Campaign, policy and brand settings: YAML files loaded into pydantic models with clear errors."""
from __future__ import annotations

import difflib
import hashlib
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasks.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parent
PROJECT_DIR = CONFIG_DIR.parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


METRICS = ("opened", "clicked", "converted", "revenue")  # what a campaign measures (and the simulator draws)
GUARDRAILS = ("unsubscribed", "complained")  # harms a message can cause: tested one-sided, they veto a winner
HARM_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
Severity = Annotated[int, Field(ge=0, le=7)]


def unknown_names(given, known, what: str) -> str | None:
    """A sentence naming each unknown name with the closest known one, or None when all are known."""
    bad = [g for g in given if g not in known]
    if not bad:
        return None
    hints = [f"'{b}'" + (f" (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(str(b), list(known), 1)) else "")
             for b in bad]
    return f"unknown {what}: {', '.join(hints)}; known: {', '.join(known)}"


def strategy_names() -> list[str]:
    return list(yaml.safe_load((CONFIG_DIR / "strategies.yaml").read_text(encoding="utf-8")))


class Segmentation(_Strict):
    method: Literal["rfm", "kmeans"] = "rfm"
    k_range: tuple[Annotated[int, Field(ge=2, le=20)], Annotated[int, Field(ge=2, le=20)]] = Field(
        (3, 6), description="k-means: k chosen by silhouette within this range (2 to 20, smallest first)")
    min_segment_share: float = Field(0.05, ge=0, lt=0.5)
    features: list[Literal["recency_days", "frequency", "monetary"]] = Field(
        ["recency_days", "frequency", "monetary"],
        description="what k-means clusters on: the RFM fields (other attributes are not clustered on yet)")


    @model_validator(mode="after")
    def _ordered(self):
        if self.k_range[0] > self.k_range[1]:
            raise ValueError(f"k_range {list(self.k_range)}: the smallest k comes first")
        return self


class Retrieval(_Strict):
    top_k: int = Field(6, ge=1, le=50)


class Generation(_Strict):
    variants_per_segment: int = Field(3, ge=1, le=10)
    strategies: list[str] = ["value", "urgency", "loyalty", "spotlight", "education"]
    max_attempts: int = Field(3, ge=1, le=10)
    subject_max_chars: int = Field(60, ge=20, le=78)

    @model_validator(mode="after")
    def _enough_strategies(self):
        if problem := unknown_names(self.strategies, strategy_names(), "strategy (config/strategies.yaml)"):
            raise ValueError(problem)
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies are listed twice: {self.strategies}")
        if len(self.strategies) < self.variants_per_segment:
            raise ValueError(f"{self.variants_per_segment} variants per segment need at least as many strategies "
                             f"(have {len(self.strategies)}: {self.strategies})")
        return self


def _a_statement(text: str | None) -> str | None:
    """A reason a person wrote: at least ten characters, three of them letters (not blanks or dots)."""
    if text is not None and (len(text.strip()) < 10 or sum(c.isalpha() for c in text) < 3):
        raise ValueError(f"{text!r} is not a reason: write in words why (at least 10 characters)")
    return text.strip() if text is not None else None


class Weakened(_Strict):
    reason: str = Field(description="why this campaign may be screened under a weaker policy")
    approved_by: str = ""

    _reason = field_validator("reason")(classmethod(lambda cls, v: _a_statement(v)))


class Experiment(_Strict):
    control_weight: float = Field(0.25, gt=0, lt=1)
    holdout_weight: float = Field(0.0, ge=0, lt=0.5)
    treatment_weights: dict[str, float] | None = Field(None, description="relative weights of treatment_k arms")
    metrics: list[str] = ["opened", "clicked", "converted", "revenue"]
    alpha: float = Field(0.05, gt=0, lt=0.5)
    correction: Literal["holm", "bh"] = "holm"
    min_passed_variants_per_segment: int = Field(1, ge=1)
    target_lift: float = Field(0.10, gt=0, description="the relative lift the campaign hopes to detect")
    power: float = Field(0.8, gt=0.5, lt=1)
    covariates: dict[str, str] = Field({}, description="metric -> pre-period column for CUPED")
    min_eligible_customers: int = Field(20, ge=1, description="fewer customers who may be emailed stop the run")
    primary_metric: str | None = Field(None, description="the pre-registered metric that decides the winner; "
                                                         "default: the first metric")
    cap_percentile: float | None = Field(0.99, gt=0.5, lt=1, description="winsorise capped metrics at this "
                                         "percentile of their non-zero values, pooled over arms; null: no capping")
    capped_metrics: list[str] | None = Field(None, description="metrics to cap; default: revenue-like names")
    guardrails: list[str] = Field(list(GUARDRAILS), description="rates an arm must not raise significantly "
                                  "(one-sided); an arm that does is flagged and cannot win")
    guardrails_weakened: Weakened | None = Field(None, description="required when `guardrails` leaves out one of "
                                                 "the defaults (unsubscribed, complained)")

    @property
    def primary(self) -> str:
        return self.primary_metric or self.metrics[0]

    @property
    def guardrails_dropped(self) -> list[str]:
        """The default guardrails this experiment leaves out (each a weakening that must be stated)."""
        return [g for g in GUARDRAILS if g not in self.guardrails]

    def caps(self) -> dict[str, float]:
        """metric -> winsorising percentile for the metrics this experiment caps."""
        if not self.cap_percentile:
            return {}
        if self.capped_metrics is not None:
            return {m: self.cap_percentile for m in self.capped_metrics}
        from tasks.experiment.analysis import default_caps
        return default_caps(self.metrics, self.cap_percentile)

    @model_validator(mode="after")
    def _known_names(self):
        if not self.metrics:
            raise ValueError("metrics: at least one metric is needed")
        if problem := unknown_names(self.metrics, METRICS, "metric") or unknown_names(
                self.covariates, self.metrics, "metric in covariates"):
            raise ValueError(problem)
        if problem := unknown_names([self.primary_metric] if self.primary_metric else [], self.metrics,
                                    "primary_metric (it must be one of the metrics)"):
            raise ValueError(problem)
        if problem := unknown_names(self.capped_metrics or [], self.metrics, "metric in capped_metrics"):
            raise ValueError(problem)
        if problem := unknown_names(self.guardrails, GUARDRAILS, "guardrail"):
            raise ValueError(problem)
        if (dropped := self.guardrails_dropped) and self.guardrails_weakened is None:
            raise ValueError(f"guardrails leave out {', '.join(dropped)}: an arm that raises them could win unnoticed. "
                             "Restore them, or state why with `guardrails_weakened: {reason: ..., approved_by: ...}` "
                             "under experiment; that statement then heads the design and the report")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics are listed twice: {self.metrics}")
        bad = {a: w for a, w in (self.treatment_weights or {}).items()
               if not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0}
        if bad:
            raise ValueError(f"treatment_weights must be positive numbers; got {bad}")
        return self


class Effect(_Strict):
    strategy: str
    metric: Literal["opened", "clicked", "converted"]
    attribute: str
    op: Literal["<=", ">=", "<", ">", "==", "in"]
    value: Any
    rel_lift: float = Field(ge=-0.9, le=3)

    @model_validator(mode="after")
    def _comparable(self):
        if self.op in ("<=", ">=", "<", ">") and not isinstance(self.value, (int, float)):
            raise ValueError(f"effect on {self.attribute}: '{self.op}' needs a number, got {self.value!r}")
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError(f"effect on {self.attribute}: 'in' needs a list, got {self.value!r}")
        return self


class Simulation(_Strict):
    enabled: bool = True
    default_open_rate: float = Field(0.22, gt=0, lt=1)
    default_click_given_open: float = Field(0.18, gt=0, lt=1)
    convert_given_click: float = Field(0.12, gt=0, lt=1)
    personalization_lift: dict[Literal["opened", "clicked"], float] = {}
    effects: list[Effect] = []


class Consent(_Strict):
    all_opted_in_basis: str | None = Field(
        None, description="set only when every customer in the file consented to marketing email: why (e.g. "
                          "'double opt-in at sign-up, checked by CRM export 2026-11-30'); recorded in the "
                          "manifest and the report")

    _basis = field_validator("all_opted_in_basis")(classmethod(lambda cls, v: _a_statement(v)))


class ControlMessage(_Strict):
    """The brand's business-as-usual email for the control arm: screened and audited like every variant."""
    email: bool = Field(True, description="false: control receives no email (the report says so)")
    subject: str = Field("News from us this season", min_length=1, max_length=200)
    preheader: str = ""
    body: str = Field("Hi {first_name},\n\nHere is what is new with us this season.", min_length=1)


class Send(_Strict):
    mode: Literal["simulate", "export"] = Field("simulate", description="simulate engagement, or export "
                                                "sends.csv for the email service (--send)")
    merge_fallbacks: dict[str, str] = Field({"first_name": "there"}, description="a merge field's value when a "
                                            "customer has none")
    list_unsubscribe_mailto: str | None = Field(None, description="an address for the mailto: part of the "
                                                "List-Unsubscribe header, beside the one-click URL")
    parquet_from_rows: int = Field(100_000, ge=1, description="sends.parquet is written too from this many rows")

    @field_validator("merge_fallbacks")
    @classmethod
    def _plain(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k, text in v.items() if not text.strip() or "{" in text or "}" in text)
        if bad:
            raise ValueError(f"merge_fallbacks for {', '.join(bad)} must be plain words (not empty, no braces)")
        return v


class Rollout(_Strict):
    holdout: float = Field(0.1, gt=0, le=0.5, description="share of the rollout kept on control's message, to "
                                                            "keep measuring")


class Campaign(_Strict):
    name: str = Field("campaign", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    seed: int = Field(42, ge=0, le=2**32 - 1)
    consent: Consent = Consent()
    columns: dict[str, str] = {}
    segmentation: Segmentation = Segmentation()
    retrieval: Retrieval = Retrieval()
    generation: Generation = Generation()
    experiment: Experiment = Experiment()
    simulation: Simulation = Simulation()
    control_message: ControlMessage = ControlMessage()
    send: Send = Send()
    rollout: Rollout = Rollout()

    @model_validator(mode="after")
    def _arms_and_strategies(self):
        arms = [f"treatment_{k}" for k in range(1, self.generation.variants_per_segment + 1)]
        weights = self.experiment.treatment_weights
        if weights is not None and (problem := unknown_names(weights, arms, "arm in experiment.treatment_weights")
                                    or (f"experiment.treatment_weights must name every treatment arm ({', '.join(arms)})"
                                        if set(weights) != set(arms) else None)):
            raise ValueError(problem)
        if problem := unknown_names([e.strategy for e in self.simulation.effects], strategy_names(),
                                    "strategy in simulation.effects"):
            raise ValueError(problem)
        return self


class Policy(_Strict):
    version: str
    category_thresholds: dict[Literal["hate", "self_harm", "sexual", "violence"], Severity]
    warn_at: Severity = 4
    max_attempts: int = Field(3, ge=1, le=10)
    rules: dict[str, Literal["block", "warn"]]
    allowed_merge_fields: list[str] = ["first_name"]
    claim_terms: list[str] = []
    weakened: Weakened | None = Field(None, description="required when the policy is weaker than the floor")
    sha256: str = ""  # filled by the loader: the policy's content hash goes into every audit row
    screening_sha256: str = ""  # filled by the loader: the embedded screener's data (lexicon, classifier artefact)
    weaker_than_floor: list[str] = []  # filled by the loader: each way this policy is weaker than policy_floor.yaml

    @model_validator(mode="after")
    def _known_rules(self):
        from tasks.safety.rules import RULES  # lazy: the rules module imports this one

        if problem := unknown_names(self.rules, list(RULES), "rule id in rules"):
            raise ValueError(problem)
        return self

    @property
    def policy_version(self) -> str:
        """version + policy file hash + the hash of the screening data the decisions were made with (the
        lexicon, the language profiles and the classifier artefact): retraining the model is a new version."""
        screening = f".{self.screening_sha256[:8]}" if self.screening_sha256 else ""
        return f"{self.version}+{self.sha256[:12]}{screening}"

    def weaknesses(self, floor: "Policy") -> list[str]:
        """Each way this policy lets through what the floor would stop."""
        out = [f"{c} blocks only at severity {self.category_thresholds[c]} (floor: {t})" if c in self.category_thresholds
               else f"{c} can never block (no threshold; floor: {t})"
               for c, t in floor.category_thresholds.items() if self.category_thresholds.get(c, 8) > t]
        out += [f"rule {r} is {self.rules.get(r, 'off')} (floor: block)"
                for r, action in floor.rules.items() if action == "block" and self.rules.get(r) != "block"]
        extra = sorted(set(self.allowed_merge_fields) - set(floor.allowed_merge_fields))
        if extra:
            out.append(f"merge fields allowed beyond the floor: {', '.join(extra)}")
        missing = [t for t in floor.claim_terms if t.lower() not in {c.lower() for c in self.claim_terms}]
        if missing:
            out.append(f"claim terms no longer checked: {', '.join(missing)}")
        return out


class Brand(_Strict):
    company_name: str
    postal_address: str
    unsubscribe_url: str
    contact_email: str = ""
    signature: str = ""
    competitors: list[str] = []


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise yaml.constructor.ConstructorError(None, None, f"key(s) given twice: {', '.join(twice)}",
                                                    node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeys) or {}
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    return data


def _build(model: type[BaseModel], data: dict, path: Path):
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = [f"  {'.'.join(map(str, err['loc'])) or '(top)'}: {err['msg']}" for err in e.errors()]
        raise InputError(f"{path}: invalid configuration\n" + "\n".join(lines)) from None


def load_campaign(path: str | Path | None = None, overrides: dict | None = None) -> Campaign:
    """Load campaign.yaml; `overrides` are dotted keys from the CLI (e.g. generation.variants_per_segment)."""
    path = Path(path) if path else CONFIG_DIR / "campaign.yaml"
    data = _read_yaml(path)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return _build(Campaign, data, path)


def load_policy(path: str | Path | None = None) -> Policy:
    """A policy weaker than config/policy_floor.yaml (a harm category that blocks later or never, a blocking
    rule switched to warn or off, claim terms dropped) is refused unless it states `weakened.reason`."""
    path = Path(path) if path else CONFIG_DIR / "policy.yaml"
    policy = _build(Policy, _read_yaml(path), path)
    floor_path = CONFIG_DIR / "policy_floor.yaml"
    weaker = policy.weaknesses(_build(Policy, _read_yaml(floor_path), floor_path))
    if weaker and policy.weakened is None:
        raise InputError(f"{path}: the screening policy is weaker than the floor ({floor_path.name}):\n"
                         + "\n".join(f"  {w}" for w in weaker)
                         + "\nRestore it, or state why with `weakened: {reason: ..., approved_by: ...}` in the "
                           "policy file; that statement then heads the design and the report.")
    return policy.model_copy(update={"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                     "screening_sha256": screening_sha256(), "weaker_than_floor": weaker})


# What the embedded screener decides with, besides the policy: its hash is part of policy_version.
SCREENING_DATA = (CONFIG_DIR / "screening", PROJECT_DIR / "data" / "models" / "harm-classifier.joblib")


def screening_sha256() -> str:
    digest = hashlib.sha256()
    for root in SCREENING_DATA:
        for path in sorted(root.glob("*.yaml")) if root.is_dir() else [root]:
            digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"missing") + b"\0")
    return digest.hexdigest()


def load_brand(path: str | Path | None = None) -> Brand:
    path = Path(path) if path else CONFIG_DIR / "brand.yaml"
    return _build(Brand, _read_yaml(path), path)


def load_settings(campaign_path: str | Path | None = None, overrides: dict | None = None):
    """Campaign, policy and brand. policy.yaml and brand.yaml are taken from beside the campaign file when
    present there, so a whole config folder can be swapped with one --config."""
    folder = Path(campaign_path).parent if campaign_path else CONFIG_DIR
    pick = lambda name: folder / name if (folder / name).exists() else CONFIG_DIR / name  # noqa: E731
    return load_campaign(campaign_path, overrides), load_policy(pick("policy.yaml")), load_brand(pick("brand.yaml"))


class Backends(_Strict):
    """Which backend of each kind runs; chosen by environment variables, never by code edits."""

    generator: Literal["local", "openai", "azure-openai"] = "local"
    retriever: Literal["local", "azure-search"] = "local"
    screener: Literal["local", "azure", "openai-moderation", "guard-model"] = "local"
    rate_limits: Literal["process", "prefect"] = "process"  # each process's own, or Prefect's, shared by all


# Every CPO_* environment variable cpo reads. Any other CPO_* name is a typo that would silently leave a
# setting at its default (a misspelled screener setting would screen locally), so it stops the run.
KNOWN_ENV = {
    "CPO_GENERATOR", "CPO_RETRIEVER", "CPO_SCREENER", "CPO_OPENAI_MODEL", "CPO_OPENAI_CONCURRENCY", "CPO_OPENAI_RPM",
    "CPO_OPENAI_TPM", "CPO_OPENAI_TIMEOUT", "CPO_OPENAI_MAX_RETRIES", "CPO_OPENAI_BACKOFF", "CPO_OPENAI_MAX_TOKENS",
    "CPO_OPENAI_TEMPERATURE", "CPO_CACHE_DIR", "CPO_PROJECT_DIR", "CPO_HILLSTROM", "CPO_RUNS_DIR", "CPO_AUDIT_KEY",
    "CPO_MODERATION_MODEL", "CPO_GUARD_BASE_URL", "CPO_GUARD_MODEL", "CPO_GUARD_API_KEY",
    "CPO_TASK_RUNNER", "CPO_PARTITION_ROWS", "CPO_RATE_LIMITS",
}  # a setting is added here when the code that reads it lands: a name set for a feature that is not built stops


def load_backends(env: dict | None = None) -> Backends:
    import os

    env = os.environ if env is None else env
    if problem := unknown_names(sorted(k for k in env if k.upper().startswith("CPO_") and k not in KNOWN_ENV),
                                sorted(KNOWN_ENV), "setting in the environment"):
        raise InputError(f"environment: {problem}")
    blank = sorted(k for k in ("CPO_GENERATOR", "CPO_RETRIEVER", "CPO_SCREENER") if k in env and not env[k].strip())
    if blank:
        raise InputError(f"environment: {', '.join(blank)} set but empty; unset it for the default or name a backend")
    data = {k: env[f"CPO_{k.upper()}"].strip().lower() for k in ("generator", "retriever", "screener", "rate_limits")
            if env.get(f"CPO_{k.upper()}", "").strip()}
    try:
        return Backends.model_validate(data)
    except ValidationError as e:
        lines = [f"  CPO_{str(err['loc'][0]).upper()}: {err['msg']}" for err in e.errors()]
        raise InputError("environment: invalid backend setting\n" + "\n".join(lines)) from None


class Scale(_Strict):
    """Where the per-customer stages run and over how many customers per partition (INTERFACE: Scale-out)."""

    task_runner: Literal["local", "dask"] = "local"
    partition_rows: int = Field(250_000, gt=0)
    scheduler_address: str | None = None  # DASK_SCHEDULER_ADDRESS: an existing Dask cluster


def load_scale(env: dict | None = None) -> Scale:
    """CPO_TASK_RUNNER (local | dask) and CPO_PARTITION_ROWS (a positive whole number); a bad value stops the
    run before any work (exit 2) with one message."""
    import os

    env = os.environ if env is None else env
    runner = env.get("CPO_TASK_RUNNER", "").strip().lower() or "local"
    if runner not in ("local", "dask"):
        raise InputError(f"environment: CPO_TASK_RUNNER={env.get('CPO_TASK_RUNNER')!r} is not a task runner; "
                         "use local (the default) or dask")
    text = env.get("CPO_PARTITION_ROWS", "").strip().replace("_", "")
    rows = 250_000
    if text:
        if not (text.isascii() and text.isdigit()) or int(text) <= 0:
            raise InputError(f"environment: CPO_PARTITION_ROWS={env.get('CPO_PARTITION_ROWS')!r} must be a whole "
                             "number of customers per partition, 1 or more (default 250000)")
        rows = int(text)
    return Scale(task_runner=runner, partition_rows=rows,
                 scheduler_address=(env.get("DASK_SCHEDULER_ADDRESS") or "").strip() or None)
