"""Scoring heads shared by the backbone recommenders.

Each head is a small ``nn.Module`` that turns user (query) and item representations into scores, computes its loss
in ``forward`` when labels are given, and returns a :class:`~hf_recsys.modeling_utils.RecommenderOutput`:

- :class:`RetrievalHead`: dot-product or cosine scores of queries against a table of items, trained with full or
  sampled softmax (in-batch negatives, optional log-q popularity correction) or BPR;
- :class:`RatingHead`: a rating regression head (dot product plus user/item/global biases), trained with MSE;
- :class:`ClickHead`: a pointwise click head (a logit per user-item pair), trained with binary cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .modeling_utils import RecommenderOutput

SIMILARITIES = ("dot", "cosine")
RETRIEVAL_LOSSES = ("softmax", "bpr")


def _check(name: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}.")


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Mean softmax cross-entropy of ``states @ items.T / temperature`` over every item, ``chunk_size`` rows of logits
    at a time. When a gradient is needed, the forward computes it too, chunk by chunk (the softmax of each chunk is
    turned into its gradient in place and multiplied back at once), and keeps only the two gradients for backward,
    which scales them: at most ``chunk_size x num_items`` logits exist at once, each is computed once, and no softmax
    is recomputed (as Liger-Kernel's fused linear cross-entropy does on GPUs)."""

    @staticmethod
    def forward(ctx, states, items, target, chunk_size: int, temperature: float, compute_dtype):
        acc = torch.promote_types(compute_dtype, torch.float32)  # softmax in fp32 (fp64 stays fp64)
        n = len(states)
        grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        s, w = states.detach().to(compute_dtype), items.detach().to(compute_dtype)
        total = torch.zeros((), dtype=acc, device=states.device)
        grad_states = torch.empty(s.shape, dtype=acc, device=s.device) if grad else None
        grad_items = torch.zeros(w.shape, dtype=acc, device=w.device) if grad else None
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            sc, tc = s[start:stop], target[start:stop, None]
            logits = (sc @ w.T).to(acc)
            if temperature != 1.0:
                logits.div_(temperature)
            picked = logits.gather(1, tc)
            top = logits.amax(1, keepdim=True)
            z = logits.sub_(top).exp_().sum(1, keepdim=True)  # the logits become exp(logit - max)
            total += (z.log() + top - picked).sum()
            if grad:  # d loss / d logits = softmax - one-hot, in place of the exponentials
                probs = logits.div_(z)
                probs.scatter_add_(1, tc, torch.full_like(picked, -1.0))
                probs = probs.to(compute_dtype)
                grad_states[start:stop] = probs @ w
                grad_items += (probs.T @ sc).to(acc)
        if grad:
            ctx.save_for_backward(grad_states, grad_items)
        ctx.scale, ctx.dtypes = 1.0 / (max(n, 1) * temperature), (states.dtype, items.dtype)
        return total / max(n, 1)

    @staticmethod
    def backward(ctx, grad_out):
        grad_states, grad_items = ctx.saved_tensors
        scale = grad_out.to(grad_states.dtype) * ctx.scale
        states_dtype, items_dtype = ctx.dtypes
        return (grad_states * scale).to(states_dtype), (grad_items * scale).to(items_dtype), None, None, None, None


def chunked_cross_entropy(
    states: torch.Tensor,
    items: torch.Tensor,
    target: torch.LongTensor,
    temperature: float = 1.0,
    chunk_size: int = 2048,
) -> torch.Tensor:
    """Mean cross-entropy of each state's ``target`` item against every item, without materialising all the logits.

    Equal to ``F.cross_entropy(states @ items.T / temperature, target)``, computed ``chunk_size`` rows at a time
    (forward and backward). Under bf16 autocast the two matrix products run in bf16, the softmax in fp32.

    Args:
        states: ``(n, d)`` query states.
        items: ``(num_items, d)`` item table.
        target: ``(n,)`` index of each state's positive item.
        temperature: logits are divided by it.
        chunk_size: rows of logits computed at once.

    Returns:
        The scalar mean loss.
    """
    dev = states.device.type
    autocast_bf16 = torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev) == torch.bfloat16
    compute_dtype = torch.bfloat16 if autocast_bf16 else torch.promote_types(states.dtype, items.dtype)
    return _ChunkedCrossEntropy.apply(states, items, target, int(chunk_size), float(temperature), compute_dtype)


class RetrievalHead(nn.Module):
    """Scores queries against items by dot product or cosine similarity.

    Args:
        similarity: ``"dot"`` or ``"cosine"``.
        temperature: logits are divided by it (useful with cosine similarity, whose range is [-1, 1]).
        loss: ``"softmax"`` (cross-entropy of the positive against every item given, or every other in-batch
            positive) or ``"bpr"`` (pairwise, the positive against each negative).

    Example:
        ```python
        >>> import torch
        >>> from hf_recsys.heads import RetrievalHead
        >>> head = RetrievalHead(similarity="cosine", temperature=0.1)
        >>> out = head(torch.randn(4, 8), torch.randn(20, 8), labels=torch.tensor([0, 3, 5, 19]))
        >>> out.scores.shape, out.loss.shape
        (torch.Size([4, 20]), torch.Size([]))
        ```
    """

    def __init__(self, similarity: str = "dot", temperature: float = 1.0, loss: str = "softmax"):
        super().__init__()
        _check("similarity", similarity, SIMILARITIES)
        _check("loss", loss, RETRIEVAL_LOSSES)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        self.similarity, self.temperature, self.loss_type = similarity, float(temperature), loss

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The representation the head scores with (unit length for cosine similarity)."""
        return F.normalize(x, dim=-1) if self.similarity == "cosine" else x

    def score(self, queries: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``(b, n)`` scores of ``queries`` ``(b, d)`` against ``items`` ``(n, d)``, before the temperature."""
        return self.normalize(queries) @ self.normalize(items).T

    def forward(
        self,
        queries: torch.Tensor,
        items: torch.Tensor,
        labels: torch.LongTensor | None = None,
        log_q: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> RecommenderOutput:
        """Scores, and the loss when ``labels`` are given.

        Args:
            queries: ``(batch, dim)`` user or sequence representations.
            items: ``(num_candidates, dim)`` item representations (the whole catalogue, sampled items, or the
                in-batch positives).
            labels: ``(batch,)`` index into ``items`` of each query's positive item.
            log_q: ``(num_candidates,)`` log sampling probability of each candidate; subtracted from the logits
                during training to correct the popularity bias of in-batch / sampled negatives (log-q correction).
            mask: ``(batch, num_candidates)`` bool, ``True`` where a candidate must not act as a negative (e.g.
                the same item appearing twice in a batch); the positive itself is never masked.

        Returns:
            :class:`RecommenderOutput` with ``scores`` ``(batch, num_candidates)`` (similarity / temperature, no
            log-q correction) and ``loss`` when labels are given.
        """
        scores = self.score(queries, items) / self.temperature
        loss = None if labels is None else self.loss(scores, labels, log_q=log_q, mask=mask)
        return RecommenderOutput(loss=loss, scores=scores, user_embeddings=queries, item_embeddings=items)

    def loss(
        self,
        scores: torch.Tensor,
        labels: torch.LongTensor,
        log_q: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The training loss of ``(batch, num_candidates)`` scores given each row's positive column."""
        logits = scores if log_q is None else scores - log_q.unsqueeze(0)
        rows = torch.arange(len(labels), device=logits.device)
        if mask is not None:
            mask = mask.clone()
            mask[rows, labels] = False
            logits = logits.masked_fill(mask, torch.finfo(logits.dtype).min)
        if self.loss_type == "softmax":
            return F.cross_entropy(logits, labels)
        pos = logits[rows, labels].unsqueeze(1)
        valid = torch.ones_like(logits, dtype=torch.bool)
        valid[rows, labels] = False
        if mask is not None:
            valid &= ~mask
        pair_loss = -F.logsigmoid(pos - logits)
        return (pair_loss * valid).sum() / valid.sum().clamp(min=1)


class RatingHead(nn.Module):
    """Rating regression: ``<u, i> + b_u + b_i + mu``, trained with mean squared error.

    Args:
        num_users: size of the user-bias table (0 for no user bias, e.g. for cold users).
        num_items: size of the item-bias table (0 for no item bias).
        global_mean: initial value of the global offset ``mu`` (e.g. the mean training rating).

    Example:
        ```python
        >>> import torch
        >>> from hf_recsys.heads import RatingHead
        >>> head = RatingHead(num_users=10, num_items=20, global_mean=3.5)
        >>> out = head(torch.randn(4, 8), torch.randn(4, 8), user_idx=torch.arange(4), item_idx=torch.arange(4),
        ...            labels=torch.tensor([4.0, 3.0, 5.0, 1.0]))
        >>> out.scores.shape
        torch.Size([4])
        ```
    """

    def __init__(self, num_users: int = 0, num_items: int = 0, global_mean: float = 0.0):
        super().__init__()
        self.user_bias = nn.Embedding(num_users, 1) if num_users else None
        self.item_bias = nn.Embedding(num_items, 1) if num_items else None
        for table in (self.user_bias, self.item_bias):
            if table is not None:
                nn.init.zeros_(table.weight)
        self.global_bias = nn.Parameter(torch.tensor(float(global_mean)))

    def forward(
        self,
        user_embeddings: torch.Tensor,
        item_embeddings: torch.Tensor,
        user_idx: torch.LongTensor | None = None,
        item_idx: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> RecommenderOutput:
        """Predicted ratings ``(batch,)`` of each (user, item) pair, and the MSE loss when ``labels`` are given.

        Args:
            user_embeddings, item_embeddings: ``(batch, dim)`` representations of the pairs.
            user_idx, item_idx: ``(batch,)`` indices into the bias tables (needed when the head has them).
            labels: ``(batch,)`` observed ratings.
        """
        pred = (user_embeddings * item_embeddings).sum(-1) + self.global_bias
        if self.user_bias is not None and user_idx is not None:
            pred = pred + self.user_bias(user_idx).squeeze(-1)
        if self.item_bias is not None and item_idx is not None:
            pred = pred + self.item_bias(item_idx).squeeze(-1)
        loss = None if labels is None else F.mse_loss(pred, labels.to(pred.dtype))
        return RecommenderOutput(
            loss=loss, scores=pred, user_embeddings=user_embeddings, item_embeddings=item_embeddings
        )


class ClickHead(nn.Module):
    """Pointwise click prediction: a logit per (user, item) pair from an MLP over ``[u, i, u * i]``, trained with
    binary cross-entropy. ``scores`` are logits; ``torch.sigmoid(scores)`` is the click probability.

    Args:
        hidden_size: size of the user and item representations.
        mlp_size: width of the hidden layer (0 for a linear head over ``[u, i, u * i]``).
        pos_weight: weight of positive examples in the loss (for imbalanced click logs).

    Example:
        ```python
        >>> import torch
        >>> from hf_recsys.heads import ClickHead
        >>> head = ClickHead(hidden_size=8)
        >>> out = head(torch.randn(4, 8), torch.randn(4, 8), labels=torch.tensor([1.0, 0.0, 0.0, 1.0]))
        >>> out.scores.shape
        torch.Size([4])
        ```
    """

    def __init__(self, hidden_size: int, mlp_size: int = 64, pos_weight: float | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        width = 3 * hidden_size
        if mlp_size:
            layers += [nn.Linear(width, mlp_size), nn.GELU()]
            width = mlp_size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.pos_weight = None if pos_weight is None else float(pos_weight)

    def forward(
        self, user_embeddings: torch.Tensor, item_embeddings: torch.Tensor, labels: torch.Tensor | None = None
    ) -> RecommenderOutput:
        """Click logits ``(batch,)`` of each pair, and the BCE loss when ``labels`` (0/1) are given."""
        feats = torch.cat([user_embeddings, item_embeddings, user_embeddings * item_embeddings], dim=-1)
        logits = self.mlp(feats).squeeze(-1)
        loss = None
        if labels is not None:
            pw = None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)
            loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=pw)
        return RecommenderOutput(
            loss=loss, scores=logits, user_embeddings=user_embeddings, item_embeddings=item_embeddings
        )


__all__ = ["ClickHead", "RatingHead", "RetrievalHead"]
