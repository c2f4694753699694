"""Rate limits shared through Prefect (CPO_RATE_LIMITS=prefect): two processes that report to one Prefect server
share one budget per service account (global concurrency limits with slot decay), as Dask workers or two
campaigns at once would. A real Prefect server, real processes."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config import load_backends
from tasks.errors import InputError
from tasks.services import RateLimiter, SharedRateLimiter, rate_limiter

ROOT = Path(__file__).resolve().parents[1]
ACQUIRE = textwrap.dedent("""
    import json, sys, time
    from tasks.services import rate_limiter
    limiter = rate_limiter("test-service", sys.argv[2], 4, 1.0)  # 4 requests a second, bursts of 4
    stamps = []
    for _ in range(int(sys.argv[1])):
        limiter.acquire()
        stamps.append(time.time())
    print(json.dumps(stamps))
""")


def acquisitions(per_process: int, account: str, mode: str) -> list[float]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT), "CPO_RATE_LIMITS": mode}
    procs = [subprocess.Popen([sys.executable, "-c", ACQUIRE, str(per_process), account], stdout=subprocess.PIPE,
                              env=env, text=True) for _ in range(2)]
    return sorted(s for p in procs for s in json.loads(p.communicate(timeout=120)[0]))


@pytest.mark.usefixtures("prefect_harness")
def test_two_processes_share_one_budget_through_prefect():
    stamps = acquisitions(8, "https://shared.example", "prefect")
    # 16 requests at 4 a second after a burst of 4: at least 3 s, whichever process made them
    assert stamps[-1] - stamps[0] >= 2.8
    # each process alone would have been done in about 1 s (its own rolling window of 4 a second)
    local = acquisitions(8, "https://local.example", "process")
    assert local[-1] - local[0] < stamps[-1] - stamps[0] - 1.0


@pytest.mark.usefixtures("prefect_harness")
def test_the_limit_is_created_and_corrected_on_first_use():
    from prefect.client.orchestration import get_client

    limiter = SharedRateLimiter("test-correct", requests=5, per=10.0, tokens=100)
    limiter.acquire(tokens=20)
    with get_client(sync_client=True) as client:
        found = client.read_global_concurrency_limit_by_name("cpo-rate-test-correct-requests")
        tokens = client.read_global_concurrency_limit_by_name("cpo-rate-test-correct-tokens")
    assert (found.limit, found.slot_decay_per_second) == (5, 0.5) and (tokens.limit, tokens.slot_decay_per_second) == (100, 10.0)
    SharedRateLimiter("test-correct", requests=3, per=1.0).acquire()  # settings changed: the limit follows them
    with get_client(sync_client=True) as client:
        found = client.read_global_concurrency_limit_by_name("cpo-rate-test-correct-requests")
    assert (found.limit, found.slot_decay_per_second) == (3, 3.0)


def test_the_setting_is_checked_and_the_default_is_per_process(monkeypatch):
    assert load_backends({"CPO_RATE_LIMITS": "prefect"}).rate_limits == "prefect"
    assert load_backends({}).rate_limits == "process"
    with pytest.raises(InputError, match="CPO_RATE_LIMITS"):
        load_backends({"CPO_RATE_LIMITS": "global"})
    monkeypatch.delenv("CPO_RATE_LIMITS", raising=False)
    assert isinstance(rate_limiter("svc", "https://a.example", 5), RateLimiter)
    shared = rate_limiter("svc", "https://a.example", 5, shared="prefect")
    other = rate_limiter("svc", "https://b.example", 5, shared="prefect")
    assert shared.names["requests"] != other.names["requests"]  # two accounts, two budgets
    assert "a.example" not in shared.names["requests"]  # hashed: an endpoint may name a customer's tenant
    with pytest.raises(ValueError):
        SharedRateLimiter("svc", 0)
