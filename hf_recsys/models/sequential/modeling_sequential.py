"""Sequential next-item recommenders on transformer backbones.

- :class:`CausalSequentialRecommender`: SASRec-style; a GPT-2 (causal) encoder reads the user's time-ordered items
  and predicts the next one at every position.
- :class:`MaskedSequentialRecommender`: BERT4Rec-style; a BERT (bidirectional) encoder predicts randomly masked
  items, and a mask token appended to the history at inference.

Items are tokens: index ``i`` of the item vocabulary is token ``i + 1``, token 0 pads, token ``num_items + 1`` is the
mask. Item embeddings are learned from ids, optionally fused with (or initialised from) item text embeddings, and
tied with the output layer: the score of an item is the dot product of the sequence state with its embedding.
"""

from __future__ import annotations

import types
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ...data.views import Interactions
from ...heads import RetrievalHead, chunked_cross_entropy
from ...modeling_utils import RecommenderOutput, RecPreTrainedModel
from ...training.engine import EngineTrainedMixin, resize_rows
from ...training.examples import TrainingExamples
from ..backbone_utils import BackboneModelMixin, build_backbone, eval_mode, prepare_backbone
from .configuration_sequential import CausalSequentialConfig, MaskedSequentialConfig, SequentialConfig

IGNORE_INDEX = -100


def sequences_from_interactions(inter: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Per-user time-ordered item sequences as CSR-like ``(indptr, item_idx)`` (ties keep log order)."""
    inter = inter.known()
    ts = inter.timestamp if inter.timestamp is not None else np.zeros(len(inter), dtype=np.int64)
    order = np.lexsort((np.arange(len(inter)), ts, inter.user_idx))
    indptr = np.zeros(inter.num_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(inter.user_idx, minlength=inter.num_users), out=indptr[1:])
    return indptr, inter.item_idx[order].astype(np.int64)


def gather_windows(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """Left-padded token windows ``(b, length)``: the items ``items[max(start, end - length):end]`` as tokens
    (item index + 1), zeros before them."""
    if len(items) == 0:
        return np.zeros((len(ends), length), dtype=np.int64)
    pos = ends[:, None] - length + np.arange(length)[None, :]
    return np.where(pos >= starts[:, None], items[np.clip(pos, 0, len(items) - 1)] + 1, 0)


def gbce_loss(pos: torch.Tensor, neg: torch.Tensor, hits: torch.Tensor, num_items: int, t: float) -> torch.Tensor:
    """gSASRec's generalised binary cross-entropy (Petrov & Macdonald, RecSys 2023).

    Args:
        pos: ``(n,)`` logits of the positives.
        neg: ``(n, k)`` logits of ``k`` uniformly sampled negatives.
        hits: ``(n, k)`` true where a negative is the positive itself (left out of the loss).
        num_items: catalogue size (the sampling rate is ``k / (num_items - 1)``).
        t: calibration in [0, 1]; ``beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)``, 1 at ``t = 0`` (plain BCE).

    Returns:
        The mean over the ``n * (1 + k)`` binary terms, the positives' weighted by ``beta``.
    """
    alpha = neg.shape[1] / max(num_items - 1, 1)
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    pos_term = -beta * F.logsigmoid(pos.float())
    neg_term = -F.logsigmoid(-neg.float()).masked_fill(hits, 0.0).sum(1)
    return (pos_term + neg_term).sum() / (pos.numel() + neg.numel())


class SequentialRecPreTrainedModel(EngineTrainedMixin, BackboneModelMixin, RecPreTrainedModel):
    """Shared machinery of the sequential recommenders: item tables, text fusion, training and scoring."""

    config_class = SequentialConfig
    base_model_prefix = "sequential"
    main_input_name = "input_ids"
    supports_history = True
    #: tokens the model reads at inference besides the history (1 for the masked model's trailing mask token)
    extra_inference_tokens: ClassVar[int] = 0

    def __init__(self, config: SequentialConfig):
        super().__init__(config)
        self.backbone = prepare_backbone(build_backbone(config), config)
        self.hidden_size = int(self._backbone_config().hidden_size)
        self.head = RetrievalHead(similarity="dot", temperature=config.softmax_temperature)
        if config.item_text_dim:
            self.text_projection = nn.Linear(config.item_text_dim, self.hidden_size)
        self.item_embeddings = None
        self.resize_tables(config.num_users, config.num_items)
        self.register_buffer(
            "user_history", torch.zeros(config.num_users, config.max_sequence_length, dtype=torch.long)
        )
        self.post_init()
        self._freeze_unused_backbone_parts()

    def _freeze_unused_backbone_parts(self) -> None:
        """The backbone's word embeddings (items enter as ``inputs_embeds``) and BERT's pooler never reach the loss:
        frozen, so that the optimiser skips them and DDP does not wait for their gradients."""
        unused = [self.backbone.get_input_embeddings()]
        bb = self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone
        unused.append(getattr(bb, "pooler", None))
        for module in unused:
            if module is not None:
                module.requires_grad_(False)

    def _backbone_config(self):
        bb = self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone
        return bb.config

    # ------------------------------------------------------------------ item tables
    def resize_tables(self, num_users: int, num_items: int, mean_resizing: bool = False) -> None:
        """The engine's resize hook: item tokens for ``num_items`` items (token 0 pads, ``num_items + 1`` masks) and
        history rows for ``num_users`` users. Known items keep their embeddings; new ones start from N(0, 0.02),
        or the mean of the known ones with ``mean_resizing``; the mask token stays the last row."""
        self.config.num_users, self.config.num_items = num_users, num_items
        old = self.item_embeddings
        if old is None or old.num_embeddings != num_items + 2:
            # rows 1..n are the items, between the pad token (0, zeros) and the mask token (kept when it exists)
            init = lambda t: t.normal_(0.0, 0.02)  # noqa: E731
            w = None if old is None else old.weight.detach()
            h = self.hidden_size
            items = resize_rows(None if w is None else w[1:-1], num_items, h, init, mean_resizing, self.device)
            mask = w[-1:] if w is not None else init(torch.empty(1, h, device=items.device))
            emb = nn.Embedding(num_items + 2, h, padding_idx=0).to(items.device)
            with torch.no_grad():
                emb.weight.copy_(torch.cat([torch.zeros_like(mask), items, mask]))
            self.item_embeddings = emb
            if self.config.item_text_dim:
                feats = torch.zeros(num_items, self.config.item_text_dim, device=self.device)
                self.item_text_features = nn.Parameter(feats, requires_grad=False)
        if getattr(self, "user_history", None) is not None and len(self.user_history) != num_users:
            self.user_history = torch.zeros(
                num_users, self.config.max_sequence_length, dtype=torch.long, device=self.device
            )

    def after_load(self) -> None:
        if self.config.item_text_dim:
            self.item_text_features.requires_grad_(False)
        self._freeze_unused_backbone_parts()

    def set_item_text_embeddings(self, item_ids, embeddings) -> None:
        """Attach text embeddings ``(len(item_ids), item_text_dim)`` of items, aligned by the item vocabulary
        (items without one keep zeros). With ``text_fusion="init"`` the id embeddings restart from them."""
        if not self.config.item_text_dim:
            raise ValueError("This model was configured without text: set item_text_dim (and text_fusion) first.")
        self._require_vocab()
        emb = torch.as_tensor(np.ascontiguousarray(embeddings), dtype=torch.float32)
        if emb.shape != (len(item_ids), self.config.item_text_dim):
            raise ValueError(
                f"text embeddings have shape {tuple(emb.shape)}, expected "
                f"({len(item_ids)}, {self.config.item_text_dim})."
            )
        idx = torch.as_tensor(self.item_vocab.encode(list(item_ids), unknown="mask"))
        keep = idx >= 0
        feats = torch.zeros(self.config.num_items, self.config.item_text_dim)
        feats[idx[keep]] = emb[keep]
        self.item_text_features = nn.Parameter(feats.to(self.device), requires_grad=False)
        if self.config.text_fusion == "init":
            self._init_from_text(feats)

    @torch.no_grad()
    def _init_from_text(self, feats: torch.Tensor) -> None:
        centered = feats - feats.mean(0, keepdim=True)
        q = min(self.hidden_size, *centered.shape)
        u, s, _ = torch.pca_lowrank(centered, q=q, center=False)
        pcs = u * s
        pcs = pcs / pcs.std().clamp(min=1e-8) * self.item_embeddings.weight[1:].std()
        self.item_embeddings.weight[1 : 1 + len(pcs), :q] = pcs.to(self.device)

    def item_table(self) -> torch.Tensor:
        """Embeddings of every token ``(num_items + 2, hidden)``: id embeddings, plus projected text if fused."""
        table = self.item_embeddings.weight
        if self.config.text_fusion == "add":
            text = self.text_projection(self.item_text_features)
            table = torch.cat([table[:1], table[1:-1] + text, table[-1:]])
        return table

    # ------------------------------------------------------------------ forward
    def encode(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, table=None):
        """Hidden states ``(b, L, hidden)`` of left-padded token sequences."""
        table = self.item_table() if table is None else table
        if attention_mask is None:
            attention_mask = (input_ids != 0).long()
            attention_mask[:, -1] = 1  # an empty history still yields a finite state
        x = F.embedding(input_ids, table, padding_idx=0)
        if self.config.scale_item_embeddings:
            x = x * self.hidden_size**0.5
        extra = {}
        if self.config.positions == "items":
            extra["position_ids"] = (attention_mask.long().cumsum(1) - 1).clamp(min=0)
        elif self.config.positions == "from_end":  # the last token is position 0, whatever padding precedes it
            extra["position_ids"] = (attention_mask.long().flip(1).cumsum(1).flip(1) - 1).clamp(min=0)
        return self.backbone(inputs_embeds=x, attention_mask=attention_mask, **extra).last_hidden_state

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        loss_scale: torch.Tensor | float | None = None,
    ) -> RecommenderOutput:
        """Next-item scores, and the loss when ``labels`` are given.

        Args:
            input_ids: ``(batch, length)`` left-padded item tokens (item index + 1; 0 pads, ``num_items + 1``
                masks).
            attention_mask: ``(batch, length)``; by default non-pad tokens.
            labels: ``(batch, length)`` item indices to predict at each position, ``-100`` where nothing is
                predicted.
            loss_scale: multiplies the loss (the mean over the predicted positions). Batches grouped by length
                (``group_by_length``) carry their history tokens over the mean of a batch of that many users, so
                that every position weighs as much as under random batches.

        Returns:
            :class:`RecommenderOutput`: ``scores`` ``(batch, num_items)`` at the last position (``None`` when
            training with labels), ``loss`` when labels are given, ``user_embeddings`` ``(batch, hidden)`` (the
            last state).
        """
        table = self.item_table()
        hidden = self.encode(input_ids, attention_mask, table)
        last = hidden[:, -1]
        if labels is None:
            return RecommenderOutput(
                scores=self.head.score(last, table[1:-1]) / self.head.temperature, user_embeddings=last
            )
        sel = labels != IGNORE_INDEX
        states, target = hidden[sel], labels[sel]
        loss = self._loss(states, target, table[1:-1])
        if loss_scale is not None:
            loss = loss * loss_scale
        return RecommenderOutput(loss=loss, user_embeddings=last)

    def _loss(self, states: torch.Tensor, target: torch.LongTensor, items: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "full":
            chunk = self.config.loss_chunk_size or max(64, (1 << 20) // max(len(items), 1))
            return chunked_cross_entropy(states, items, target, self.head.temperature, chunk)
        # each state's positive against negatives shared by the batch, accidental hits masked
        negs = torch.randint(0, len(items), (self.config.num_negatives,), device=states.device)
        pos = (states * items[target]).sum(-1, keepdim=True) / self.head.temperature
        neg = self.head.score(states, items[negs]) / self.head.temperature
        hits = target.unsqueeze(1) == negs.unsqueeze(0)
        if self.config.loss == "gbce":
            return gbce_loss(pos.squeeze(1), neg, hits, len(items), self.config.gbce_t)
        scores = torch.cat([pos, neg], dim=1)
        hits = torch.cat([torch.zeros_like(pos, dtype=torch.bool), hits], dim=1)
        return self.head.loss(scores, torch.zeros_like(target), mask=hits)

    # ------------------------------------------------------------------ batches
    def _training_batch(self, items, starts, ends, gen: torch.Generator) -> dict:
        raise NotImplementedError

    def _grouped_batch(self, batch: dict, tokens_per_user: float) -> dict:
        """A batch of users grouped by length (``group_by_length``): the left-padding columns that no row uses are
        dropped (the outputs at the real positions do not change: positions are counted from each window's first
        item or back from its last), and ``loss_scale`` weighs the batch's mean loss by its history tokens (the
        positions it predicts, or for a masked model what its masked positions are drawn from) against
        ``tokens_per_user``, the mean over every user's window, so that a batch of short histories moves the model
        as little as its few positions would in a random batch."""
        first = int((batch["input_ids"] != 0).any(0).long().argmax())  # pads are 0; mask tokens are not
        if first:
            batch = {k: v[:, first:] for k, v in batch.items()}
        batch["loss_scale"] = (batch["input_ids"] != 0).sum() / (len(batch["input_ids"]) * tokens_per_user)
        return batch

    def _inference_tokens(self, items: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> torch.LongTensor:
        tokens = gather_windows(items, starts, ends, self.config.max_sequence_length - self.extra_inference_tokens)
        if self.extra_inference_tokens:
            tokens = np.concatenate([tokens, np.full((len(tokens), 1), self.config.num_items + 1)], axis=1)
        return torch.as_tensor(tokens, dtype=torch.long, device=self.device)

    def _window_ends(self, starts, ends, span: int, gen: torch.Generator) -> np.ndarray:
        """End of each user's training window: the last item, or a random one in a long history."""
        if self.config.train_windows == "last":
            return ends
        lo = np.minimum(starts + span, ends)
        r = torch.rand(len(ends), generator=gen).numpy()
        return lo + np.floor(r * (ends - lo + 1)).astype(np.int64).clip(max=ends - lo)

    # ------------------------------------------------------------------ fitting
    def training_examples(self, interactions: Interactions, item_text_embeddings: tuple | None = None):
        """Size the item tables for the log, store each user's recent items (read when scoring known users) and
        return one example per user with at least ``min_sequence_length`` items; a batch is the users' training
        windows (see ``train_windows``).

        Args:
            item_text_embeddings: ``(item_ids, matrix)`` text embeddings of items, for ``item_text_dim`` models.
        """
        self.resize_tables(interactions.num_users, interactions.num_items)
        if item_text_embeddings is not None:
            self.set_item_text_embeddings(*item_text_embeddings)
        indptr, items = sequences_from_interactions(interactions)
        starts, ends = indptr[:-1], indptr[1:]
        self.user_history = torch.as_tensor(
            gather_windows(items, starts, ends, self.config.max_sequence_length), device=self.device
        )
        users = np.flatnonzero(ends - starts >= self.min_sequence_length)

        grouped = getattr(self.config, "group_by_length", False)
        lengths, tokens_per_user = None, 0.0
        if grouped and len(users):  # (no users: TrainingExamples names the problem)
            lengths = np.minimum(ends - starts, self.config.max_sequence_length)[users]
            gen0, total = torch.Generator().manual_seed(0), 0  # history tokens an average user's window holds
            for part in np.array_split(users, max(1, len(users) // 4096)):
                total += int((self._training_batch(items, starts[part], ends[part], gen0)["input_ids"] != 0).sum())
            tokens_per_user = total / len(users)

        def collate(idx: torch.LongTensor, gen: torch.Generator) -> dict:
            u = users[idx.cpu().numpy()]
            batch = self._training_batch(items, starts[u], ends[u], gen)
            return self._grouped_batch(batch, tokens_per_user) if grouped else batch

        return TrainingExamples(len(users), collate, unit="user", group_lengths=lengths)

    def _partial_fit(self, interactions: Interactions, seen_before=None, **options) -> None:
        """``partial_fit``: continued training with each updated user's stored history before their new items
        (:func:`hf_recsys.online.sequential_partial_fit`); other users keep their stored histories."""
        from ...online import sequential_partial_fit

        sequential_partial_fit(self, interactions, seen_before, **options)

    def update_histories(self, data) -> None:
        """Replace the stored histories (the sequences the model reads for known users, and the seen items) with
        those of ``data``, a log in the model's vocabularies, without training: e.g. after new interactions
        arrive, or to score a test period with the validation items in the history."""
        from ...data.views import encode_interactions

        inter = encode_interactions(data, self.user_vocab, self.item_vocab, unknown_items="drop")
        indptr, items = sequences_from_interactions(inter)
        self.user_history = torch.as_tensor(
            gather_windows(items, indptr[:-1], indptr[1:], self.config.max_sequence_length), device=self.device
        )
        self.seen_items = inter.to_csr("binary")

    # ------------------------------------------------------------------ scoring (index space)
    def _score_tokens(self, tokens: torch.LongTensor, batch_size: int = 512) -> torch.Tensor:
        with eval_mode(self), torch.no_grad():
            return torch.cat([self(input_ids=t).scores for t in tokens.split(batch_size)])

    def _user_tokens(self, user_idx: torch.LongTensor) -> torch.LongTensor:
        tokens = self.user_history[user_idx]
        if self.extra_inference_tokens:
            mask = torch.full((len(tokens), 1), self.config.num_items + 1, device=tokens.device)
            tokens = torch.cat([tokens[:, 1:], mask], dim=1)
        return tokens

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self._score_tokens(self._user_tokens(user_idx))

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        """Scores from time-ordered histories (rows of a CSR matrix whose column order is the time order)."""
        indptr = histories.indptr.astype(np.int64)
        tokens = self._inference_tokens(histories.indices.astype(np.int64), indptr[:-1], indptr[1:])
        return self._score_tokens(tokens)

    def _histories_csr(self, histories) -> sp.csr_matrix:
        """Histories as a CSR matrix that keeps each row's items in the given (time) order."""
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        flat = [i for h in histories for i in h]
        idx = self.item_vocab.encode(flat) if flat else np.zeros(0, dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        return sp.csr_matrix(
            (np.ones(len(idx), np.float32), idx, indptr), shape=(len(histories), self.config.num_items)
        )

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        with eval_mode(self), torch.no_grad():
            table = F.normalize(self.item_table()[1:-1], dim=-1)
            return table[item_idx] @ table.T


def _attention_from(
    attn: nn.Module, query_input: torch.Tensor, kv_input: torch.Tensor, attention_mask=None
) -> torch.Tensor:
    """GPT-2 self-attention with the queries projected from ``query_input`` and the keys and values from
    ``kv_input`` (the same ``c_attn``/``c_proj`` weights and attention kernel as :class:`GPT2Attention`)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.gpt2.modeling_gpt2 import eager_attention_forward

    width, heads = attn.embed_dim, attn.num_heads
    # c_attn itself on both inputs (not its weight slices), so that an adapter on it (LoRA) still applies
    query = attn.c_attn(query_input)[..., :width]
    key, value = attn.c_attn(kv_input)[..., width:].split(width, dim=-1)
    query, key, value = (t.view(*t.shape[:-1], heads, -1).transpose(1, 2) for t in (query, key, value))
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(attn.config._attn_implementation, eager_attention_forward)
    output, _ = interface(
        attn,
        query,
        key,
        value,
        attention_mask,
        dropout=attn.attn_dropout.p if attn.training else 0.0,
        scaling=attn.scaling,
    )
    output = attn.c_proj(output.reshape(*output.shape[:-2], -1).contiguous())
    return attn.resid_dropout(output)


def _normalized_residual_forward(block: nn.Module, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """A GPT-2 block in SASRec's order: each sub-layer adds its output to its layer-normed input,
    ``x = LN_1(x) + attn(LN_1(x))``, ``x = LN_2(x) + mlp(LN_2(x))`` (GPT-2 adds them to ``x``).

    With ``block._sasrec_keys`` (``block_residual="sasrec"``) the attention reads its keys and values from the raw
    stream, as SASRec's ``MHA(Q=LN_1(x), K=x, V=x)``; the queries still come from ``LN_1(x)``."""
    cache, attention_mask = (list(args) + [None, None])[:2]  # GPT2Model passes them by position
    cache, attention_mask = kwargs.pop("cache", cache), kwargs.pop("attention_mask", attention_mask)
    for name in ("encoder_hidden_states", "encoder_attention_mask"):  # no cross-attention in a causal recommender
        kwargs.pop(name, None)
    normed = block.ln_1(hidden_states)
    if getattr(block, "_sasrec_keys", False):
        # GPT2Model makes an empty cache whenever its config says use_cache; a recommender never decodes
        # incrementally, so the cache is left alone, and one that holds earlier tokens is refused
        if cache is not None and cache.get_seq_length() > 0:
            raise ValueError("block_residual='sasrec' cannot continue from a key/value cache")
        attn_output = _attention_from(block.attn, normed, hidden_states, attention_mask)
    else:
        attn_output, _ = block.attn(
            normed, cache=cache, attention_mask=attention_mask, use_cache=kwargs.pop("use_cache", False), **kwargs
        )
    hidden_states = normed + attn_output
    normed = block.ln_2(hidden_states)
    return normed + block.mlp(normed)


def use_normalized_residuals(backbone: nn.Module, keys_from_stream: bool = False) -> None:
    """Run every block of a GPT-2 backbone in SASRec's order (see :func:`_normalized_residual_forward`);
    ``keys_from_stream`` also reads the attention's keys and values from the raw stream, as SASRec does."""
    bb = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
    if bb.config.model_type != "gpt2":
        raise ValueError(
            f"block_residual='normalized' or 'sasrec' rewires GPT-2 blocks; this backbone is "
            f"{bb.config.model_type!r}: use block_residual='stream'."
        )
    for block in bb.h:
        block.forward = types.MethodType(_normalized_residual_forward, block)
        block._sasrec_keys = keys_from_stream


class CausalSequentialRecommender(SequentialRecPreTrainedModel):
    """SASRec-style next-item model with a GPT-2 (causal) backbone, trained to predict every next item.

    Example:
        ```python
        >>> from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender
        >>> from hf_recsys.testing_utils import tiny_log
        >>> log = tiny_log()
        >>> model = CausalSequentialRecommender(CausalSequentialConfig(max_sequence_length=10, hidden_size=32))
        >>> model = model.fit(log, epochs=2, show_progress=False)
        >>> ids, scores = model.recommend(["u1"], k=5)
        >>> ids.shape
        (1, 5)
        ```
    """

    config_class = CausalSequentialConfig
    min_sequence_length = 2

    def __init__(self, config: CausalSequentialConfig):
        super().__init__(config)
        residual = getattr(config, "block_residual", "stream")
        if residual in ("normalized", "sasrec"):
            use_normalized_residuals(self.backbone, keys_from_stream=residual == "sasrec")

    def _training_batch(self, items, starts, ends, gen: torch.Generator) -> dict:
        length = self.config.max_sequence_length
        ends = self._window_ends(starts, ends, length + 1, gen)
        tokens = torch.as_tensor(gather_windows(items, starts, ends, length + 1), device=self.device)
        inputs, nxt = tokens[:, :-1], tokens[:, 1:]
        labels = torch.where((inputs > 0) & (nxt > 0), nxt - 1, IGNORE_INDEX)
        return {"input_ids": inputs, "labels": labels}


class MaskedSequentialRecommender(SequentialRecPreTrainedModel):
    """BERT4Rec-style model with a BERT (bidirectional) backbone, trained to recover randomly masked items; it
    recommends by appending a mask token to the history.

    Example:
        ```python
        >>> from hf_recsys.models.sequential import MaskedSequentialConfig, MaskedSequentialRecommender
        >>> from hf_recsys.testing_utils import tiny_log
        >>> model = MaskedSequentialRecommender(MaskedSequentialConfig(max_sequence_length=10, hidden_size=32))
        >>> model = model.fit(tiny_log(), epochs=2, show_progress=False)
        ```
    """

    config_class = MaskedSequentialConfig
    min_sequence_length = 1
    extra_inference_tokens = 1

    def _training_batch(self, items, starts, ends, gen: torch.Generator) -> dict:
        length = self.config.max_sequence_length
        ends = self._window_ends(starts, ends, length, gen)
        tokens = torch.as_tensor(gather_windows(items, starts, ends, length), device=self.device)
        real = tokens > 0
        masked = (torch.rand(tokens.shape, generator=gen).to(tokens.device) < self.config.mask_prob) & real
        masked[:, -1] |= ~masked.any(1)  # every row predicts something: the last item when nothing else is masked
        labels = torch.where(masked, tokens - 1, IGNORE_INDEX)
        inputs = torch.where(masked, self.config.num_items + 1, tokens)
        return {"input_ids": inputs, "attention_mask": real.long(), "labels": labels}


__all__ = [
    "CausalSequentialRecommender",
    "MaskedSequentialRecommender",
    "SequentialRecPreTrainedModel",
    "gather_windows",
    "gbce_loss",
    "sequences_from_interactions",
]
