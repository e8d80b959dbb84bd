"""Vocabulary round trips, CSR, per-user sequences and negative sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from hf_recsys.data import (
    build_vocabs,
    encode_interactions,
    generate_interactions,
    load_interactions,
    sample_negatives,
    to_sequences,
)


@pytest.fixture(scope="module")
def log():
    ds, _ = generate_interactions(num_users=200, num_items=120, num_interactions=3000, seed=3, sort_by_time=True)
    return ds


def test_vocab_round_trip_int_and_string_ids(log):
    users, items = build_vocabs(log)
    inter = encode_interactions(log, users, items)
    assert (users.decode(inter.user_idx) == np.asarray(log["user_id"])).all()
    assert (items.decode(inter.item_idx) == np.asarray(log["item_id"])).all()
    df = log.to_pandas().assign(
        user_id=lambda d: "u" + d.user_id.astype(str), item_id=lambda d: "i" + d.item_id.astype(str)
    )
    ds = load_interactions(df)
    su, si = build_vocabs(ds)
    enc = encode_interactions(ds, su, si)
    assert su.decode(enc.user_idx).tolist() == df.user_id.tolist()
    assert si.decode(enc.item_idx).tolist() == df.item_id.tolist()


def test_to_sequences_matches_pandas(log):
    users, items = build_vocabs(log)
    inter = encode_interactions(log, users, items)
    indptr, seq, ts = to_sequences(inter, return_timestamps=True)
    assert indptr.shape == (inter.num_users + 1,) and indptr[-1] == len(inter)
    df = pd.DataFrame({"u": inter.user_idx, "i": inter.item_idx, "t": inter.timestamp, "row": np.arange(len(inter))})
    ref = df.sort_values(["u", "t", "row"]).groupby("u")
    for u in (0, 7, inter.num_users - 1):
        expected = ref.get_group(u)
        assert seq[indptr[u] : indptr[u + 1]].tolist() == expected.i.tolist()
        assert ts[indptr[u] : indptr[u + 1]].tolist() == expected.t.tolist()
    assert all(np.all(np.diff(ts[indptr[u] : indptr[u + 1]]) >= 0) for u in range(inter.num_users))


def test_to_sequences_ties_and_unknown_items():
    from hf_recsys.data import Interactions

    inter = Interactions(np.array([1, 0, 1, 1, 0]), np.array([5, 3, -1, 4, 2]), None, np.array([7, 1, 7, 7, 0]), 2, 6)
    indptr, seq = to_sequences(inter)
    assert indptr.tolist() == [0, 2, 4] and seq.tolist() == [2, 3, 5, 4]  # ties keep log order, -1 dropped
    indptr, seq = to_sequences(inter, drop_unknown=False)
    assert seq.tolist() == [2, 3, 5, -1, 4]


def test_csr_views(log):
    users, items = build_vocabs(log)
    inter = encode_interactions(log, users, items)
    csr = inter.to_csr()
    assert csr.shape == (len(users), len(items)) and csr.nnz == len(inter)  # the generator never repeats a pair


def _check_negatives(csr, u, neg):
    dense = csr.toarray() > 0
    assert not dense[u[:, None], neg].any(), "a negative is among the user's positives"
    assert neg.min() >= 0 and neg.max() < csr.shape[1]


def test_sample_negatives_never_positive(log):
    users, items = build_vocabs(log)
    inter = encode_interactions(log, users, items)
    u, pos, neg = sample_negatives(inter, num_negatives=8, seed=0)
    assert u.shape == pos.shape == (len(inter),) and neg.shape == (len(inter), 8)
    assert (u == inter.user_idx).all() and (pos == inter.item_idx).all()
    _check_negatives(inter.to_csr(), u, neg)
    u2, _, neg2 = sample_negatives(inter, num_negatives=8, seed=0)
    assert (neg2 == neg).all()
    _, _, neg3 = sample_negatives(inter, num_negatives=8, seed=1)
    assert (neg3 != neg).any()


def test_sample_negatives_dense_users_csr_and_popularity():
    rng = np.random.default_rng(0)
    dense = rng.random((30, 12)) < 0.8  # users with most items: many rejections
    dense[:, 0] = False
    dense[np.arange(30), 1 + np.arange(30) % 11] = False  # every user misses at least one popular item
    csr = sp.csr_matrix(dense.astype(np.float32))
    u, pos, neg = sample_negatives(csr, num_negatives=5, rng=rng)
    assert len(u) == csr.nnz and (dense[u, pos]).all()
    _check_negatives(csr, u, neg)
    u, _, neg = sample_negatives(csr, num_negatives=3, seed=0, distribution="popularity")
    _check_negatives(csr, u, neg)
    assert not (neg == 0).any()  # item 0 has no interactions: zero popularity, never drawn
    u, _, neg = sample_negatives(csr, num_negatives=2, seed=0, users=np.array([1, 2]), positives=np.array([3, 4]))
    assert neg.shape == (2, 2)


def test_sample_negatives_uniform_distribution():
    csr = sp.csr_matrix(np.eye(4, 50, dtype=np.float32))
    u, _, neg = sample_negatives(csr, num_negatives=20_000, seed=0)
    counts = np.bincount(neg[0], minlength=50)
    assert counts[0] == 0 and counts[1:].min() > 300  # uniform over the 49 allowed items (mean ~408)


def test_sample_negatives_user_with_every_item():
    csr = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="every item"):
        sample_negatives(csr, num_negatives=1, seed=0)
