"""REINFORCE with the top-K off-policy correction (Chen et al., "Top-K Off-Policy Correction for a REINFORCE
Recommender System", WSDM 2019) on the causal sequential backbone.

The policy ``pi(a | s)`` is a softmax over every item of the causal sequential model's scores at the last position
of the state ``s``: the user's history followed by the items clicked earlier in the session. It is trained from
logged slates, each shown item ``a`` with the behaviour (logging) policy's probability ``beta(a | s)`` of choosing
it in one draw and its return ``R`` (the item's reward plus ``gamma`` times the discounted rewards of the session's
later steps), by the corrected policy gradient of the paper's equation (6):

    grad = sum over logged (s, a) of  min(pi(a|s) / beta(a|s), weight_cap) * lambda_K(s, a) * R * grad log pi(a|s)
    lambda_K(s, a) = K * (1 - pi(a|s)) ** (K - 1)

``lambda_K`` is the derivative of ``alpha(a|s) = 1 - (1 - pi(a|s)) ** K``, the chance that ``a`` is among ``K``
items drawn from ``pi``: it lowers the push on items the policy already puts in the slate and raises it on items it
rarely shows. The weights are constants of the gradient (computed without it). Without the top-K correction
(``topk_correction=False``) it is the capped off-policy REINFORCE of the paper's equation (4).

The model is a :class:`~hf_recsys.models.sequential.CausalSequentialRecommender` (the same backbone, tables,
save/load and recommend contract) whose ``training_examples`` read logged slates instead of next items, so that it
trains through the project's one training engine (``fit``, :class:`~hf_recsys.training.RecTrainer`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..configuration_utils import check_positive
from ..data.arrays import unique
from ..data.views import Interactions
from ..modeling_utils import RecommenderOutput
from ..models.sequential.configuration_sequential import CausalSequentialConfig
from ..models.sequential.modeling_sequential import (
    CausalSequentialRecommender,
    gather_windows,
    sequences_from_interactions,
)
from ..training.examples import TrainingExamples

#: the columns of a logged-slate table the policy reads (one row per shown item)
LOG_COLUMNS = ("slate_id", "user_id", "item_id", "position", "reward")


class TopKReinforceConfig(CausalSequentialConfig):
    """Configuration of :class:`TopKReinforceRecommender`: a causal sequential model plus the REINFORCE options.

    Args:
        slate_size: ``K`` of the top-K correction (items per served slate).
        weight_cap: the importance weight ``pi / beta`` is capped at this (the paper's weight capping).
        gamma: discount of the session's later rewards in an item's return (0: the item's own reward only).
        topk_correction: multiply by ``lambda_K`` (``False``: the plain capped off-policy REINFORCE).
        propensity_column: the log column holding ``beta(a | s)``, the logging policy's probability of the item in
            one draw (for a softmax logger, its ``action_probabilities``).
        **kwargs: options of :class:`~hf_recsys.models.sequential.CausalSequentialConfig` (backbone, training).
    """

    model_type = "topk_reinforce"

    def __init__(
        self,
        slate_size: int = 10,
        weight_cap: float = 10.0,
        gamma: float = 0.0,
        topk_correction: bool = True,
        propensity_column: str = "action_propensity",
        **kwargs,
    ):
        check_positive(self, "slate_size", slate_size)
        check_positive(self, "weight_cap", weight_cap)
        if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or not 0 <= gamma <= 1:
            raise ValueError(f"TopKReinforceConfig: gamma must be in [0, 1], got {gamma!r}.")
        self.slate_size, self.weight_cap, self.gamma = int(slate_size), float(weight_cap), float(gamma)
        self.topk_correction, self.propensity_column = bool(topk_correction), str(propensity_column)
        super().__init__(**kwargs)


def topk_correction_weights(
    pi: torch.Tensor, beta: torch.Tensor, k: int, weight_cap: float, topk_correction: bool = True
) -> torch.Tensor:
    """The per-action weights of the corrected gradient: ``min(pi / beta, weight_cap) * K * (1 - pi) ** (K - 1)``.

    Args:
        pi: the target policy's probabilities of the logged actions (any shape).
        beta: the behaviour policy's probabilities of the same actions, in ``(0, 1]``.
        k: slate size ``K``.
        weight_cap: cap of the importance weight.
        topk_correction: include ``lambda_K`` (else the capped importance weight alone).

    Returns:
        The weights, of ``pi``'s shape, without gradient.
    """
    pi = pi.detach()
    w = torch.clamp(pi / beta, max=weight_cap)
    if topk_correction:
        w = w * k * (1.0 - pi).clamp(min=0.0) ** (k - 1)
    return w


def left_pack(tokens: torch.LongTensor) -> torch.LongTensor:
    """Move the non-zero tokens of each row to the right end, in their order, zeros (padding) before them."""
    order = torch.sort((tokens != 0).to(torch.int8), dim=1, stable=True).indices
    return torch.gather(tokens, 1, order)


def session_tokens(history: torch.LongTensor, clicks: torch.LongTensor, length: int) -> torch.LongTensor:
    """The state of a session as left-padded tokens ``(n, length)``: the history tokens followed by the clicked
    items (item indices, ``-1`` for none) in order, the most recent ``length`` kept."""
    clicked = torch.where(clicks >= 0, clicks + 1, torch.zeros_like(clicks))
    return left_pack(torch.cat([history, clicked.to(history.device)], dim=1))[:, -length:]


class LoggedSlates:
    """Logged slates in index space, one row per slate.

    Args:
        users: ``(S,)`` user indices.
        items: ``(S, K)`` item indices shown, position 0 first.
        rewards: ``(S, K)`` reward of each shown item.
        beta: ``(S, K)`` the logging policy's probability of each shown item.
        session: ``(S,)`` session of each slate; ``step``: ``(S,)`` its step in the session.
    """

    def __init__(self, users, items, rewards, beta, session, step):
        self.users, self.items, self.rewards, self.beta, self.session, self.step = (
            users,
            items,
            rewards,
            beta,
            session,
            step,
        )

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def from_log(cls, log: Any, user_vocab, item_vocab, propensity_column: str = "action_propensity"):
        """Read a table with one row per shown item (``slate_id``, ``user_id``, ``item_id``, ``position``,
        ``reward``, the propensity column and, optionally, ``session_id`` and ``step``: slates without them are
        sessions of one step). Every slate must show the same number of items, at positions ``0 .. K - 1``."""
        from .ope import _frame, ope_inputs

        df = _frame(log, None)
        if len(df) == 0:
            raise ValueError("the logged slates are empty.")
        missing = [c for c in (*LOG_COLUMNS, propensity_column) if c not in df.columns]
        if missing:
            raise ValueError(
                f"the logged slates lack the column(s) {missing} (columns: {list(df.columns)}); "
                f"{propensity_column!r} is beta(a|s), the logging policy's probability of the item in one draw "
                "(for a softmax logger, its action_probabilities at the shown items)."
            )
        extra = [c for c in ("session_id", "step") if c in df.columns]
        frame = df[[*LOG_COLUMNS, *extra]].assign(propensity=df[propensity_column])
        x = ope_inputs(frame)  # validates rewards, propensities in (0, 1] and equal slates at positions 0..K-1
        first = frame.sort_values(["slate_id", "position"], kind="stable").iloc[:: x.k]
        if (frame.groupby("slate_id")["user_id"].nunique() > 1).any():
            raise ValueError("a logged slate has rows of different users.")
        session = first["session_id"].to_numpy() if "session_id" in extra else first["slate_id"].to_numpy()
        step = first["step"].to_numpy().astype(np.int64) if "step" in extra else np.zeros(len(first), np.int64)
        session = unique(session, return_inverse=True)[1].reshape(-1)
        if (step < 0).any() or len(unique(session * (int(step.max()) + 1) + step)) != len(step):
            raise ValueError("the log's steps must be >= 0 and each (session_id, step) must hold one slate.")
        users = user_vocab.encode(list(x.users))
        items = item_vocab.encode(list(x.items.reshape(-1))).reshape(x.items.shape)
        return cls(users, items, x.reward.copy(), x.p_log.copy(), session, step)

    def returns(self, gamma: float) -> np.ndarray:
        """``(S, K)`` returns: each item's reward plus ``gamma * G``, where ``G = sum_{t' > t} gamma ** (t' - t - 1)
        * r(t')`` discounts the rewards of the session's later steps (``r(t')``: the slate's reward at step t')."""
        if gamma == 0:
            return self.rewards.copy()
        t = int(self.step.max()) + 1
        per_step = np.zeros((int(self.session.max()) + 1, t + 1))
        per_step[self.session, self.step] = self.rewards.sum(1)
        future = np.zeros_like(per_step)
        for j in range(t - 1, -1, -1):  # steps of all sessions at once, last step first
            future[:, j] = per_step[:, j + 1] + gamma * future[:, j + 1]
        return self.rewards + gamma * future[self.session, self.step][:, None]

    def prior_clicks(self, max_steps: int | None = None) -> np.ndarray:
        """``(S, T)`` the items clicked (reward > 0) at the earlier steps of each slate's session, in step order,
        ``-1`` padded; one column per earlier step (no click: ``-1``)."""
        t = int(self.step.max()) + 1 if max_steps is None else max_steps
        per_session = np.full((int(self.session.max()) + 1, t), -1, dtype=np.int64)
        clicked = self.rewards > 0
        has = clicked.any(1)
        first_click = self.items[np.arange(len(self)), clicked.argmax(1)]
        per_session[self.session[has], self.step[has]] = first_click[has]
        earlier = np.arange(t)[None, :] < self.step[:, None]
        return np.where(earlier, per_session[self.session], -1)


class TopKReinforceRecommender(CausalSequentialRecommender):
    """A softmax policy over every item on the causal sequential backbone, trained by REINFORCE with the top-K
    off-policy correction from logged slates (see the module docstring).

    Build it from a fitted causal sequential model with :meth:`from_recommender` (a warm start: the same weights,
    vocabularies and histories), then ``fit(history_log, logged_slates=log)``: ``history_log`` is the log the
    users' histories come from (as for the sequential model), ``log`` the logged slates.

    Example:
        ```python
        >>> policy = TopKReinforceRecommender.from_recommender(sequential_model, slate_size=5)  # doctest: +SKIP
        >>> policy = policy.fit(train_log, logged_slates=logged, epochs=2)  # doctest: +SKIP
        >>> ids, scores = policy.recommend(["u1"], k=5)  # doctest: +SKIP
        ```
    """

    config_class = TopKReinforceConfig

    @classmethod
    def from_recommender(cls, model: CausalSequentialRecommender, **options: Any) -> TopKReinforceRecommender:
        """A policy that starts as a copy of a fitted causal sequential model (weights, vocabularies, histories,
        seen items). ``options``: :class:`TopKReinforceConfig` options (and training options for its ``fit``)."""
        if not isinstance(model, CausalSequentialRecommender):
            raise TypeError(f"from_recommender needs a CausalSequentialRecommender, got {type(model).__name__}.")
        model._require_vocab()
        base = model.config.to_dict()
        for key in ("model_type", "architectures", "transformers_version", "auto_map"):
            base.pop(key, None)
        config = cls.config_class(**{**base, **options})
        policy = cls(config)
        policy.load_state_dict(model.state_dict())
        policy.set_vocabs(model.user_vocab, model.item_vocab)
        policy.seen_items = model.seen_items
        return policy.to(model.device)

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        actions: torch.LongTensor | None = None,
        returns: torch.Tensor | None = None,
        behaviour_probs: torch.Tensor | None = None,
    ) -> RecommenderOutput:
        """Scores of every item at the last position; with ``actions`` the corrected REINFORCE loss.

        Args:
            input_ids, attention_mask, labels: as :meth:`CausalSequentialRecommender.forward` (``labels``: the
                supervised next-item loss).
            actions: ``(batch, K)`` item indices of the logged slates.
            returns: ``(batch, K)`` the return of each logged item.
            behaviour_probs: ``(batch, K)`` ``beta(a | s)`` of each logged item.

        Returns:
            :class:`RecommenderOutput` with ``scores`` ``(batch, num_items)`` (the policy's logits) and, with
            ``actions``, ``loss``: ``-mean over slates of sum_j w_j R_j log pi(a_j | s)``.
        """
        if actions is None:
            return super().forward(input_ids, attention_mask, labels)
        out = super().forward(input_ids, attention_mask)
        logp = F.log_softmax(out.scores.float(), dim=-1).gather(1, actions)
        w = topk_correction_weights(
            logp.exp(), behaviour_probs, self.config.slate_size, self.config.weight_cap, self.config.topk_correction
        )
        loss = -(w * returns * logp).sum(1).mean()
        return RecommenderOutput(loss=loss, scores=out.scores, user_embeddings=out.user_embeddings)

    def action_probabilities_idx(self, tokens: torch.LongTensor) -> torch.Tensor:
        """``(batch, num_items)`` ``pi(. | s)`` for states given as tokens."""
        return torch.softmax(self._score_tokens(tokens).float(), dim=-1)

    def training_examples(
        self, interactions: Interactions, logged_slates: Any = None, **kwargs: Any
    ) -> TrainingExamples:
        """One example per logged slate: the state (the user's history in ``interactions``, then the items clicked
        at the session's earlier steps), the slate's items, their returns and behaviour probabilities.

        Args:
            interactions: the log of the users' histories, in the model's vocabularies.
            logged_slates: the logged slates (see :meth:`LoggedSlates.from_log`), required.
        """
        if logged_slates is None:
            raise ValueError(
                "TopKReinforceRecommender trains from logged slates: fit(history_log, logged_slates=log) with one row "
                f"per shown item ({', '.join(LOG_COLUMNS)}, {self.config.propensity_column!r})."
            )
        if kwargs:
            raise TypeError(f"unexpected training options {sorted(kwargs)}.")
        self.resize_tables(interactions.num_users, interactions.num_items)
        indptr, items = sequences_from_interactions(interactions)
        length = self.config.max_sequence_length
        self.user_history = torch.as_tensor(gather_windows(items, indptr[:-1], indptr[1:], length), device=self.device)
        log = logged_slates
        if not isinstance(log, LoggedSlates):
            log = LoggedSlates.from_log(log, self.user_vocab, self.item_vocab, self.config.propensity_column)
        if log.items.shape[1] != self.config.slate_size:
            raise ValueError(
                f"the logged slates show {log.items.shape[1]} items but the config's slate_size is "
                f"{self.config.slate_size}: set slate_size to the served slates' size."
            )
        clicks = torch.as_tensor(log.prior_clicks())
        tokens = session_tokens(self.user_history[torch.as_tensor(log.users)].cpu(), clicks, length)
        actions = torch.as_tensor(log.items, dtype=torch.long)
        rets = torch.as_tensor(log.returns(self.config.gamma), dtype=torch.float32)
        beta = torch.as_tensor(log.beta, dtype=torch.float32)

        def collate(idx: torch.LongTensor, gen: torch.Generator) -> dict:
            idx = idx.cpu()
            return {
                "input_ids": tokens[idx],
                "actions": actions[idx],
                "returns": rets[idx],
                "behaviour_probs": beta[idx],
            }

        return TrainingExamples(len(log), collate, unit="slate")


__all__ = [
    "LOG_COLUMNS",
    "LoggedSlates",
    "TopKReinforceConfig",
    "TopKReinforceRecommender",
    "left_pack",
    "session_tokens",
    "topk_correction_weights",
]
