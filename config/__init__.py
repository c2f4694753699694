"""Campaign, policy and brand settings: YAML files loaded into pydantic models with clear errors."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasks.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parent
PROJECT_DIR = CONFIG_DIR.parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Segmentation(_Strict):
    method: Literal["rfm", "kmeans"] = "rfm"
    k_range: tuple[int, int] = Field((3, 6), description="k-means: k chosen by silhouette within this range")
    min_segment_share: float = Field(0.05, ge=0, lt=0.5)
    features: list[str] = ["recency_days", "frequency", "monetary"]


class Retrieval(_Strict):
    top_k: int = Field(6, ge=1, le=50)


class Generation(_Strict):
    variants_per_segment: int = Field(3, ge=1, le=10)
    strategies: list[str] = ["value", "urgency", "loyalty", "spotlight", "education"]
    max_attempts: int = Field(3, ge=1, le=10)
    subject_max_chars: int = Field(60, ge=20, le=78)

    @model_validator(mode="after")
    def _enough_strategies(self):
        if len(self.strategies) < self.variants_per_segment:
            raise ValueError(f"{self.variants_per_segment} variants per segment need at least as many strategies "
                             f"(have {len(self.strategies)}: {self.strategies})")
        return self


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
    cap_percentile: float | None = Field(0.99, gt=0.5, lt=1, description="winsorise capped metrics at this "
                                         "percentile of their non-zero values, pooled over arms; null: no capping")
    capped_metrics: list[str] | None = Field(None, description="metrics to cap; default: revenue-like names")

    def caps(self) -> dict[str, float]:
        """metric -> winsorising percentile for the metrics this experiment caps."""
        if not self.cap_percentile:
            return {}
        if self.capped_metrics is not None:
            return {m: self.cap_percentile for m in self.capped_metrics}
        from tasks.experiment.analysis import default_caps
        return default_caps(self.metrics, self.cap_percentile)


class Effect(_Strict):
    strategy: str
    metric: Literal["opened", "clicked", "converted"]
    attribute: str
    op: Literal["<=", ">=", "<", ">", "==", "in"]
    value: Any
    rel_lift: float = Field(ge=-0.9, le=3)


class Simulation(_Strict):
    enabled: bool = True
    default_open_rate: float = Field(0.22, gt=0, lt=1)
    default_click_given_open: float = Field(0.18, gt=0, lt=1)
    convert_given_click: float = Field(0.12, gt=0, lt=1)
    personalization_lift: dict[str, float] = {}
    effects: list[Effect] = []


class Campaign(_Strict):
    name: str = "campaign"
    seed: int = 42
    columns: dict[str, str] = {}
    segmentation: Segmentation = Segmentation()
    retrieval: Retrieval = Retrieval()
    generation: Generation = Generation()
    experiment: Experiment = Experiment()
    simulation: Simulation = Simulation()


class Policy(_Strict):
    version: str
    category_thresholds: dict[Literal["hate", "self_harm", "sexual", "violence"], int]
    warn_at: int = Field(4, ge=0, le=7)
    max_attempts: int = Field(3, ge=1, le=10)
    rules: dict[str, Literal["block", "warn"]]
    allowed_merge_fields: list[str] = ["first_name"]
    claim_terms: list[str] = []
    sha256: str = ""  # filled by the loader: the policy's content hash goes into every audit row

    @property
    def policy_version(self) -> str:
        return f"{self.version}+{self.sha256[:12]}"


class Brand(_Strict):
    company_name: str
    postal_address: str
    unsubscribe_url: str
    contact_email: str = ""
    signature: str = ""
    competitors: list[str] = []


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
    path = Path(path) if path else CONFIG_DIR / "policy.yaml"
    policy = _build(Policy, _read_yaml(path), path)
    return policy.model_copy(update={"sha256": hashlib.sha256(path.read_bytes()).hexdigest()})


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
    screener: Literal["local", "azure"] = "local"


def load_backends(env: dict | None = None) -> Backends:
    import os

    env = os.environ if env is None else env
    data = {k: env[f"CPO_{k.upper()}"].strip().lower() for k in ("generator", "retriever", "screener")
            if env.get(f"CPO_{k.upper()}", "").strip()}
    try:
        return Backends.model_validate(data)
    except ValidationError as e:
        lines = [f"  CPO_{str(err['loc'][0]).upper()}: {err['msg']}" for err in e.errors()]
        raise InputError("environment: invalid backend setting\n" + "\n".join(lines)) from None
