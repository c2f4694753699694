"""The manifest: everything that reproduces a run (inputs with SHA-256, config, seed, versions, backends),
what it decided (counts, design, audit head) and how long each stage took. Written last."""
from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from importlib import metadata

from tasks.experiment.assign import HOLDOUT

PACKAGES = ["prefect", "polars", "great-expectations", "scikit-learn", "pingouin", "numpy", "pydantic"]


def build_manifest(run, run_id, campaign, policy, backends, inputs, audit, truth, customers: int, assignments,
                   variants, design, simulated: bool = True) -> dict:
    arms = assignments.group_by("arm").len().sort("arm").to_dicts()
    return {
        "run_id": run_id, "status": "complete",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": inputs["inputs"],
        "config": campaign.model_dump(mode="json"), "policy_version": policy.policy_version,
        "seed": campaign.seed, "backends": backends.model_dump(),
        "simulated": simulated,
        "simulation": ({"note": "engagement is SIMULATED from documented assumptions; no email was sent",
                        "assumptions": campaign.simulation.model_dump(mode="json"), "true_rel_lift": truth}
                       if simulated else {"note": "nothing simulated: outcomes were read back from the email "
                                                  "service's events (cpo outcomes)"}),
        "counts": {"customers": customers, "assigned": int((assignments["arm"] != HOLDOUT).sum()),
                   "arms": {a["arm"]: a["len"] for a in arms}, "variants": len(variants),
                   "variants_passed": sum(v.status == "passed" for v in variants)},
        "design": {"target_lift": campaign.experiment.target_lift, "power": campaign.experiment.power, "arms": design},
        "audit": {"rows": audit.count, "head": audit.head},
        "seconds": run.seconds,
        "versions": versions(),
    }


def versions() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(), **{p: _version(p) for p in PACKAGES}}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
