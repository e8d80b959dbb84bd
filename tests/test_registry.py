"""The registry: register_model rules, entry-point plugins (real throw-away distributions), Auto classes."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import hf_recsys
from hf_recsys import AutoModelForRecommendation, AutoRecConfig, RecConfig, RecPreTrainedModel, register_model
from hf_recsys.registry import RegistryError, UnknownModelTypeError, get_model_spec


class _Cfg(RecConfig):
    model_type = "test_registry_toy"


class _Model(RecPreTrainedModel):
    config_class = _Cfg

    def __init__(self, config):
        super().__init__(config)
        self.w = nn.Parameter(torch.zeros(config.num_items))
        self.post_init()


class _OtherCfg(RecConfig):
    model_type = "test_registry_other"


def test_register_refuses_duplicates_and_mismatches():
    register_model("test_registry_toy", _Cfg, _Model)
    register_model("test_registry_toy", _Cfg, _Model)  # the same registration again is a no-op

    class _Model2(_Model):
        pass

    with pytest.raises(RegistryError, match="already registered"):
        register_model("test_registry_toy", _Cfg, _Model2)
    with pytest.raises(RegistryError, match="model_type"):
        register_model("another_name", _Cfg, _Model)
    with pytest.raises(RegistryError, match="config_class"):
        register_model("test_registry_other", _OtherCfg, _Model)
    assert get_model_spec("test_registry_toy").model_class is _Model


def test_unknown_model_type_lists_known_ones():
    with pytest.raises(UnknownModelTypeError, match="most_popular"):
        AutoRecConfig.for_model("no_such_model")


def test_core_model_comes_through_its_entry_point():
    spec = hf_recsys.list_models()["most_popular"]
    assert spec.distribution == "hf-recsys"
    model = AutoModelForRecommendation.for_model("most_popular", num_items=3)
    assert isinstance(model, hf_recsys.MostPopularModel)
    assert AutoModelForRecommendation.from_config(model.config).config.num_items == 3


def test_auto_classes_cannot_be_instantiated():
    with pytest.raises(OSError):
        AutoModelForRecommendation()


def _write_dist(root, dist, module, source, entry_points):
    pkg = root / dist
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(textwrap.dedent(source))
    eps = "\n".join(f'{k} = "{v}"' for k, v in entry_points.items())
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{dist}"
            version = "0.0.1"
            [project.entry-points."hf_recsys.models"]
            """
        )
        + eps
        + "\n"
    )
    return pkg


TOY_SOURCE = """
import torch
from torch import nn
from hf_recsys import RecConfig, RecPreTrainedModel

class ToyConfig(RecConfig):
    model_type = "toy_plugin_model"

class ToyModel(RecPreTrainedModel):
    config_class = ToyConfig
    trainable = False

    def __init__(self, config):
        super().__init__(config)
        self.bias = nn.Parameter(torch.arange(config.num_items, dtype=torch.float32))
        self.post_init()

    def _fit(self, interactions, **kwargs):
        self.bias = nn.Parameter(torch.arange(interactions.num_items, dtype=torch.float32), requires_grad=False)

    def score_users(self, user_idx):
        return self.bias.expand(len(user_idx), -1).clone()
"""

CHECK_SCRIPT = """
import sys, tempfile
import pandas as pd
import transformers
import hf_recsys
from hf_recsys.cli import main

main(["plugins"])
log = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 20, 30]})
model = hf_recsys.AutoModelForRecommendation.for_model("toy_plugin_model").fit(log)
with tempfile.TemporaryDirectory() as d:
    model.save_pretrained(d)
    print("auto-loaded:", type(transformers.AutoModel.from_pretrained(d)).__name__)
print("recommend:", model.recommend([2], k=2)[0].tolist())
"""


@pytest.mark.slow
def test_throwaway_plugin_is_registered_and_broken_one_is_reported(tmp_path):
    good = _write_dist(tmp_path, "hfr-toy-plugin", "hfr_toy", TOY_SOURCE, {"toy_plugin_model": "hfr_toy:ToyModel"})
    bad = _write_dist(
        tmp_path,
        "hfr-broken-plugin",
        "hfr_broken",
        "raise ImportError('this plugin is broken on purpose')\n",
        {"broken_plugin_model": "hfr_broken:Model"},
    )
    target = tmp_path / "site"
    for pkg in (good, bad):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(target),
                str(pkg),
            ],
            check=True,
            capture_output=True,
        )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", CHECK_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("toy_plugin_model") and "hfr-toy-plugin" in line for line in lines), out.stdout
    assert any(line.startswith("most_popular") for line in lines), "the core model must still be listed"
    assert any(
        "broken_plugin_model" in line and "hfr-broken-plugin" in line and "broken on purpose" in line for line in lines
    ), out.stdout
    assert "auto-loaded: ToyModel" in out.stdout
    assert "recommend: [[20, 10]]" in out.stdout
