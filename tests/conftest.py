import os
import secrets
from datetime import date
from pathlib import Path

import polars as pl
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("CPO_AUDIT_KEY", secrets.token_hex(32))  # runs and verify in the tests share one key

from hypothesis import HealthCheck, settings  # noqa: E402

# Profiles load before any test module, so every property test in CI runs the same examples (derandomized);
# HYPOTHESIS_PROFILE=long searches wider with fresh randomness.
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=600, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

import prefect.main  # noqa: E402,F401 - Prefect's console handler binds the real stderr now, not a test's capture

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
TODAY = date(2026, 11, 24)


@pytest.fixture(scope="session")
def settings():
    from config import load_settings
    return load_settings()


@pytest.fixture(scope="session")
def documents():
    from tasks.content import load_documents
    return load_documents(SAMPLE / "content")


@pytest.fixture(scope="session")
def context(settings, documents):
    from tasks.safety.rules import Context
    _, policy, brand = settings
    return Context(brand, policy, {d.id: d for d in documents}, TODAY, 60)


@pytest.fixture
def customers():
    return pl.DataFrame({"customer_id": ["a", "b", "c"], "recency_days": [3.0, 40.0, 300.0],
                         "frequency": [12.0, 4.0, 1.0], "monetary": [900.0, 200.0, 20.0],
                         "email": ["a@example.com", "b@example.com", "c@example.com"],
                         "email_opt_in": [True, True, False]})


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test in the session (~18 s to start)."""
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness(server_startup_timeout=120):
        yield
