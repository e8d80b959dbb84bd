"""``RecPreTrainedModel``, ``RecommenderOutput`` and the recommend contract shared by every hf-recsys model.

Subclasses work in index space and implement a few methods:

- ``score_users(user_idx)`` -> ``(batch, num_items)`` scores for users known at training time (required);
- ``score_histories(histories)`` -> ``(batch, num_items)`` scores from a CSR matrix of item histories, for users
  unseen at training time (optional: set ``supports_history = True``);
- ``item_similarity(item_idx)`` -> ``(batch, num_items)`` (optional, for ``similar_items``);
- ``_fit(interactions)`` for models fitted by a solver (``fit``).

The base class turns those into the public, id-space API: ``recommend``, ``score``, ``score_pairs``,
``similar_items`` and ``fit``, and saves/loads the id vocabularies and the seen-items matrix with the weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_utils import RecConfig
from .data.views import Interactions, build_vocabs, encode_interactions
from .data.vocab import VOCAB_FILE, IdVocab, UnknownIdError, load_vocabs, save_vocabs

if TYPE_CHECKING:
    from .training.examples import TrainingExamples

logger = logging.getLogger(__name__)

SEEN_FILE = "seen_items.safetensors"
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


@dataclass
class RecommenderOutput(ModelOutput):
    """Output of every hf-recsys model's ``forward``.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): training loss, returned when labels are given.
        scores (`torch.FloatTensor` of shape `(batch_size, num_items)` or `(batch_size,)`): scores over all items,
            or one score per (user, item) pair when items are given.
        user_embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*): user
            representations, for models that have them.
        item_embeddings (`torch.FloatTensor` of shape `(num_items or batch_size, hidden_size)`, *optional*): item
            representations, for models that have them.
    """

    loss: torch.FloatTensor | None = None
    scores: torch.FloatTensor | None = None
    user_embeddings: torch.FloatTensor | None = None
    item_embeddings: torch.FloatTensor | None = None


class Recommendations(tuple):
    """What :meth:`RecPreTrainedModel.recommend` and ``similar_items`` return: the pair ``(item_ids, scores)``
    (it unpacks as one), plus ``ignored_items``: ``{user: [history item ids the model does not know]}`` that
    ``ignore_unknown_items=True`` dropped (empty otherwise)."""

    def __new__(cls, item_ids: np.ndarray, scores: np.ndarray, ignored_items: dict | None = None):
        self = super().__new__(cls, (item_ids, scores))
        self.ignored_items = dict(ignored_items or {})
        return self

    def __getnewargs__(self) -> tuple:  # pickle / copy rebuild it with its three parts
        return (self[0], self[1], self.ignored_items)

    @property
    def item_ids(self) -> np.ndarray:
        return self[0]

    @property
    def scores(self) -> np.ndarray:
        return self[1]

    @property
    def num_ignored_items(self) -> int:
        """How many history items were ignored, over all users."""
        return sum(len(v) for v in self.ignored_items.values())


def _as_id_list(values: Any) -> list | np.ndarray:
    """Ids as a list (or array): a single id (a string, a number) is a list of one, never split into characters."""
    if isinstance(values, (str, bytes, np.generic)) or not hasattr(values, "__iter__"):
        return [values.item() if isinstance(values, np.generic) else values]
    if isinstance(values, np.ndarray):
        return values if values.ndim else [values.item()]
    return list(values)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")


class NotFittedError(RuntimeError):
    """The model has no vocabulary / fitted state yet."""


class RecPreTrainedModel(PreTrainedModel):
    """Base class of every recommender: a ``transformers.PreTrainedModel`` plus the recommend contract.

    Class attributes for subclasses:
        supports_history: ``score_histories`` is implemented (cold users recommended from their history).
        empty_history_ok: the model's answer for an empty history is meaningful (MostPopular: the popular items);
            for every other model an empty history raises ``ValueError`` instead of returning arbitrary items.
        trainable: ``False`` for closed-form / solver-fitted models; their parameters are frozen after init and
            after loading, so a Trainer never updates them.
    """

    config_class = RecConfig
    base_model_prefix = "rec"
    main_input_name = "user_ids"
    supports_history: ClassVar[bool] = False
    empty_history_ok: ClassVar[bool] = False
    trainable: ClassVar[bool] = True
    # losses are means computed by the model itself: transformers.Trainer must not pass num_items_in_batch and skip
    # its division by the gradient-accumulation steps (it would when forward takes **kwargs)
    accepts_loss_kwargs: ClassVar[bool] = False

    def __init__(self, config: RecConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.user_vocab: IdVocab | None = None
        self.item_vocab: IdVocab | None = None
        self.seen_items: sp.csr_matrix | None = None

    def _init_weights(self, module: torch.nn.Module) -> None:  # fitted models start from zeros; neural ones override
        pass

    def post_init(self) -> None:
        super().post_init()
        if not self.trainable:
            self.requires_grad_(False)

    # ------------------------------------------------------------------ index-space hooks for subclasses
    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        """Scores of every item for known users, shape ``(len(user_idx), num_items)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement score_users.")

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        """Scores of every item for users given only by their item histories (CSR ``(batch, num_items)``)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot recommend for users unseen at training time from their history."
        )

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        """Similarity of the given items to every item, shape ``(len(item_idx), num_items)``."""
        raise NotImplementedError(f"{type(self).__name__} does not define item-item similarity.")

    def score_pairs_idx(self, user_idx: torch.LongTensor, item_idx: torch.LongTensor) -> torch.Tensor:
        """One score per (user, item) pair; the default gathers from ``score_users``."""
        out = torch.empty(len(user_idx), dtype=torch.float32, device=user_idx.device)
        uniq, inv = torch.unique(user_idx, return_inverse=True)
        for start in range(0, len(uniq), 1024):
            block = uniq[start : start + 1024]
            scores = self.score_users(block)
            sel = (inv >= start) & (inv < start + len(block))
            out[sel] = scores[inv[sel] - start, item_idx[sel]].float()
        return out

    def _fit(self, interactions: Interactions, **kwargs) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} is trained by gradient descent: use hf_recsys.training, not fit()."
        )

    def training_examples(self, interactions: Interactions, **kwargs) -> TrainingExamples:
        """Prepare the model for gradient training on ``interactions`` and return its examples.

        Gradient-trained families override this: they size their tables for the log, store what they read at
        inference (histories, popularity) and return a :class:`~hf_recsys.training.TrainingExamples` whose
        ``collate(indices, generator)`` builds ``forward`` keyword arguments with a ``loss``. The Accelerate
        trainer (:class:`~hf_recsys.training.RecTrainer`, ``hf-recsys train``) shards these examples over processes.

        Raises:
            NotImplementedError: for models fitted by a solver or by counting (EASE, ItemKNN, ALS, MostPopular):
                use :meth:`fit`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} ({self.config.model_type}) is not trained by gradient descent: fit it with "
            "model.fit(data) or `hf-recsys fit`, not the Accelerate trainer."
        )

    def forward(self, user_ids: torch.LongTensor, **kwargs) -> RecommenderOutput:
        """Scores of every item for the given user indices."""
        return RecommenderOutput(scores=self.score_users(user_ids))

    # ------------------------------------------------------------------ vocabularies and fitted state
    def set_vocabs(self, user_vocab: IdVocab | None, item_vocab: IdVocab | None) -> None:
        """Attach id vocabularies and size the config from them."""
        if user_vocab is not None:
            self.user_vocab = user_vocab
            self.config.num_users = len(user_vocab)
        if item_vocab is not None:
            self.item_vocab = item_vocab
            self.config.num_items = len(item_vocab)

    def _require_vocab(self) -> None:
        if self.user_vocab is None or self.item_vocab is None:
            raise NotFittedError(
                f"{type(self).__name__} has no id vocabulary: fit it first or call set_vocabs(user_vocab, item_vocab)."
            )

    def fit(
        self,
        data: Any,
        user_vocab: IdVocab | None = None,
        item_vocab: IdVocab | None = None,
        show_progress: bool = True,
        **kwargs,
    ) -> RecPreTrainedModel:
        """Fit the model on an interaction log.

        Args:
            data: ``datasets.Dataset`` / pandas DataFrame with canonical columns (``user_id``, ``item_id``,
                optional ``rating``, ``timestamp``), or already-encoded :class:`Interactions`.
            user_vocab, item_vocab: vocabularies to use; by default the model's own, else built from ``data``.
            show_progress: show a progress bar for iterative solvers.
            **kwargs: passed to the model's solver.

        Returns:
            The model itself, fitted.

        Example:
            ```python
            >>> from hf_recsys import MostPopularConfig, MostPopularModel
            >>> from hf_recsys.data import generate_interactions
            >>> log, _ = generate_interactions(num_users=50, num_items=30, num_interactions=500, seed=0)
            >>> model = MostPopularModel(MostPopularConfig()).fit(log)
            >>> ids, scores = model.recommend([log[0]["user_id"]], k=3)
            ```
        """
        if len(data) == 0:
            raise ValueError("Cannot fit on an empty interaction log.")
        if isinstance(data, Interactions):
            self._require_vocab()
            inter = data
        else:
            built_u, built_i = (None, None)
            if (user_vocab or self.user_vocab) is None or (item_vocab or self.item_vocab) is None:
                built_u, built_i = build_vocabs(data)
            self.set_vocabs(user_vocab or self.user_vocab or built_u, item_vocab or self.item_vocab or built_i)
            inter = encode_interactions(data, self.user_vocab, self.item_vocab)
        self.config.num_users, self.config.num_items = inter.num_users, inter.num_items
        self.seen_items = inter.to_csr("binary")
        self._fit(inter, show_progress=show_progress, **kwargs)
        if not self.trainable:
            self.requires_grad_(False)
        return self

    # ------------------------------------------------------------------ the public, id-space API
    def _encode_users(self, users: Sequence[Any]) -> np.ndarray:
        self._require_vocab()
        hint = (
            "Pass histories= to recommend from their item histories."
            if self.supports_history
            else (f"{type(self).__name__} cannot score users unseen at training time.")
        )
        try:
            return self.user_vocab.encode(list(users) if not isinstance(users, np.ndarray) else users)
        except UnknownIdError as exc:
            raise UnknownIdError("user", exc.ids, hint) from None

    def _histories_csr(self, histories: Sequence[Sequence[Any]]) -> sp.csr_matrix:
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        flat = [i for h in histories for i in h]
        idx = self.item_vocab.encode(flat) if flat else np.zeros(0, dtype=np.int64)
        rows = np.repeat(np.arange(len(histories)), lengths)
        m = sp.csr_matrix((np.ones(len(idx), np.float32), (rows, idx)), shape=(len(histories), self.config.num_items))
        m.sum_duplicates()
        m.data[:] = 1
        return m

    def _batch_scores(self, user_idx: np.ndarray, hists: list | None, exclude_seen: bool) -> torch.Tensor:
        """Scores ``(batch, num_items)``; rows with ``user_idx == -1`` are scored from ``hists`` (cold users)."""
        cold = user_idx < 0
        warm_rows, cold_rows = np.flatnonzero(~cold), np.flatnonzero(cold)
        scores = torch.empty(len(user_idx), self.config.num_items, device=self.device)
        seen_parts = []
        if len(warm_rows):
            idx = torch.as_tensor(user_idx[warm_rows], dtype=torch.long, device=self.device)
            scores[torch.as_tensor(warm_rows, device=self.device)] = self.score_users(idx).float()
            if self.seen_items is not None:
                seen_parts.append((warm_rows, self.seen_items[user_idx[warm_rows]]))
        if len(cold_rows):
            hist = self._histories_csr([hists[j] for j in cold_rows])
            scores[torch.as_tensor(cold_rows, device=self.device)] = self.score_histories(hist).float()
            seen_parts.append((cold_rows, hist))
        if exclude_seen:
            for rows_of, seen in seen_parts:
                rows = rows_of[np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))]
                scores[
                    torch.as_tensor(rows, device=self.device), torch.as_tensor(seen.indices, device=self.device)
                ] = -torch.inf
        return scores

    def _split_histories(
        self, users: Sequence[Any], histories: Any, ignore_unknown_items: bool = False
    ) -> tuple[np.ndarray, list | None, dict[Any, list]]:
        """User indices (-1 for users to score from a history), the histories aligned with ``users`` and, with
        ``ignore_unknown_items``, ``{user: [unknown item ids dropped from their history]}``."""
        if histories is None:
            return self._encode_users(users), None, {}
        if not self.supports_history:
            raise NotImplementedError(f"{type(self).__name__} cannot recommend from item histories.")
        if isinstance(histories, Mapping):
            hists = [histories.get(u) for u in users]
        else:
            hists = list(histories)
            if len(hists) != len(users):
                raise ValueError(f"histories has {len(hists)} entries but {len(users)} users were given.")
        hists = [None if h is None else _as_id_list(h) for h in hists]
        ignored: dict[Any, list] = {}
        if ignore_unknown_items:
            for j, h in enumerate(hists):
                if h:
                    known = self.item_vocab.encode(h, unknown="mask") >= 0
                    if not known.all():
                        ignored[users[j]] = [i for i, ok in zip(h, known) if not ok]
                        hists[j] = [i for i, ok in zip(h, known) if ok]
        empty = [] if self.empty_history_ok else [u for u, h in zip(users, hists) if h is not None and len(h) == 0]
        if empty:
            why = " (after dropping their unknown items)" if any(u in ignored for u in empty) else ""
            raise ValueError(
                f"{len(empty)} user(s) have an empty item history{why}: {', '.join(map(repr, empty[:5]))}. There is "
                f"nothing for {type(self).__name__} to recommend from: give at least one known item, or serve users "
                "without history with a model such as most_popular."
            )
        user_idx = np.full(len(users), -1, dtype=np.int64)
        no_hist = [j for j, h in enumerate(hists) if h is None]
        if no_hist:  # users without a given history must be known; they are scored as usual
            user_idx[no_hist] = self._encode_users([users[j] for j in no_hist])
        return user_idx, hists, ignored

    def _encode_candidates(self, items: Sequence[Any]) -> torch.Tensor:
        """Candidate item indices; duplicates are refused (they would be recommended twice)."""
        items = _as_id_list(items)
        idx = self.item_vocab.encode(items)
        uniq, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            dup = self.item_vocab.decode(uniq[counts > 1]).tolist()
            raise ValueError(
                f"items= lists {len(dup)} item id(s) more than once: {', '.join(map(repr, dup[:5]))}"
                f"{' ...' if len(dup) > 5 else ''}. Each candidate must appear once."
            )
        return torch.as_tensor(idx, device=self.device)

    @torch.no_grad()
    def recommend(
        self,
        users: Any,
        k: int = 10,
        exclude_seen: bool = True,
        items: Sequence[Any] | None = None,
        histories: Mapping[Any, Sequence[Any]] | Sequence[Sequence[Any]] | None = None,
        batch_size: int = 1024,
        ignore_unknown_items: bool = False,
    ) -> Recommendations:
        """Top-``k`` items for each user, in the caller's own ids.

        Args:
            users: user ids as in the training log; a single id (``"cust-0001"``, ``42``) is one user.
            k: number of items per user (>= 1; capped at the number of candidate items).
            exclude_seen: drop items the user interacted with in training (or in the given history).
            items: restrict the ranking to these candidate item ids; an id listed twice raises ``ValueError``
                (naming it) rather than being recommended twice.
            histories: item histories for users unseen at training time (a dict ``{user: [item, ...]}``, or a
                list aligned with ``users``); models with ``supports_history`` score those users from it. An empty
                history raises ``ValueError`` (there is nothing to rank from), except for models whose
                ``empty_history_ok`` says their answer is meaningful without one (MostPopular).
            batch_size: users scored at once (>= 1).
            ignore_unknown_items: drop history items the model has never seen instead of raising
                :class:`UnknownIdError`; the dropped ids are in the answer's ``ignored_items``.

        Returns:
            :class:`Recommendations` ``(item_ids, scores)``: arrays of shape ``(len(users), k)``, best first; it
            unpacks as a pair. A score of ``-inf`` marks filler where a user has fewer than ``k`` eligible items.

        Example:
            ```python
            >>> ids, scores = model.recommend(["u1", "u2"], k=5)  # doctest: +SKIP
            ```
        """
        self._require_vocab()
        _check_batch_size(batch_size)
        users = _as_id_list(users)
        user_idx, hists, ignored = self._split_histories(users, histories, ignore_unknown_items)
        cand = None if items is None else self._encode_candidates(items)
        n_cand = self.config.num_items if cand is None else len(cand)
        if k < 1 or n_cand < 1:
            raise ValueError(f"recommend needs k >= 1 and at least one candidate item, got k={k}.")
        k = int(min(k, n_cand))
        out_idx = np.empty((len(users), k), dtype=np.int64)
        out_scores = np.empty((len(users), k), dtype=np.float32)
        for start in range(0, len(users), batch_size):
            sl = slice(start, start + batch_size)
            scores = self._batch_scores(user_idx[sl], hists[sl] if hists is not None else None, exclude_seen)
            if cand is not None:
                scores = scores[:, cand]
            top_s, top_i = torch.topk(scores, k, dim=1)
            if cand is not None:
                top_i = cand[top_i]
            out_idx[sl], out_scores[sl] = top_i.cpu().numpy(), top_s.cpu().numpy()
        return Recommendations(self.item_vocab.decode(out_idx), out_scores, ignored)

    @torch.no_grad()
    def score(
        self,
        users: Any,
        items: Sequence[Any],
        histories: Any = None,
        batch_size: int = 1024,
        ignore_unknown_items: bool = False,
    ) -> np.ndarray:
        """Scores of every given item for every given user: array of shape ``(len(users), len(items))``.

        Args:
            users: user ids (a single id is one user).
            items: item ids to score.
            histories: item histories for users unseen at training time, as in :meth:`recommend`.
            batch_size: users scored at once (>= 1): memory stays ``batch_size x num_items`` whatever the number of
                users.
            ignore_unknown_items: drop history items the model has never seen, as in :meth:`recommend`.
        """
        self._require_vocab()
        _check_batch_size(batch_size)
        users = _as_id_list(users)
        user_idx, hists, _ = self._split_histories(users, histories, ignore_unknown_items)
        item_idx = torch.as_tensor(self.item_vocab.encode(_as_id_list(items)), device=self.device)
        out = np.empty((len(users), len(item_idx)), dtype=np.float32)
        for start in range(0, len(users), batch_size):
            sl = slice(start, start + batch_size)
            scores = self._batch_scores(user_idx[sl], hists[sl] if hists is not None else None, exclude_seen=False)
            out[sl] = scores[:, item_idx].cpu().numpy()
        return out

    @torch.no_grad()
    def score_pairs(self, users: Sequence[Any], items: Sequence[Any]) -> np.ndarray:
        """One score per ``(users[j], items[j])`` pair (e.g. a predicted rating): array of shape ``(n,)``."""
        users, items = _as_id_list(users), _as_id_list(items)
        if len(users) != len(items):
            raise ValueError(f"score_pairs needs as many users as items, got {len(users)} and {len(items)}.")
        u = torch.as_tensor(self._encode_users(users), device=self.device)
        i = torch.as_tensor(self.item_vocab.encode(items), device=self.device)
        return self.score_pairs_idx(u, i).cpu().numpy()

    @torch.no_grad()
    def similar_items(self, items: Any, k: int = 10) -> Recommendations:
        """The ``k`` items most similar to each given item (the item itself excluded): ``(item_ids, scores)``.

        Args:
            items: item ids (a single id is one item).
            k: neighbours per item (>= 1, as in :meth:`recommend`; capped at the number of other items).
        """
        self._require_vocab()
        if k < 1 or self.config.num_items < 2:
            raise ValueError(f"similar_items needs k >= 1 and at least two items, got k={k}.")
        idx = torch.as_tensor(self.item_vocab.encode(_as_id_list(items)), device=self.device)
        sims = self.item_similarity(idx).float()
        sims[torch.arange(len(idx), device=sims.device), idx] = -torch.inf
        k = int(min(k, self.config.num_items - 1))
        top_s, top_i = torch.topk(sims, k, dim=1)
        return Recommendations(self.item_vocab.decode(top_i.cpu().numpy()), top_s.cpu().numpy())

    # ------------------------------------------------------------------ saving and loading
    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """``PreTrainedModel.save_pretrained`` plus the id vocabularies and the seen-items matrix (safetensors)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            self._save_rec_files(save_directory)

    def _save_rec_files(self, save_directory: str | os.PathLike) -> None:
        """Write the id vocabularies, the seen items and, last, the file manifest beside the weights.

        Subclasses that write their weights themselves (e.g. LoRA backbones) call this at the end of their own
        ``save_pretrained``.
        """
        if self.user_vocab is not None or self.item_vocab is not None:
            save_vocabs(save_directory, self.user_vocab, self.item_vocab)
        if self.seen_items is not None:
            m = self.seen_items.tocsr()
            save_file(
                {
                    "indptr": torch.as_tensor(m.indptr.astype(np.int64)),
                    "indices": torch.as_tensor(m.indices.astype(np.int64)),
                    "shape": torch.tensor(m.shape, dtype=torch.int64),
                },
                os.path.join(save_directory, SEEN_FILE),
            )
        from .hub import write_manifest

        write_manifest(save_directory)  # last: lists every file with its sha256 so loading can refuse partial saves

    def push_to_hub(self, repo_id: str, **kwargs):
        """Push the model to the Hub in one commit, with its id vocabulary and a model card.

        See :func:`hf_recsys.hub.push_to_hub` for the arguments (``eval_results``, ``revision``, ``private``,
        ``token``, ``commit_message``, card options).
        """
        from .hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        """``PreTrainedModel.from_pretrained`` plus the id vocabularies and seen items saved beside the weights."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        model._load_rec_files(str(pretrained_model_name_or_path), hub)
        if not model.trainable:
            model.requires_grad_(False)
        return model

    def _load_rec_files(self, path: str, hub: dict) -> None:
        from transformers.utils import cached_file

        from .hub import MANIFEST_KEY, verify_checkpoint

        verify_checkpoint(path, **hub)  # every file listed at save time is present and unchanged
        self.config.__dict__.pop(MANIFEST_KEY, None)

        def fetch(name: str) -> str | None:
            return cached_file(
                path,
                name,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
                **hub,
            )

        vocab_path = fetch(VOCAB_FILE)
        if vocab_path is not None:
            users, items = load_vocabs(vocab_path)
            for kind, vocab, size in (("user", users, self.config.num_users), ("item", items, self.config.num_items)):
                if vocab is not None and len(vocab) != size:
                    raise ValueError(
                        f"{VOCAB_FILE} in {path} holds {len(vocab)} {kind}s but config.json says num_{kind}s={size}: "
                        "the checkpoint is inconsistent (files from different saves?)."
                    )
            self.user_vocab, self.item_vocab = users, items
        seen_path = fetch(SEEN_FILE)
        if seen_path is not None:
            t = load_file(seen_path)
            shape = tuple(int(x) for x in t["shape"])
            indptr, indices = t["indptr"].numpy(), t["indices"].numpy()
            self.seen_items = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=shape)


__all__ = ["NotFittedError", "RecPreTrainedModel", "Recommendations", "RecommenderOutput"]
