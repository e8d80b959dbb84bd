"""Ray Data batch scoring equals the single-process ``hf-recsys recommend`` on the same log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("hf_recsys_classic")

from hf_recsys import AutoModelForRecommendation  # noqa: E402
from hf_recsys.cli import main as cli  # noqa: E402
from hf_recsys.integrations.ray import recommend_all  # noqa: E402
from hf_recsys.testing_utils import tiny_log  # noqa: E402

pytestmark = pytest.mark.slow  # starting a local Ray cluster takes 10-30 s


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_batch_scoring_equals_the_single_process_output(local_ray, tmp_path):
    log = tiny_log()
    model = AutoModelForRecommendation.for_model("ease", l2=10.0).fit(log)
    model.save_pretrained(tmp_path / "model")
    log.to_parquet(tmp_path / "log.parquet")
    users = list(dict.fromkeys(log["user_id"]))
    (tmp_path / "users.txt").write_text("\n".join(users) + "\n")
    out = tmp_path / "ray_out"
    recommend_all(tmp_path / "model", tmp_path / "log.parquet", out, k=5, num_replicas=2, batch_size=8)
    got = pd.read_parquet(tmp_path / "ray_out")
    args = ["recommend", "--model", str(tmp_path / "model"), "--users-file", str(tmp_path / "users.txt")]
    assert cli([*args, "--k", "5", "--output", str(tmp_path / "single.parquet")]) == 0
    want = pd.read_parquet(tmp_path / "single.parquet")
    key = ["user_id", "rank"]
    got, want = (d.sort_values(key).reset_index(drop=True) for d in (got, want))
    assert len(got) == len(want) == 5 * len(users)
    assert (got["user_id"].astype(str) == want["user_id"].astype(str)).all()
    assert (got["item_id"].to_numpy() == want["item_id"].to_numpy()).all()
    assert (got["rank"].to_numpy() == want["rank"].to_numpy()).all()
    np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), rtol=1e-6)


def test_the_recommend_command_runs_on_ray_with_the_same_output(local_ray, tmp_path):
    log = tiny_log()
    model = AutoModelForRecommendation.for_model("ease", l2=10.0).fit(log)
    model.save_pretrained(tmp_path / "model")
    log.to_parquet(tmp_path / "log.parquet")
    recommend_all(tmp_path / "model", tmp_path / "log.parquet", tmp_path / "lib", k=5, num_replicas=2, batch_size=8)
    args = ["recommend", "--model", str(tmp_path / "model"), "--ray-log", str(tmp_path / "log.parquet"), "--k", "5"]
    assert cli([*args, "--batch-size", "8", "--output", str(tmp_path / "cli")]) == 0
    key = ["user_id", "rank"]
    got, want = (pd.read_parquet(tmp_path / d).sort_values(key).reset_index(drop=True) for d in ("cli", "lib"))
    pd.testing.assert_frame_equal(got, want)
    assert cli([*args, "--users", "u1", "--output", str(tmp_path / "x")]) == 2  # --ray-log scores every user
    assert cli([*args, "--output", str(tmp_path / "x.parquet")]) == 2  # a folder, not a file


def test_a_gpu_replica_without_a_gpu_says_so(tmp_path):
    import torch

    from hf_recsys.integrations.ray import _Scorer
    from hf_recsys.training.engine import torch_threads

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the refusal cannot be shown here")
    AutoModelForRecommendation.for_model("ease", l2=10.0).fit(tiny_log()).save_pretrained(tmp_path / "model")
    with torch_threads(torch.get_num_threads()):  # a replica sets the process's torch threads (an actor's own)
        with pytest.raises(RuntimeError, match="no CUDA device"):
            _Scorer(str(tmp_path / "model"), 5, True, None, 1, gpu=True)
        cpu = _Scorer(str(tmp_path / "model"), 5, True, None, 1)
        assert cpu({"user_id": np.array(["u1", "u2"])})["item_id"].shape == (10,)
