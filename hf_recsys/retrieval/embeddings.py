"""The uniform view of a model's vectors that ANN retrieval needs: ``retrieval_embeddings(model)``.

Every model with item embeddings scores a (user, item) pair as ``query(user) . item_vector + offset(user)``:
the per-user offset (a user bias, a global mean) does not change the ranking, so the index holds the item
vectors and searches with the query vectors; item biases become one more item dimension (the query gets a 1).
A model may override ``retrieval_embeddings()`` to return a :class:`RetrievalEmbeddings`; the families of
this project (ALS, BPRMF, BiasedMF, two-tower, causal / masked sequential) are handled here, by ``model_type``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

Queries = tuple[torch.Tensor, torch.Tensor | None]  # (b, d) query vectors and (b,) score offsets (or None)


@dataclass
class RetrievalEmbeddings:
    """What an index needs from a model, in index space.

    Args:
        item_vectors: ``item_vectors(idx=None)`` -> ``(len(idx) or num_items, d)`` float tensor of item vectors.
        user_queries: ``user_queries(user_idx)`` -> ``(queries, offsets)`` for users known at training time.
        history_queries: ``history_queries(csr)`` -> ``(queries, offsets)`` from item histories (cold users), or
            ``None`` when the model cannot score histories.
        similarity_vectors: ``similarity_vectors(idx=None)`` -> unit item vectors whose inner products are the
            model's ``item_similarity`` (cosine), or ``None``.

    The exact score of user ``u`` for item ``i`` is ``queries[u] . item_vectors[i] + offsets[u]``.
    """

    item_vectors: Callable[[torch.Tensor | None], torch.Tensor]
    user_queries: Callable[[torch.Tensor], Queries]
    history_queries: Callable[[sp.csr_matrix], Queries] | None = None
    similarity_vectors: Callable[[torch.Tensor | None], torch.Tensor] | None = None


def _rows(table: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    return table if idx is None else table[idx]


def _ones(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1)


def _unit(fn: Callable[[torch.Tensor | None], torch.Tensor]) -> Callable[[torch.Tensor | None], torch.Tensor]:
    return lambda idx=None: F.normalize(fn(idx), dim=-1)


def _als(model) -> RetrievalEmbeddings:
    items = lambda idx=None: _rows(model.item_factors, idx)  # noqa: E731
    return RetrievalEmbeddings(
        item_vectors=items,
        user_queries=lambda u: (model.user_factors[u], None),
        history_queries=lambda h: (model.fold_in(h), None),
        similarity_vectors=_unit(items),
    )


def _bprmf(model) -> RetrievalEmbeddings:
    def items(idx=None):
        emb, bias = model._item_side(idx)
        return torch.cat([emb, bias[:, None]], dim=1)

    emb = lambda idx=None: model.item_embeddings.weight if idx is None else model.item_embeddings(idx)  # noqa: E731
    return RetrievalEmbeddings(
        item_vectors=items,
        user_queries=lambda u: (_ones(model.user_embeddings(u)), None),
        history_queries=lambda h: (_ones(model.fold_in(h)), None),
        similarity_vectors=_unit(emb),
    )


def _biased_mf(model) -> RetrievalEmbeddings:
    def items(idx=None):
        return torch.cat([_rows(model.item_embeddings.weight, idx), _rows(model.item_biases.weight, idx)], dim=1)

    def users(u):
        return _ones(model.user_embeddings(u)), model.user_biases(u).squeeze(-1) + model.global_mean

    def histories(h):
        theta = model.fold_in(h)
        return _ones(theta[:, :-1]), theta[:, -1] + model.global_mean

    similarity = _unit(lambda idx=None: _rows(model.item_embeddings.weight, idx))
    return RetrievalEmbeddings(items, users, histories, similarity)


def _two_tower(model) -> RetrievalEmbeddings:
    from ..models.backbone_utils import eval_mode
    from ..models.two_tower.modeling_two_tower import _csr_to_torch

    head = model.head

    def items(idx=None):
        return _rows(head.normalize(model.item_embeddings_all()), idx)

    def queries(hist: sp.csr_matrix, user_idx):
        with eval_mode(model), torch.no_grad():
            users = model.user_tower(_csr_to_torch(hist, model.device), user_idx)
        return head.normalize(users) / head.temperature, None

    return RetrievalEmbeddings(
        item_vectors=items,
        user_queries=lambda u: queries(model.seen_items[u.cpu().numpy()], u),
        history_queries=lambda h: queries(h, None),
        similarity_vectors=_unit(lambda idx=None: _rows(model.item_embeddings_all(), idx)),
    )


def _sequential(model) -> RetrievalEmbeddings:
    from ..models.backbone_utils import eval_mode

    def table(idx=None):
        return _rows(model.item_table()[1:-1], idx)

    def queries(tokens: torch.Tensor):
        with eval_mode(model), torch.no_grad():
            last = torch.cat([model.encode(t)[:, -1] for t in tokens.split(512)])
        return model.head.normalize(last) / model.head.temperature, None

    def histories(h: sp.csr_matrix):
        indptr = h.indptr.astype(np.int64)
        return queries(model._inference_tokens(h.indices.astype(np.int64), indptr[:-1], indptr[1:]))

    items = lambda idx=None: model.head.normalize(table(idx))  # noqa: E731
    return RetrievalEmbeddings(items, lambda u: queries(model._user_tokens(u)), histories, _unit(table))


FAMILIES: dict[str, Callable] = {
    "als": _als,
    "bprmf": _bprmf,
    "biased_mf": _biased_mf,
    "two_tower": _two_tower,
    "causal_sequential": _sequential,
    "masked_sequential": _sequential,
}


def family_embeddings(model) -> RetrievalEmbeddings:
    """The :class:`RetrievalEmbeddings` of a model of one of the project's families (by ``config.model_type``).

    Raises:
        NotImplementedError: the model has no item embeddings (EASE, ItemKNN, MostPopular score items otherwise).
    """
    family = FAMILIES.get(getattr(model.config, "model_type", None))
    if family is None:
        raise NotImplementedError(
            f"{type(model).__name__} ({model.config.model_type}) has no item embeddings to index: ANN retrieval "
            f"works for {', '.join(sorted(FAMILIES))} or models overriding retrieval_embeddings()."
        )
    return family(model)


__all__ = ["FAMILIES", "RetrievalEmbeddings", "family_embeddings"]
