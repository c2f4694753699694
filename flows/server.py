"""Prefect's temporary server, started at once instead of at the first flow call.

With no PREFECT_API_URL, Prefect starts a temporary API server (a uvicorn subprocess) when the first flow is
called, and the CLI waits for it: about 5 s of a cold `cpo run` on the 2-core machine, after another 5 s of
imports. `prestart()` launches the same subprocess, with the same command and environment as
`prefect.server.api.server.SubprocessASGIServer`, before the heavy imports, so it boots on the other core while
this process imports; `adopt()` then hands it to Prefect's own singleton, which stops it at exit like its own.
Anything unexpected (a port taken meanwhile, a server that does not answer, a Prefect without that class)
and the process is stopped and Prefect starts its server as it always does: never a run without a server.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import random
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

_started: dict = {}


def wanted(env=None) -> bool:
    """A temporary server will be needed: no API configured and Prefect's ephemeral mode not turned off."""
    env = os.environ if env is None else env
    off = env.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "").strip().lower() in ("0", "false", "no")
    if env.get("PREFECT_API_URL") or off:
        return False
    if "prefect.settings" in sys.modules:  # a process already using Prefect (a test harness's server, a profile)
        from prefect.settings import get_current_settings

        return not get_current_settings().api.url
    return True


def _free_port() -> int | None:
    for _ in range(10):
        port = random.randrange(8000, 9000)  # Prefect's own range for temporary servers
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    return None


def prestart() -> None:
    """Launch Prefect's temporary server now (no-op when a server is configured or one was launched)."""
    if _started or not wanted():
        return
    spec = importlib.util.find_spec("prefect")
    port = _free_port()
    if spec is None or not spec.submodule_search_locations or port is None:
        return
    package_parent = Path(list(spec.submodule_search_locations)[0]).parent
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(package_parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
         "--lifespan", "on"], env=env)
    _started.update(process=process, port=port)
    atexit.register(_stop)


def launched() -> bool:
    """Whether this process launched a temporary server that is still starting or running."""
    return _started.get("process") is not None


def _stop() -> None:
    process = _started.get("process")
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def adopt() -> str | None:
    """Wait for the launched server and make it Prefect's temporary server; returns its API URL, or None when
    nothing was launched or it could not be used (Prefect then starts its own at the first flow call)."""
    process, port = _started.get("process"), _started.get("port")
    if process is None:
        return None
    if _started.get("api_url"):
        return _started["api_url"]
    if not wanted():  # Prefect's settings (a profile) name a server after all: ours is not needed
        _stop()
        _started.clear()
        return None
    import httpx

    api_url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    healthy = False
    with httpx.Client() as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                healthy = client.get(f"{api_url}/health").status_code == 200
            except httpx.HTTPError:
                healthy = False
            if healthy:
                break
            time.sleep(0.05)
    try:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        usable = healthy and not server.running and all(hasattr(server, a) for a in ("port", "server_process"))
    except Exception:  # noqa: BLE001 - another Prefect version: let it start its own
        usable = False
    if not usable:
        _stop()
        _started.clear()
        return None
    server.port, server.server_process, server.running = port, process, True
    atexit.register(server.stop)
    _started["api_url"] = api_url
    return api_url
