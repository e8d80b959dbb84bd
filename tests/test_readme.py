"""The README's ```python blocks are tests: each one runs, so a snippet cannot drift from the library.

Every block runs in a fresh interpreter (so it must define what it uses), in README order, in one temporary folder
``<tmp>/repo`` beside ``<tmp>/shared/data/ml-latest-small`` (the real data, linked), so a block may read files an
earlier block wrote (``out/most-popular``) but never its variables. A first comment line ``# test: ...`` in a block
says what the test changes, in ``;``-separated directives the reader sees:

- ``run as written`` (or any other words): nothing is changed;
- ``small data``: ``ml-latest-small`` is replaced by a slice (the first 10 users, the items they rated and 20 items
  nobody in the slice rated);
- ``replace A -> B``: the text ``A`` is replaced by ``B`` (e.g. fewer epochs);
- ``hub``: the block talks to the local Hub server of ``tests/hub/`` (``HF_ENDPOINT``), shared by the hub blocks;
- ``slow``: the block is marked ``slow`` (it runs in ``make test``, not in ``make test-fast``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hf_recsys.testing_utils import ml_latest_small_path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SMALL_USERS, COLD_ITEMS = 10, 20


def readme_blocks() -> list[tuple[int, str, list[str]]]:
    """``(line, code, directives)`` of every ```python block of the README."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        code = match.group(1)
        line = text[: match.start()].count("\n") + 2
        first = code.splitlines()[0] if code.strip() else ""
        directives = [d.strip() for d in first[len("# test:") :].split(";")] if first.startswith("# test:") else []
        blocks.append((line, code, directives))
    return blocks


def _flags(directives: list[str]) -> set[str]:
    """The directive words, without their parenthesised explanations: ``slow (EASE ...)`` -> ``slow``."""
    return {d.split("(")[0].strip() for d in directives}


def _params():
    out = []
    for line, code, directives in readme_blocks():
        marks = [pytest.mark.slow] if "slow" in _flags(directives) else []
        out.append(pytest.param(line, code, directives, id=f"README.md:{line}", marks=marks))
    return out


def _small_slice(source: Path, target: Path) -> None:
    """A MovieLens folder with the first users, the items they rated and a few unrated ("cold") items."""
    import pandas as pd

    target.mkdir(parents=True)
    ratings = pd.read_csv(source / "ratings.csv")
    ratings = ratings[ratings["userId"] <= SMALL_USERS]
    movies = pd.read_csv(source / "movies.csv")
    rated = movies["movieId"].isin(ratings["movieId"])
    movies = pd.concat([movies[rated], movies[~rated].head(COLD_ITEMS)])
    ratings.to_csv(target / "ratings.csv", index=False)
    movies.to_csv(target / "movies.csv", index=False)
    for extra in ("tags.csv", "links.csv"):
        if (source / extra).is_file():
            frame = pd.read_csv(source / extra)
            frame[frame["movieId"].isin(movies["movieId"])].to_csv(target / extra, index=False)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    data = ml_latest_small_path()
    if data is None:
        pytest.skip("the README blocks read ml-latest-small: set HF_RECSYS_ML_LATEST_SMALL to its folder")
    base = tmp_path_factory.mktemp("readme")
    (base / "repo").mkdir()
    (base / "shared" / "data").mkdir(parents=True)
    (base / "shared" / "data" / "ml-latest-small").symlink_to(Path(data).resolve())
    _small_slice(Path(data), base / "small" / "shared" / "data" / "ml-latest-small")
    return base


@pytest.fixture(scope="module")
def hub_endpoint():
    spec = importlib.util.spec_from_file_location("readme_hub_server", ROOT / "tests" / "hub" / "hub_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    server, _ = module.serve()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _env(hub: str | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(OMP_NUM_THREADS="2", TOKENIZERS_PARALLELISM="false", HF_HOME=str(home), MPLBACKEND="Agg")
    env.pop("HF_RECSYS_ML_LATEST_SMALL", None)  # the block reads ../shared/data/ml-latest-small as a reader would
    if hub is None:
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    else:
        env.update(
            HF_ENDPOINT=hub,
            HF_TOKEN="hf_test_token",
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
    return env


@pytest.mark.parametrize(("line", "code", "directives"), _params())
def test_readme_block_runs(line, code, directives, workspace, request):
    for directive in directives:
        if directive.startswith("replace "):
            old, new = (x.strip() for x in directive[len("replace ") :].split("->"))
            head, body = code.split("\n", 1)  # the directive line itself stays as written
            assert old in body, f"README.md:{line}: '{directive}' does not match the block"
            code = head + "\n" + body.replace(old, new)
    flags = _flags(directives)
    cwd = workspace / "small" / "repo" if "small data" in flags else workspace / "repo"
    cwd.mkdir(exist_ok=True)
    hub = request.getfixturevalue("hub_endpoint") if "hub" in flags else None
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=_env(hub, workspace / "hf_home"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"README.md:{line} failed:\n{code}\n--- stderr ---\n{proc.stderr[-5000:]}"


def test_every_python_block_is_collected():
    blocks = readme_blocks()
    assert len(blocks) >= 10 and all(code.strip() for _, code, _ in blocks)
