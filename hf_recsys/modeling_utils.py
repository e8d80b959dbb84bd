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
from pathlib import Path
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
from .online.partial_fit import record_fitted_log
from .retrieval.mixin import RetrievalMixin
from .serialization import (
    CARD_FILE,
    MANIFEST_KEY,
    atomic_save_dir,
    fetch_file,
    recover_if_interrupted,
    verify_checkpoint,
    verify_config_manifest,
    write_config_manifest,
)

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


class RecPreTrainedModel(RetrievalMixin, PreTrainedModel):
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
        try:
            self._fit(inter, show_progress=show_progress, **kwargs)
        except FloatingPointError as exc:  # a diverging gradient fit: name the data's part in it too
            raise FloatingPointError(f"{exc}{_rating_span(inter)}") from exc
        _check_finite_state(self, inter)
        record_fitted_log(self, data, inter)
        if not self.trainable:
            self.requires_grad_(False)
        return self

    def partial_fit(self, interactions: Any, **options: Any) -> RecPreTrainedModel:
        """Update the fitted model in place with new interactions and return it.

        New user and item ids join the vocabularies (known ids keep their indices) and every table grows; the
        family then updates its state from the new rows (:mod:`hf_recsys.online`): exact statistics (MostPopular,
        ItemKNN, UserKNN, EASE), exact least-squares solves of the touched users and items (ALS), continued training
        through the engine with new rows starting from the mean of the old ones (gradient families), or the update
        passed to every member (fusions).

        Args:
            interactions: the new interactions, of the kinds ``fit`` accepts; their canonical columns (``user_id``,
                ``item_id``, ``rating``, ``timestamp``) must be those of the fitted log, of the same kinds.
            **options: the family's update options: ``show_progress``; for gradient families the engine's
                (``epochs``, ``learning_rate``, ...) and ``replay`` (old interactions replayed per new one, against
                forgetting) with ``replay_log``.

        Returns:
            The model itself, updated.

        Raises:
            ValueError: an empty log, missing (NaN / null) ids, or columns that differ from the fitted log's.
            TypeError: an option the family does not take (e.g. ``epochs`` for EASE). A refused update leaves the
                vocabularies and tables as they were.

        Example:
            ```python
            >>> model.partial_fit(new_log)  # doctest: +SKIP
            >>> ids, scores = model.recommend(["a-new-user"], k=10)  # doctest: +SKIP
            ```
        """
        from .online import partial_fit

        return partial_fit(self, interactions, **options)

    def _partial_fit(self, interactions: Interactions, seen_before: sp.csr_matrix | None = None, **options) -> None:
        """Hook of :meth:`partial_fit`: update the family's state from the new rows ``interactions`` (encoded in the
        grown vocabularies; ``self.seen_items`` already holds them, ``seen_before`` is the matrix before). A hook
        that declares a ``new_pairs`` parameter also gets the ``(user_idx, item_idx)`` pairs that ``seen_items``
        did not hold before, where :func:`~hf_recsys.online.merge_seen` found them (else it is not passed)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement partial_fit: refit it on the whole log.")

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
        if (hit := self._index_recommend(user_idx, hists, k, exclude_seen, cand, batch_size)) is not None:
            return Recommendations(self.item_vocab.decode(hit[0]), hit[1], ignored)  # through the ANN index
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
        if (hit := self._index_similar(idx, int(min(k, self.config.num_items - 1)))) is not None:
            return Recommendations(*hit)  # through the ANN index (hf_recsys.retrieval)
        sims = self.item_similarity(idx).float()
        sims[torch.arange(len(idx), device=sims.device), idx] = -torch.inf
        k = int(min(k, self.config.num_items - 1))
        top_s, top_i = torch.topk(sims, k, dim=1)
        return Recommendations(self.item_vocab.decode(top_i.cpu().numpy()), top_s.cpu().numpy())

    # ------------------------------------------------------------------ saving and loading
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *args,
        is_main_process: bool = True,
        push_to_hub: bool = False,
        **kwargs,
    ) -> None:
        """Save the model atomically: config, weights (safetensors), id vocabularies, seen items, the family's own
        files and a manifest of them all.

        Everything is written into a hidden folder next to ``save_directory``, fsynced and verified, then swapped
        in (:func:`hf_recsys.serialization.atomic_save_dir`): the folder holds the complete old model or the
        complete new one, whatever happens. Entries that are not part of the model (``checkpoint-*/``, ``best/``,
        ``train_results.json``, the user's files) are kept.

        Args:
            save_directory: the folder to write.
            is_main_process: only the main process writes (multi-process training).
            push_to_hub: not supported here; call :meth:`push_to_hub`.
            **kwargs: passed to ``PreTrainedModel.save_pretrained`` (e.g. ``max_shard_size``).

        Raises:
            hf_recsys.serialization.UnsafeCheckpointError: ``config.json`` in the folder is a symbolic link.
            hf_recsys.serialization.SaveError: the write failed (disk full, ...); the folder is unchanged.
        """
        if push_to_hub:
            raise NotImplementedError("Call model.push_to_hub(repo_id) instead of save_pretrained(push_to_hub=True).")
        if is_main_process:
            self.save_folder(save_directory, **kwargs)

    def save_folder(self, save_directory: str | os.PathLike, card: Any = None, **kwargs) -> str:
        """The one save path: :meth:`write_model_files` into a staging folder, plus ``card`` (a ModelCard saved as
        ``README.md``, outside the manifest), verified and swapped in atomically. Returns the folder."""

        def write(folder: Path) -> None:
            self.write_model_files(folder, **kwargs)
            if card is not None:
                card.save(os.path.join(folder, CARD_FILE))

        return str(atomic_save_dir(save_directory, write, verify=verify_config_manifest))

    def write_model_files(self, folder: str | os.PathLike, **kwargs) -> None:
        """Write the model's files into the empty ``folder`` and, last, the manifest in ``config.json``.

        The order is the hooks': :meth:`_save_weights` (config and weights), :meth:`_save_rec_files` (vocabularies,
        seen items), :meth:`_save_extra` (the family's own files or sub-folders). Not atomic by itself: use
        :meth:`save_pretrained`; fusion models call it for their members' sub-folders.
        """
        os.makedirs(folder, exist_ok=True)
        self._save_weights(folder, **kwargs)
        self._save_rec_files(folder)
        self._save_extra(folder)
        write_config_manifest(folder)

    def _save_weights(self, folder: str | os.PathLike, **kwargs) -> None:
        """Hook: the config and the weights (default: ``PreTrainedModel.save_pretrained``, safetensors)."""
        PreTrainedModel.save_pretrained(self, folder, **kwargs)

    def _save_extra(self, folder: str | os.PathLike) -> None:
        """Hook: files or sub-folders of the family's own (fusion members, adapters); listed in the manifest."""

    def _save_rec_files(self, save_directory: str | os.PathLike) -> None:
        """Write the id vocabularies and the seen items beside the weights."""
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
        self.save_index(save_directory)  # the ANN index, if built (hf_recsys.retrieval); the manifest covers it

    def push_to_hub(self, repo_id: str, **kwargs):
        """Push the model to the Hub in one commit, with its id vocabulary and a model card.

        See :func:`hf_recsys.hub.push_to_hub` for the arguments (``eval_results``, ``revision``, ``private``,
        ``token``, ``commit_message``, card options).
        """
        from .hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        """Load a saved model: the manifest is verified first (every file present, unchanged, inside the folder),
        then the weights (:meth:`_load_weights`), the id vocabularies, the seen items and the family's own files
        (:meth:`_load_extra`) are read. A save that was interrupted in this folder is finished or undone first.

        Raises:
            hf_recsys.serialization.IncompleteCheckpointError: a file is missing or differs from the manifest.
            hf_recsys.serialization.UnsafeCheckpointError: the manifest names a file outside the folder.
        """
        path = str(pretrained_model_name_or_path)
        hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        recover_if_interrupted(path, hub.get("subfolder"))
        verify_checkpoint(path, **hub)  # before any weights are read
        model = cls._load_weights(path, *args, **kwargs)
        model.config.__dict__.pop(MANIFEST_KEY, None)
        model._load_rec_files(path, hub)
        model._load_extra(path, hub)
        if not model.trainable:
            model.requires_grad_(False)
        return model

    @classmethod
    def _load_weights(cls, path: str, *args, **kwargs):
        """Hook: build the model from its config and load its weights (``PreTrainedModel.from_pretrained``)."""
        return super().from_pretrained(path, *args, **kwargs)

    def _load_extra(self, path: str, hub: dict) -> None:
        """Hook: read what :meth:`_save_extra` wrote (``hub`` holds ``revision``, ``token``, ``subfolder``, ...)."""

    def _load_rec_files(self, path: str, hub: dict) -> None:
        vocab_path = fetch_file(path, VOCAB_FILE, hub)
        if vocab_path is not None:
            users, items = load_vocabs(vocab_path)
            for kind, vocab, size in (("user", users, self.config.num_users), ("item", items, self.config.num_items)):
                if vocab is not None and len(vocab) != size:
                    raise ValueError(
                        f"{VOCAB_FILE} in {path} holds {len(vocab)} {kind}s but config.json says num_{kind}s={size}: "
                        "the checkpoint is inconsistent (files from different saves?)."
                    )
            self.user_vocab, self.item_vocab = users, items
        seen_path = fetch_file(path, SEEN_FILE, hub)
        if seen_path is not None:
            self.seen_items = _read_seen(seen_path, self.config.num_users, self.config.num_items)
        self.load_index(path, **hub)  # the ANN index, if saved (hf_recsys.retrieval)


def _check_finite_state(model: torch.nn.Module, inter: Interactions) -> None:
    """Refuse a fit that left NaN or infinite values in the model's tensors (e.g. one extreme rating)."""
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    bad = [n for n, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise FloatingPointError(
            f"Fitting {type(model).__name__} produced NaN or infinite values in {', '.join(bad[:5])}."
            f"{_rating_span(inter)} Rescale or clip extreme ratings / weights, or raise the regularisation, and fit "
            "again."
        )


def _rating_span(inter: Interactions) -> str:
    """`` The ratings span a to b.`` for logs with ratings (extreme ones make solvers and SGD diverge), else ``""``."""
    if inter.rating is None or not len(inter.rating):
        return ""
    return f" The ratings span {float(np.min(inter.rating)):.6g} to {float(np.max(inter.rating)):.6g}."


def _read_seen(path: str, num_users: int, num_items: int) -> sp.csr_matrix:
    """The seen-items CSR matrix of ``seen_items.safetensors``, after checking its shape against the config."""
    t = load_file(path)
    problem = None
    if set(t) != {"indptr", "indices", "shape"} or t["shape"].numel() != 2:
        problem = f"it holds tensors {sorted(t)} (expected indptr, indices and a 2-element shape)"
    else:
        shape = tuple(int(x) for x in t["shape"])
        indptr, indices = t["indptr"].numpy(), t["indices"].numpy()
        if shape != (num_users, num_items):
            problem = f"its shape is {shape}, but config.json says {num_users} users x {num_items} items"
        elif indptr.ndim != 1 or len(indptr) != shape[0] + 1 or indptr[0] != 0 or indptr[-1] != len(indices):
            problem = f"its indptr has {indptr.size} entries for {shape[0]} users and {len(indices)} indices"
        elif np.any(np.diff(indptr) < 0) or (len(indices) and (indices.min() < 0 or indices.max() >= shape[1])):
            problem = "its indptr decreases or its item indices are out of range"
    if problem:
        raise ValueError(f"{path} is not a valid seen-items matrix: {problem}. Save the model again.")
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=shape)


__all__ = ["NotFittedError", "RecPreTrainedModel", "Recommendations", "RecommenderOutput"]
