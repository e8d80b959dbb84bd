"""Fixtures of the Hub tests: a Hub-compatible server on 127.0.0.1 and the client runs against it.

``huggingface_hub`` reads ``HF_ENDPOINT`` once, at its first import, and the test process has imported it long
before these fixtures run; so the client code (push, then load) runs in fresh subprocesses whose environment points
at the server. The push and the load run in two different processes with two different caches, so a load can only
succeed from what the server holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_cases import HUB_CASES
from hub_server import serve

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def hub_server():
    """The server, as ``(endpoint, state)``; shut down at the end of the session."""
    server, state = serve()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def client_env(endpoint: str, hf_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home),
        HF_TOKEN="hf_test_token",
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",  # the test server speaks the LFS batch API, not Xet
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TRANSFORMERS_OFFLINE="0",
        HF_DATASETS_OFFLINE="0",
        TOKENIZERS_PARALLELISM="false",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def run_client(endpoint: str, workdir: Path, *args: str, timeout: int = 300) -> None:
    """Run ``hub_client.py *args`` in a fresh interpreter with its own empty Hugging Face cache."""
    env = client_env(endpoint, workdir / f"hf_home_{args[0]}")
    proc = subprocess.run(
        [sys.executable, str(HERE / "hub_client.py"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        tail = proc.stderr[-6000:]
        raise AssertionError(f"hub_client.py {args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{tail}")


@pytest.fixture(scope="session")
def hub_roundtrip(hub_server, tmp_path_factory):
    """Push every case of ``HUB_CASES`` in one process, load them by repo id in another; the two JSON records."""
    from hf_recsys.registry import UnknownModelTypeError, get_model_spec

    endpoint, _ = hub_server
    work = tmp_path_factory.mktemp("hub")
    cases = []
    for case in HUB_CASES:
        try:
            get_model_spec(case["model_type"])
            cases.append(case)
        except UnknownModelTypeError:
            pass
    (work / "spec.json").write_text(json.dumps({"cases": cases}))
    run_client(endpoint, work, "push", str(work / "spec.json"), str(work / "pushed.json"))
    run_client(endpoint, work, "load", str(work / "spec.json"), str(work / "pushed.json"), str(work / "loaded.json"))
    return json.loads((work / "pushed.json").read_text()), json.loads((work / "loaded.json").read_text())


@pytest.fixture(scope="session")
def hub_datasets(hub_roundtrip):
    """What the push process pushed as Hub datasets, and what the load process read back."""
    pushed, loaded = hub_roundtrip
    return pushed["__datasets__"], loaded["__datasets__"]
