"""push_to_hub -> from_pretrained by repo id (another interpreter, another cache) keeps the index and its answers,
against the Hub-compatible test server of ``tests/hub`` on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")
pytest.importorskip("hf_recsys_classic")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hub"))

from hub_server import serve  # noqa: E402

_spec = importlib.util.spec_from_file_location("hub_conftest", HERE.parent / "hub" / "conftest.py")
_hub_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hub_conftest)
client_env = _hub_conftest.client_env  # the environment of the Hub tests' client processes

pytestmark = pytest.mark.slow  # two interpreters importing torch + transformers


def _run(endpoint: str, tmp: Path, action: str) -> dict:
    out = tmp / f"{action}.json"
    env = client_env(endpoint, tmp / f"hf_home_{action}")
    proc = subprocess.run(
        [sys.executable, str(HERE / "index_hub_client.py"), action, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_push_pull_keeps_the_index_and_its_answers(tmp_path):
    server, state = serve()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        pushed = _run(endpoint, tmp_path, "push")
        loaded = _run(endpoint, tmp_path, "load")
    finally:
        server.shutdown()
        server.server_close()
    assert pushed["kind"] == loaded["kind"] == "hnsw"
    assert pushed["fingerprint"] == loaded["fingerprint"]
    assert pushed["recall"] == loaded["recall"]
    assert pushed["ids"] == loaded["ids"] and pushed["similar"] == loaded["similar"]
    np.testing.assert_allclose(loaded["scores"], pushed["scores"], rtol=1e-6)
