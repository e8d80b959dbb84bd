"""Configuration of switching fusion (route cold users and cold items to a fallback member)."""

from __future__ import annotations

from typing import Any

from hf_recsys.configuration_utils import check_positive

from ..configuration_fusion import FusionConfig


class SwitchingFusionConfig(FusionConfig):
    """Configuration of :class:`SwitchingFusion`.

    Args:
        members: member specs (see :class:`FusionConfig`); two roles are used, ``primary`` and ``fallback``.
        primary: name of the main (e.g. collaborative) member; default the first member.
        fallback: name of the fallback (e.g. content) member; default the second member.
        min_user_interactions: users with fewer seen items than this are served by the fallback alone.
        cold_item_weight: for other users, items the primary cannot score (unknown to it, or with no training
            interaction in it) get ``cold_item_weight * minmax(fallback score)`` while the primary's items get
            ``minmax(primary score)``, both min-max over the user's unseen items, in ``[0, 1]``. 0 puts cold items
            last; 1 lets the fallback's best item tie with the primary's best. ``tune`` picks it on a grid.
        **kwargs: passed to :class:`FusionConfig`.
    """

    model_type = "switching_fusion"

    def __init__(
        self,
        members: list[dict[str, Any]] | None = None,
        primary: str | None = None,
        fallback: str | None = None,
        min_user_interactions: int = 5,
        cold_item_weight: float = 0.5,
        **kwargs,
    ):
        check_positive(self, "min_user_interactions", min_user_interactions, allow_zero=True)
        check_positive(self, "cold_item_weight", cold_item_weight, allow_zero=True)
        super().__init__(members=members, **kwargs)
        names = self.member_names
        if names and len(names) < 2:
            raise ValueError("SwitchingFusionConfig needs two members: a primary and a fallback.")
        for role, value in (("primary", primary), ("fallback", fallback)):
            if value is not None and names and value not in names:
                raise ValueError(f"SwitchingFusionConfig: {role}={value!r} is not a member name ({names}).")
        self.primary = primary if primary is not None else (names[0] if names else None)
        self.fallback = fallback if fallback is not None else (names[1] if len(names) > 1 else None)
        if self.primary is not None and self.primary == self.fallback:
            raise ValueError("SwitchingFusionConfig: primary and fallback must be different members.")
        self.min_user_interactions = int(min_user_interactions)
        self.cold_item_weight = float(cold_item_weight)


__all__ = ["SwitchingFusionConfig"]
