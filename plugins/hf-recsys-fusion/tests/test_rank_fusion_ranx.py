"""RankFusion equals ranx's fusion functions on the same member runs (each member's top-N unseen items)."""

import numpy as np
import pytest
import torch
from fusion_test_utils import fixed_members
from hf_recsys.testing_utils import tiny_log

from hf_recsys_fusion import RankFusion

ranx = pytest.importorskip("ranx")

TOP_N = 8


def _member_runs(fusion, user_idx, top_n=TOP_N):
    """Each member's run ``{user: {item: score}}``, best first: its top-N unseen items, in its own ids."""
    runs = []
    for name, m in fusion.members.items():
        user_map = fusion.alignment(name)[0]
        run = {}
        for u in user_idx:
            scores = m.score_users(torch.tensor([user_map[u]]))[0].numpy().astype(np.float64)
            seen_ids = set(fusion.item_vocab.decode(fusion.seen_items[u].indices).tolist())
            ids = m.item_vocab.ids
            order = [j for j in np.argsort(-scores) if ids[j] not in seen_ids][:top_n]
            run[str(fusion.user_vocab.ids[u])] = {str(ids[j]): float(scores[j]) for j in order}
        runs.append(run)
    return runs


@pytest.mark.slow  # over 5 s: kept out of make test-fast (still in make test)
@pytest.mark.parametrize(
    "method, norm, ranx_norm, ranx_method",
    [
        ("rrf", "minmax", None, "rrf"),
        ("combsum", "minmax", "min-max", "sum"),
        ("combmnz", "minmax", "min-max", "mnz"),
        ("combsum", "zscore", "zmuv", "sum"),
        ("combmnz", "rank", "rank", "mnz"),
        ("borda", "minmax", None, "bordafuse"),
    ],
)
def test_rank_fusion_equals_ranx(method, norm, ranx_norm, ranx_method):
    log = tiny_log()
    members = fixed_members(log)  # three members with different item vocabularies
    fusion = RankFusion.from_members(members, method=method, top_n=TOP_N, normalization=norm)
    assert len({len(m.item_vocab) for m in members.values()}) == 3, "members must have different item vocabularies"
    user_idx = np.arange(12)
    expected = ranx.fuse(
        [ranx.Run(r) for r in _member_runs(fusion, user_idx)], norm=ranx_norm, method=ranx_method
    ).to_dict()
    got = fusion.score_users(torch.as_tensor(user_idx)).numpy()
    for u in user_idx:
        want = expected[str(fusion.user_vocab.ids[u])]
        listed = np.flatnonzero(np.isfinite(got[u]))
        assert {str(i) for i in fusion.item_vocab.ids[listed]} == set(want), "fused candidates differ from ranx"
        ours = {str(fusion.item_vocab.ids[i]): got[u, i] for i in listed}
        np.testing.assert_allclose([ours[k] for k in want], [want[k] for k in want], rtol=1e-6, atol=1e-6)


def test_rrf_k_and_weights():
    """Weighted RRF by hand: ``sum_m w_m / (k + rank_m)``."""
    log = tiny_log()
    members = fixed_members(log, item_fracs=(1.0, 1.0))
    fusion = RankFusion.from_members(members, method="rrf", top_n=5, rrf_k=10.0, weights=[2.0, 0.5])
    got = fusion.score_users(torch.tensor([0]))[0].numpy()
    runs = _member_runs(fusion, [0], top_n=5)
    want: dict[str, float] = {}
    for w, run in zip([2.0, 0.5], runs):
        for r, item in enumerate(run[str(fusion.user_vocab.ids[0])]):
            want[item] = want.get(item, 0.0) + w / (10.0 + r + 1)
    ours = {str(fusion.item_vocab.ids[i]): got[i] for i in np.flatnonzero(np.isfinite(got))}
    assert ours.keys() == want.keys()
    np.testing.assert_allclose([ours[k] for k in want], list(want.values()), rtol=1e-9)
