"""Configuration of rank fusion (RRF, Borda, CombSUM, CombMNZ)."""

from __future__ import annotations

from typing import Any

from hf_recsys.configuration_utils import check_choice, check_positive

from ..configuration_fusion import FusionConfig

RANK_METHODS = ("rrf", "borda", "combsum", "combmnz")


class RankFusionConfig(FusionConfig):
    """Configuration of :class:`RankFusion`.

    Args:
        members: member specs (see :class:`FusionConfig`).
        method: ``"rrf"`` (reciprocal rank fusion, ``sum_m w_m / (rrf_k + rank_m)``), ``"borda"`` (ranx's
            BordaFuse), ``"combsum"`` (sum of normalised scores) or ``"combmnz"`` (CombSUM times the number of
            member lists holding the item).
        top_n: each member contributes its top-``top_n`` unseen items; items in no member's list are not ranked.
        rrf_k: the ``k`` constant of RRF (60 as in Cormack et al. and ranx).
        weights: one weight per member multiplying its contribution (default 1.0; with all weights 1 the scores
            equal ``ranx.fuse``).
        normalization: score normalisation of CombSUM / CombMNZ within each member's top-``top_n`` list:
            ``"minmax"`` (ranx's default ``"min-max"``), ``"zscore"`` (ranx ``"zmuv"``), ``"rank"`` (ranx
            ``"rank"``) or ``"none"``. RRF and Borda use ranks only.
        **kwargs: passed to :class:`FusionConfig`.
    """

    model_type = "rank_fusion"

    def __init__(
        self,
        members: list[dict[str, Any]] | None = None,
        method: str = "rrf",
        top_n: int = 100,
        rrf_k: float = 60.0,
        weights: list[float] | None = None,
        normalization: str = "minmax",
        **kwargs,
    ):
        check_choice(self, "method", method, RANK_METHODS)
        check_positive(self, "top_n", top_n)
        check_positive(self, "rrf_k", rrf_k, allow_zero=True)
        self.method = method
        self.top_n = int(top_n)
        self.rrf_k = float(rrf_k)
        super().__init__(members=members, weights=weights, normalization=normalization, **kwargs)


__all__ = ["RANK_METHODS", "RankFusionConfig"]
