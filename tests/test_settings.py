"""Settings fail closed: every name checked, thresholds in range, a weaker policy only with a stated reason."""
import shutil

import pytest
import yaml

from config import CONFIG_DIR, load_backends, load_campaign, load_settings
from tasks.errors import InputError


def policy_folder(tmp_path, **changes):
    """A config folder whose policy.yaml is the default with `changes` applied."""
    shutil.copy(CONFIG_DIR / "campaign.yaml", tmp_path / "campaign.yaml")
    policy = yaml.safe_load((CONFIG_DIR / "policy.yaml").read_text())
    policy.update(changes)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    return tmp_path / "campaign.yaml"


def test_thresholds_of_99_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"category_thresholds.hate.*less than or equal to 7"):
        load_settings(policy_folder(tmp_path, category_thresholds={"hate": 99, "self_harm": 6, "sexual": 6, "violence": 6}))


def test_empty_rules_are_a_weaker_policy_and_refused(tmp_path):
    with pytest.raises(InputError) as e:
        load_settings(policy_folder(tmp_path, rules={}))
    assert "weaker than the floor" in str(e.value) and "missing_unsubscribe is off" in str(e.value)


def test_a_category_that_blocks_later_or_never_is_weaker(tmp_path):
    with pytest.raises(InputError, match=r"hate blocks only at severity 7.*\n.*violence can never block"):
        load_settings(policy_folder(tmp_path, category_thresholds={"hate": 7, "self_harm": 6, "sexual": 6}))


def test_a_can_spam_rule_switched_to_warn_is_weaker(tmp_path):
    rules = yaml.safe_load((CONFIG_DIR / "policy.yaml").read_text())["rules"] | {"missing_postal_address": "warn"}
    with pytest.raises(InputError, match="missing_postal_address is warn"):
        load_settings(policy_folder(tmp_path, rules=rules))


def test_every_rule_that_blocks_by_default_is_in_the_floor():
    """A blocking rule missing from the floor could be switched to warn or deleted with no statement."""
    default = yaml.safe_load((CONFIG_DIR / "policy.yaml").read_text())["rules"]
    floor = yaml.safe_load((CONFIG_DIR / "policy_floor.yaml").read_text())["rules"]
    assert {r for r, a in default.items() if a == "block"} <= {r for r, a in floor.items() if a == "block"}


def test_phishing_markup_and_language_rules_warned_or_deleted_are_weaker(tmp_path):
    rules = yaml.safe_load((CONFIG_DIR / "policy.yaml").read_text())["rules"]
    rules = {r: a for r, a in rules.items() if r != "unsafe_markup"} | {"credential_request": "warn",
                                                                      "unsupported_language": "warn"}
    with pytest.raises(InputError) as e:
        load_settings(policy_folder(tmp_path, rules=rules))
    for weakness in ("unsupported_language is warn", "unsafe_markup is off", "credential_request is warn"):
        assert weakness in str(e.value)


def test_a_stated_weakening_is_accepted_and_listed(tmp_path):
    rules = yaml.safe_load((CONFIG_DIR / "policy.yaml").read_text())["rules"] | {"shouting": "block", "pii": "warn"}
    _, policy, _ = load_settings(policy_folder(tmp_path, rules=rules, weakened={
        "reason": "internal test send to staff only", "approved_by": "A. Officer"}))
    assert policy.weaker_than_floor == ["rule pii is warn (floor: block)"]


def test_a_stricter_policy_needs_no_statement(tmp_path):
    _, policy, _ = load_settings(policy_folder(tmp_path, category_thresholds={c: 4 for c in
                                                                             ("hate", "self_harm", "sexual", "violence")}))
    assert policy.weaker_than_floor == []


def test_misspelled_rule_id_is_named_with_a_suggestion(tmp_path):
    rules = yaml.safe_load((CONFIG_DIR / "policy.yaml").read_text())["rules"] | {"missing_unsubscrbe": "block"}
    with pytest.raises(InputError, match=r"'missing_unsubscrbe' \(did you mean 'missing_unsubscribe'\?\)"):
        load_settings(policy_folder(tmp_path, rules=rules))


@pytest.mark.parametrize("overrides,message", [
    ({"generation.strategies": ["value", "urgncy", "loyalty"]}, r"'urgncy' \(did you mean 'urgency'\?\)"),
    ({"experiment.metrics": ["opened", "clicks"]}, r"unknown metric: 'clicks'"),
    ({"experiment.metrics": []}, "at least one metric"),
    ({"experiment.covariates": {"spend": "monetary"}}, "metric in covariates: 'spend'"),
    ({"experiment.treatment_weights": {"treatment_1": 1, "treatment_2": 0, "treatment_3": 1}}, "positive"),
    ({"experiment.treatment_weights": {"treatment_1": 1, "treatment_2": -1, "treatment_3": 1}}, "positive"),
    ({"experiment.treatment_weights": {"treatment_1": 1, "tretment_2": 1, "treatment_3": 1}}, "tretment_2"),
    ({"experiment.treatment_weights": {"treatment_1": 1}}, "every treatment arm"),
    ({"experiment.control_weight": 0}, "control_weight"),
    ({"seed": -1}, "seed"),
    ({"simulation.effects": [{"strategy": "vallue", "metric": "opened", "attribute": "age", "op": "<=",
                              "value": 3, "rel_lift": 0.1}]}, "vallue"),
    ({"segmentation.methd": "rfm"}, "methd"),
])
def test_campaign_names_and_ranges_are_checked(overrides, message):
    with pytest.raises(InputError, match=message):
        load_campaign(None, overrides)


def test_unknown_cpo_setting_in_the_environment_stops():
    with pytest.raises(InputError, match=r"'CPO_SCREENR' \(did you mean 'CPO_SCREENER'\?\)"):
        load_backends({"CPO_SCREENR": "azure"})


def test_every_cpo_setting_the_code_reads_is_known():
    """A new CPO_* variable must be registered, or setting it would stop every run."""
    import re
    from pathlib import Path

    from config import KNOWN_ENV

    root = Path(__file__).resolve().parents[1]
    used = {m for folder in ("flows", "tasks", "config") for p in (root / folder).rglob("*.py")
            for m in re.findall(r"\bCPO_[A-Z][A-Z_]+\b", p.read_text())}
    assert used - {"CPO_"} <= KNOWN_ENV, used - KNOWN_ENV


@pytest.mark.parametrize("reason", ["          ", "..........", "x"])
def test_a_blank_reason_is_no_reason(tmp_path, reason):
    with pytest.raises(InputError, match="not a reason"):
        load_settings(policy_folder(tmp_path, rules={}, weakened={"reason": reason}))
    with pytest.raises(InputError, match="not a reason"):
        load_campaign(None, {"consent.all_opted_in_basis": reason})


def test_allowing_more_merge_fields_is_a_weakening(tmp_path):
    with pytest.raises(InputError, match="merge fields allowed beyond the floor: email"):
        load_settings(policy_folder(tmp_path, allowed_merge_fields=["first_name", "email"]))


@pytest.mark.parametrize("overrides,message", [
    ({"segmentation.k_range": [0, 1]}, "greater than or equal to 2"),
    ({"segmentation.k_range": [6, 3]}, "smallest k comes first"),
    ({"simulation.effects": [{"strategy": "value", "metric": "opened", "attribute": "age", "op": "<=",
                              "value": "forty", "rel_lift": 0.1}]}, "needs a number"),
    ({"simulation.personalization_lift": {"openned": 0.05}}, "openned"),
])
def test_more_settings_are_checked(overrides, message):
    with pytest.raises(InputError, match=message):
        load_campaign(None, overrides)


def test_a_key_given_twice_in_yaml_is_refused(tmp_path):
    (tmp_path / "campaign.yaml").write_text("experiment: {alpha: 0.05}\nexperiment: {alpha: 0.2}\n")
    with pytest.raises(InputError, match="given twice: experiment"):
        load_campaign(tmp_path / "campaign.yaml")


def test_lowercase_or_blank_cpo_settings_stop():
    with pytest.raises(InputError, match="cpo_screener"):
        load_backends({"cpo_screener": "azure"})
    with pytest.raises(InputError, match="CPO_SCREENER set but empty"):
        load_backends({"CPO_SCREENER": " "})


def test_scale_settings_default_and_read():
    from config import load_scale

    assert load_scale({}).model_dump() == {"task_runner": "local", "partition_rows": 250_000, "scheduler_address": None}
    got = load_scale({"CPO_TASK_RUNNER": " Dask ", "CPO_PARTITION_ROWS": "50_000",
                      "DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.5:8786"})
    assert (got.task_runner, got.partition_rows, got.scheduler_address) == ("dask", 50_000, "tcp://10.0.0.5:8786")


@pytest.mark.parametrize("env, word", [({"CPO_TASK_RUNNER": "ray"}, "CPO_TASK_RUNNER"),
                                       ({"CPO_PARTITION_ROWS": "0"}, "CPO_PARTITION_ROWS"),
                                       ({"CPO_PARTITION_ROWS": "-5"}, "CPO_PARTITION_ROWS"),
                                       ({"CPO_PARTITION_ROWS": "1e5"}, "CPO_PARTITION_ROWS"),
                                       ({"CPO_PARTITION_ROWS": "many"}, "CPO_PARTITION_ROWS")])
def test_bad_scale_settings_stop_with_one_message(env, word):
    from config import load_scale

    with pytest.raises(InputError, match=word) as info:
        load_scale(env)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


@pytest.mark.parametrize("guardrails", [[], ["unsubscribed"]])
def test_guardrails_left_out_need_a_stated_reason(guardrails):
    """A blind attacker's find: `experiment.guardrails: []` silently turned off the unsubscribe and complaint
    checks. Like a weaker policy, it needs a statement, which then heads the design and the report."""
    from tasks.lifecycle import declarations
    with pytest.raises(InputError, match=r"experiment: .*guardrails leave out .*complained.*guardrails_weakened"):
        load_campaign(overrides={"experiment.guardrails": guardrails})
    stated = load_campaign(overrides={"experiment.guardrails": guardrails, "experiment.guardrails_weakened": {
        "reason": "transactional notice, unsubscribes are not a harm here", "approved_by": "Dana (legal)"}})
    _, policy, _ = load_settings()
    assert declarations({}, policy, stated.experiment) == [
        "Guardrails WEAKENED (approved by Dana (legal)): \"transactional notice, unsubscribes are not a harm here\" "
        f"— not checked: {', '.join(g for g in ('unsubscribed', 'complained') if g not in guardrails)}."]
    assert declarations({}, policy, load_campaign().experiment) == []
