"""Registry global state (issue 15): transformers' own names are refused, plugins are imported per model name, a
pending entry point is not silently overridden, and no private mapping of transformers is replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from transformers import AutoConfig, GPT2Config

from hf_recsys import RecConfig, RecPreTrainedModel, register_model
from hf_recsys.registry import RegistryError


def test_registering_a_name_transformers_owns_is_refused():
    class Gpt2Cfg(RecConfig):
        model_type = "gpt2"

    class Gpt2Model(RecPreTrainedModel):
        config_class = Gpt2Cfg

    with pytest.raises(RegistryError, match="transformers already has a model type"):
        register_model("gpt2", Gpt2Cfg, Gpt2Model)
    assert type(AutoConfig.for_model("gpt2")) is GPT2Config  # causal_sequential's backbone is intact


def test_transformers_private_mapping_is_not_replaced():
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    assert type(CONFIG_MAPPING._extra_content) is dict


SCRIPT = """
import json, sys, tempfile
import hf_recsys, transformers
from hf_recsys import RecConfig, RecPreTrainedModel, register_model
from hf_recsys.registry import RegistryError, get_model_spec

out = {}
class EaseCfg(RecConfig):
    model_type = "ease"
class EaseModel(RecPreTrainedModel):
    config_class = EaseCfg
try:
    register_model("ease", EaseCfg, EaseModel)  # the classic plugin's entry point has not been loaded yet
    out["override"] = "accepted"
except RegistryError as exc:
    out["override"] = str(exc)
out["ease_class"] = get_model_spec("ease").model_class.__module__
out["classic_modules"] = sorted(m for m in sys.modules if m.startswith("hf_recsys_classic."))
with tempfile.TemporaryDirectory() as d:
    import pandas as pd
    model = get_model_spec("ease").model_class(get_model_spec("ease").config_class()).fit(
        pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 20, 30, 10]}), show_progress=False
    )
    model.save_pretrained(d)
    out["auto_loaded"] = type(transformers.AutoModel.from_pretrained(d)).__name__
print(json.dumps(out))
"""


def test_plugins_load_per_model_name_and_pending_entry_points_are_not_overridden():
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "entry point" in out["override"] and "exist_ok=True" in out["override"], out["override"]
    assert out["ease_class"].startswith("hf_recsys_classic.ease")
    families = {m.split(".")[1] for m in out["classic_modules"]} - {"_utils"}
    assert families == {"ease"}, f"looking up 'ease' imported {sorted(families)}"
    assert out["auto_loaded"] == "EASEModel"
