"""``FusionConfig``: the configuration shared by every fusion model (its members and their weights)."""

from __future__ import annotations

import re
from typing import Any

from hf_recsys.configuration_utils import RecConfig, check_choice

NORMALIZATIONS = ("minmax", "zscore", "rank", "none")
_MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_members(cfg: RecConfig, members: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Validate member specs ``[{"name": ..., "model_type": ..., **config_kwargs}, ...]``; returns plain copies."""
    out = [dict(m) for m in (members or [])]
    for j, spec in enumerate(out):
        if "name" not in spec or "model_type" not in spec:
            raise ValueError(f"{type(cfg).__name__}: members[{j}] needs a 'name' and a 'model_type', got {spec!r}.")
        if not isinstance(spec["name"], str) or not _MEMBER_NAME.match(spec["name"]):
            raise ValueError(
                f"{type(cfg).__name__}: member name {spec['name']!r} must be a folder name "
                "(letters, digits, '_', '.', '-'), since each member is saved in members/<name>/."
            )
    names = [m["name"] for m in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{type(cfg).__name__}: member names must be unique, repeated: {dup}.")
    return out


class FusionConfig(RecConfig):
    """Base configuration of the fusion models.

    Args:
        members: one spec per member, ``{"name": str, "model_type": str, **config_kwargs}``. A config alone builds
            fresh (unfitted) members from these specs; a saved fusion loads its fitted members from the sub-folders
            ``members/<name>/`` instead, whose own ``config.json`` is authoritative.
        weights: one weight per member (default: all 1.0); fitted by ``tune`` where the fusion tunes them.
        normalization: per-user score normalisation applied to each member before fusing: ``"minmax"``,
            ``"zscore"`` (zero mean, unit population variance), ``"rank"`` (``1 - rank / n``) or ``"none"``.
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "fusion"

    def __init__(
        self,
        members: list[dict[str, Any]] | None = None,
        weights: list[float] | None = None,
        normalization: str = "minmax",
        **kwargs,
    ):
        self.members = check_members(self, members)
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(self.members):
                raise ValueError(
                    f"{type(self).__name__}: {len(weights)} weights given for {len(self.members)} members."
                )
        check_choice(self, "normalization", normalization, NORMALIZATIONS)
        self.weights = weights
        self.normalization = normalization
        super().__init__(**kwargs)

    @property
    def member_names(self) -> list[str]:
        return [m["name"] for m in self.members]


__all__ = ["NORMALIZATIONS", "FusionConfig", "check_members"]
