"""deployments/prefect.yaml points at a real flow with parameters it accepts and a valid schedule."""
import importlib.util
import inspect
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_deployment_entrypoint_parameters_and_schedule():
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    (deployment,) = spec["deployments"]
    path, name = deployment["entrypoint"].split(":")
    module_spec = importlib.util.spec_from_file_location("entry", ROOT / path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    flow = getattr(module, name)
    accepted = inspect.signature(flow.fn).parameters
    assert set(deployment["parameters"]) <= set(accepted)
    assert all((ROOT / v).exists() for v in deployment["parameters"].values())
    from prefect.client.schemas.schedules import CronSchedule
    assert CronSchedule(cron=deployment["schedules"][0]["cron"], timezone="UTC")
