"""Configuration of the LLM re-ranker (TALLRec style)."""

from __future__ import annotations

from typing import ClassVar

from ...configuration_utils import check_positive
from ...training.engine import set_training_options
from ..backbone_utils import BackboneRecConfig

#: the training options of the re-ranker (see :class:`~hf_recsys.training.TrainingOptions`; batches are prompts)
RERANKER_TRAINING_DEFAULTS = {
    "epochs": 1,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "optimizer": "adamw",
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "seed": 0,
    "precision": "fp32",
}

DEFAULT_TEMPLATE = "The user watched: {history}.\nWould the user enjoy {candidate}? Answer Yes or No.\nAnswer:"


class LLMRerankerConfig(BackboneRecConfig):
    """Configuration of :class:`LLMReranker`: a causal LLM, LoRA-tuned to answer ``Yes`` / ``No`` to a prompt of
    the user's recent item titles and one candidate title, re-orders the top ``num_candidates`` items of a
    first-stage recommender it holds.

    Args:
        first_stage: the first-stage model as ``{"model_type": ..., **config options}`` (set by
            :meth:`LLMReranker.from_first_stage`, which holds an already fitted model by value).
        num_candidates: how many of the first stage's best items are re-ranked per user; the others keep the first
            stage's order below them.
        history_length: the user's most recent items named in the prompt.
        num_negatives: negatives per training user, drawn from the first stage's top ``num_candidates`` (the items
            the re-ranker has to tell apart at inference), uniformly where the first stage offers too few.
        prompt_template: the prompt, with ``{history}`` (titles joined by ``"; "``) and ``{candidate}``.
        yes_token, no_token: the answers whose next-token logits are compared: the score is
            ``logit(yes) - logit(no)`` (their first token).
        max_prompt_length: prompts longer than this many tokens lose their beginning.
        tokenizer_name_or_path: the tokenizer (default: ``backbone_name_or_path``).
        use_lora: adapt the frozen LLM with LoRA (default ``True``).
        epochs, batch_size, learning_rate, optimizer, weight_decay, max_grad_norm, seed, precision: training options
            of ``fit`` (a batch is ``batch_size`` prompts; ``precision="bf16"`` also scores under bf16 autocast).
        **kwargs: backbone, LoRA and :class:`RecConfig` options (see :class:`BackboneRecConfig`).
    """

    model_type = "llm_reranker"
    training_defaults: ClassVar[dict] = RERANKER_TRAINING_DEFAULTS

    def __init__(
        self,
        first_stage: dict | None = None,
        num_candidates: int = 20,
        history_length: int = 5,
        num_negatives: int = 1,
        prompt_template: str = DEFAULT_TEMPLATE,
        yes_token: str = " Yes",
        no_token: str = " No",
        max_prompt_length: int = 160,
        tokenizer_name_or_path: str | None = None,
        use_lora: bool = True,
        **kwargs,
    ):
        set_training_options(self, RERANKER_TRAINING_DEFAULTS, kwargs)
        for name, value in (
            ("num_candidates", num_candidates),
            ("history_length", history_length),
            ("num_negatives", num_negatives),
            ("max_prompt_length", max_prompt_length),
        ):
            check_positive(self, name, value)
        if first_stage is not None and "model_type" not in first_stage:
            raise ValueError("LLMRerankerConfig: first_stage needs a 'model_type' key (e.g. {'model_type': 'ease'}).")
        missing = [f for f in ("{history}", "{candidate}") if f not in prompt_template]
        if missing:
            raise ValueError(f"LLMRerankerConfig: prompt_template lacks {', '.join(missing)}.")
        if yes_token == no_token:
            raise ValueError("LLMRerankerConfig: yes_token and no_token must differ.")
        self.first_stage = None if first_stage is None else dict(first_stage)
        self.num_candidates, self.history_length = int(num_candidates), int(history_length)
        self.num_negatives, self.max_prompt_length = int(num_negatives), int(max_prompt_length)
        self.prompt_template, self.yes_token, self.no_token = prompt_template, yes_token, no_token
        self.tokenizer_name_or_path = None if tokenizer_name_or_path is None else str(tokenizer_name_or_path)
        super().__init__(use_lora=use_lora, **kwargs)


__all__ = ["LLMRerankerConfig"]
