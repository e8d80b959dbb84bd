"""Configurations of the sequential next-item models (GPT-style causal, BERT-style masked)."""

from __future__ import annotations

from typing import ClassVar

from ...configuration_utils import check_choice, check_positive
from ...training.engine import set_training_options
from ..backbone_utils import BackboneRecConfig

#: the training options of the sequential models (see :class:`~hf_recsys.training.TrainingOptions`)
SEQUENTIAL_TRAINING_DEFAULTS = {
    "epochs": 20,
    "batch_size": 128,
    "learning_rate": 1e-3,
    "optimizer": "adamw",
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "seed": 0,
    "precision": "fp32",
    "compile": False,
    "lr_scheduler_type": "constant",
}


#: what the sub-layers of a causal model's GPT-2 blocks add their outputs to (see :class:`CausalSequentialConfig`)
BLOCK_RESIDUALS = ("stream", "normalized", "sasrec")


class SequentialConfig(BackboneRecConfig):
    """Options shared by :class:`CausalSequentialConfig` and :class:`MaskedSequentialConfig`.

    Args:
        max_sequence_length: items of history the model reads (the most recent ones).
        hidden_size, num_layers, num_heads, dropout: size of the default backbone, used only when neither
            ``backbone_name_or_path`` nor ``backbone_config`` is given.
        ffn_size: width of the default backbone's feed-forward layers (``None``: ``4 * hidden_size``; SASRec uses
            ``hidden_size``).
        attention_dropout: dropout on the attention weights of the default backbone (``None``: ``dropout``). At 0 the
            attention runs in PyTorch's fused kernel (no dropout mask of every attention weight).
        hidden_act: activation of the default backbone's feed-forward layers (``None``: GELU, for GPT-2 as PyTorch's
            fused tanh approximation ``gelu_pytorch_tanh``, equal to GPT-2's ``gelu_new`` to float precision; BERT's
            ``gelu``; SASRec uses ``relu``).
        loss: ``"full"`` (softmax over every item, computed in chunks of ``loss_chunk_size`` positions so that the
            logits of the whole batch never exist at once) or ``"sampled"`` (softmax over the positive and
            ``num_negatives`` uniformly sampled items, accidental hits masked; with thousands of negatives this is the
            Dross paper's best SASRec+) or ``"gbce"`` (gSASRec's generalised binary cross-entropy over the positive and
            ``num_negatives`` sampled negatives, the positive's probability raised to ``beta`` set by ``gbce_t``).
        loss_chunk_size: positions whose full-catalogue logits are computed at once (``None``: as many as fit in
            1M logits, at least 64: chunks that stay in cache run faster).
        num_negatives: negatives per step for the sampled and gBCE losses (shared by the batch).
        gbce_t: calibration of gBCE (Petrov & Macdonald 2023) in [0, 1]: 0 is plain BCE on the sample, 1 calibrates the
            scores to the full catalogue; the paper's default 0.75.
        softmax_temperature: logits are divided by it.
        item_text_dim: size of the item text embeddings the model can use (0: none). They are given to ``fit``
            as ``item_text_embeddings=(item_ids, matrix)`` or with ``set_item_text_embeddings``.
        text_fusion: ``"none"``; ``"add"`` (item embedding = id embedding + a trained projection of the text
            embedding, so items with few interactions borrow from their text) or ``"init"`` (id embeddings start
            from the text embeddings' principal components).
        scale_item_embeddings: multiply the item embeddings the backbone reads by ``sqrt(hidden_size)`` (SASRec
            does; the output layer keeps the unscaled table). Without it the current item's identity (std 0.02) is
            small next to the first attention block's output, and the model learns much less per epoch.
        positions: ``"window"`` (position ids are the index in the left-padded window, so the first item's position
            depends on the history length), ``"items"`` (counted from the window's first item, as SASRec's
            right-padded code does) or ``"from_end"`` (counted back from the window's last token, which is always
            position 0: the positions of ``"window"`` relabelled, as in BERT4Rec's left-padded code, where the mask
            token read at inference always sits at the same position, but independent of the padding).
        train_windows: ``"last"`` trains on each user's most recent ``max_sequence_length`` items; ``"random"`` picks a
            random window ending anywhere in a long history, every epoch.
        group_by_length: batch users with training windows of similar length together (the engine's
            :func:`~hf_recsys.training.trainer.length_grouped_permutation`: random groups of 8 batches, sorted by
            length inside the group, the batches shuffled), and cut each batch's left padding to its longest window.
            With ``positions="items"`` or ``"from_end"`` the model's outputs do not depend on the padding, so this
            changes only which users share a batch; on ML-1M (median history 94 of at most 200) it cuts the
            backbone's work by about 40%. Needs ``positions="items"`` or ``"from_end"``.
        epochs, batch_size, learning_rate, optimizer, weight_decay, max_grad_norm, seed, precision, compile,
            lr_scheduler_type: training options of ``fit`` and ``hf-recsys train`` (see
            :class:`~hf_recsys.training.TrainingOptions`; batches are users).
        **kwargs: backbone, LoRA and :class:`RecConfig` options (see :class:`BackboneRecConfig`).
    """

    training_defaults: ClassVar[dict] = SEQUENTIAL_TRAINING_DEFAULTS  # options taken from **kwargs

    def __init__(
        self,
        max_sequence_length: int = 50,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 2,
        dropout: float = 0.2,
        loss: str = "full",
        num_negatives: int = 256,
        softmax_temperature: float = 1.0,
        item_text_dim: int = 0,
        text_fusion: str = "none",
        train_windows: str = "random",
        ffn_size: int | None = None,
        attention_dropout: float | None = None,
        loss_chunk_size: int | None = None,
        hidden_act: str | None = None,
        scale_item_embeddings: bool = False,
        positions: str = "window",
        gbce_t: float = 0.75,
        group_by_length: bool = False,
        **kwargs,
    ):
        set_training_options(self, SEQUENTIAL_TRAINING_DEFAULTS, kwargs)
        for name, value in (
            ("max_sequence_length", max_sequence_length),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("num_negatives", num_negatives),
            ("softmax_temperature", softmax_temperature),
        ):
            check_positive(self, name, value)
        check_positive(self, "dropout", dropout, allow_zero=True)
        for name, value in (("ffn_size", ffn_size), ("loss_chunk_size", loss_chunk_size)):
            if value is not None:
                check_positive(self, name, value)
        if attention_dropout is not None:
            check_positive(self, "attention_dropout", attention_dropout, allow_zero=True)
        self.ffn_size = None if ffn_size is None else int(ffn_size)
        self.attention_dropout = None if attention_dropout is None else float(attention_dropout)
        self.loss_chunk_size = None if loss_chunk_size is None else int(loss_chunk_size)
        self.hidden_act = hidden_act
        check_positive(self, "item_text_dim", item_text_dim, allow_zero=True)
        check_choice(self, "loss", loss, ("full", "sampled", "gbce"))
        if not 0.0 <= gbce_t <= 1.0:
            raise ValueError(f"{type(self).__name__}: gbce_t must be in [0, 1], got {gbce_t!r}.")
        self.gbce_t = float(gbce_t)
        check_choice(self, "text_fusion", text_fusion, ("none", "add", "init"))
        check_choice(self, "train_windows", train_windows, ("last", "random"))
        check_choice(self, "positions", positions, ("window", "items", "from_end"))
        if not isinstance(scale_item_embeddings, bool):
            raise ValueError(
                f"{type(self).__name__}: scale_item_embeddings must be true or false, got {scale_item_embeddings!r}."
            )
        self.scale_item_embeddings, self.positions = scale_item_embeddings, positions
        if not isinstance(group_by_length, bool):
            raise ValueError(f"{type(self).__name__}: group_by_length must be true or false, got {group_by_length!r}.")
        if group_by_length and positions == "window":
            raise ValueError(
                f"{type(self).__name__}: group_by_length=True needs positions='items' or 'from_end' (with "
                "positions='window' a position id is the index in the padded window, so cutting the padding would "
                "move every item)."
            )
        self.group_by_length = group_by_length
        if text_fusion != "none" and not item_text_dim:
            raise ValueError(f"{type(self).__name__}: text_fusion={text_fusion!r} needs item_text_dim > 0.")
        self.max_sequence_length, self.hidden_size, self.num_layers = (
            int(max_sequence_length),
            int(hidden_size),
            int(num_layers),
        )
        self.num_heads, self.dropout = int(num_heads), float(dropout)
        self.loss, self.num_negatives, self.softmax_temperature = loss, int(num_negatives), float(softmax_temperature)
        self.item_text_dim, self.text_fusion, self.train_windows = int(item_text_dim), text_fusion, train_windows
        if kwargs.get("backbone_name_or_path") is None and kwargs.get("backbone_config") is None:
            kwargs["backbone_config"] = self.default_backbone_config()
        super().__init__(**kwargs)

    def default_backbone_config(self) -> dict:
        raise NotImplementedError


class CausalSequentialConfig(SequentialConfig):
    """Configuration of :class:`CausalSequentialRecommender` (SASRec-style, GPT-2 architecture by default).

    Args:
        block_residual: what each sub-layer of a GPT-2 block adds its output to: ``"stream"`` (GPT-2's pre-norm
            blocks, ``x = x + attn(LN(x))``) or ``"normalized"`` (SASRec's blocks, ``x = LN(x) + attn(LN(x))``, then
            ``x = LN(x) + FFN(LN(x))``: the residual stream is normalised before every sub-layer) or ``"sasrec"``
            (as ``"normalized"``, with the attention's keys and values read from the raw stream, as SASRec's
            ``MHA(Q=LN(x), K=x, V=x)``). Only for GPT-2 backbones; the weights are the same in every order.
        **kwargs: see :class:`SequentialConfig`.

    Example:
        ```python
        >>> from hf_recsys.models.sequential import CausalSequentialConfig
        >>> CausalSequentialConfig(max_sequence_length=20, hidden_size=32).backbone_config["model_type"]
        'gpt2'
        ```
    """

    model_type = "causal_sequential"

    def __init__(self, block_residual: str = "stream", **kwargs):
        check_choice(self, "block_residual", block_residual, BLOCK_RESIDUALS)
        self.block_residual = block_residual
        super().__init__(**kwargs)

    def default_backbone_config(self) -> dict:
        d = self.dropout
        attn = d if self.attention_dropout is None else self.attention_dropout
        return {
            "model_type": "gpt2",
            "n_layer": self.num_layers,
            "n_embd": self.hidden_size,
            "n_head": self.num_heads,
            "n_positions": self.max_sequence_length,
            "vocab_size": 1,
            "bos_token_id": None,
            "eos_token_id": None,
            "resid_pdrop": d,
            "embd_pdrop": d,
            "attn_pdrop": attn,
            "n_inner": self.ffn_size,
            # GPT-2's own gelu_new is the same tanh approximation written as 8 element-wise ops; this is one kernel
            "activation_function": self.hidden_act or "gelu_pytorch_tanh",
        }


class MaskedSequentialConfig(SequentialConfig):
    """Configuration of :class:`MaskedSequentialRecommender` (BERT4Rec-style, BERT architecture by default).

    Args:
        mask_prob: share of history items replaced by the mask token in training.
        **kwargs: see :class:`SequentialConfig`.
    """

    model_type = "masked_sequential"

    def __init__(self, mask_prob: float = 0.2, **kwargs):
        if not 0 < mask_prob < 1:
            raise ValueError(f"MaskedSequentialConfig: mask_prob must be in (0, 1), got {mask_prob!r}.")
        self.mask_prob = float(mask_prob)
        super().__init__(**kwargs)

    def default_backbone_config(self) -> dict:
        d = self.dropout
        attn = d if self.attention_dropout is None else self.attention_dropout
        return {
            "model_type": "bert",
            "num_hidden_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "num_attention_heads": self.num_heads,
            "intermediate_size": self.ffn_size or 4 * self.hidden_size,
            "max_position_embeddings": self.max_sequence_length,
            "vocab_size": 1,
            "type_vocab_size": 1,
            "pad_token_id": 0,
            "hidden_dropout_prob": d,
            "attention_probs_dropout_prob": attn,
            **({"hidden_act": self.hidden_act} if self.hidden_act else {}),
        }


__all__ = ["CausalSequentialConfig", "MaskedSequentialConfig", "SequentialConfig"]
