"""IdVocab: the sorted lookup (binary search, kept through ``extend``) against Arrow's hash lookup, and ``extend``
over the kinds of id containers a log yields (lists, numpy, pyarrow arrays and chunked columns)."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hf_recsys.data import IdVocab
from hf_recsys.data.vocab import UnknownIdError


def _reference(vocab: IdVocab, values: list) -> np.ndarray:
    idx = pc.index_in(pa.array(values, type=vocab._ids.type), value_set=vocab._ids)
    return np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


@pytest.mark.parametrize("kind", ["int", "str"])
def test_encode_and_extend_agree_with_a_hash_lookup(kind):
    rng = np.random.default_rng(0)
    pool = rng.choice(10**6, size=400, replace=False) - 5 * 10**5  # negative ids too
    make = (lambda a: [int(v) for v in a]) if kind == "int" else (lambda a: [f"u{v}" for v in a])
    first = make(pool[:150]) + (["a\x00"] if kind == "str" else [])
    vocab = IdVocab(pa.array(first), "user")
    assert vocab.encode(pa.array(first)).tolist() == list(range(len(first)))
    for _ in range(4):  # repeated extends carry the sorted lookup (inserted into, not rebuilt)
        given = make(rng.choice(pool, size=120))
        before = len(vocab)
        unseen = [v for v in dict.fromkeys(given) if _reference(vocab, [v])[0] < 0]
        grown, idx = vocab.extend_encode(given)  # one lookup: the same vocabulary and indices
        vocab = vocab.extend(given)
        assert grown == vocab and idx.tolist() == vocab.encode(given).tolist() == _reference(vocab, given).tolist()
        assert vocab.ids.tolist()[before:] == unseen  # appended in order of first appearance
        probe = make(rng.choice(pool, size=300))
        assert vocab.encode(probe, unknown="mask").tolist() == _reference(vocab, probe).tolist()
        rebuilt = IdVocab(vocab.ids.tolist(), "user")  # a fresh vocabulary sorts from scratch
        assert rebuilt.encode(probe, unknown="mask").tolist() == _reference(vocab, probe).tolist()
    if kind == "str":  # a trailing NUL is part of the id (numpy's fixed-width strings would drop it)
        assert vocab.encode(pa.array(["a\x00", "a"]), unknown="mask").tolist() == [150, -1]


def test_extending_one_vocabulary_twice_keeps_both_apart():
    base = IdVocab([5, 1, 3], "item")
    base.encode([1])  # the sorted lookup exists before the extends
    a, b = base.extend([7, 1, 9]), base.extend([9, 2])
    assert a.ids.tolist() == [5, 1, 3, 7, 9] and b.ids.tolist() == [5, 1, 3, 9, 2]
    assert a.encode([9, 7, 5]).tolist() == [4, 3, 0] and b.encode([9, 2, 3]).tolist() == [3, 4, 2]
    assert base.encode([7, 9, 2], unknown="mask").tolist() == [-1, -1, -1]
    with pytest.raises(UnknownIdError, match="2 unknown item id"):
        a.encode([2, 1, 2, 8])
    assert base.extend([]) == base and base.extend([3, 5]) == base


def test_extend_names_bad_ids():
    vocab = IdVocab(["x", "y"], "user")
    with pytest.raises(ValueError, match="null"):
        vocab.extend(pa.array(["z", None]))
    with pytest.raises(TypeError, match="string in this vocabulary"):
        vocab.extend([1, 2])
    assert IdVocab([], "user").extend(["b", "a", "b"]).ids.tolist() == ["b", "a"]


@pytest.mark.parametrize(
    "values",
    [[3, 4, 5, 4], np.array([3, 4, 5, 4]), pa.array([3, 4, 5, 4]), pa.chunked_array([[3, 4], [5, 4]])],
    ids=["list", "numpy", "arrow", "chunked"],
)
def test_extend_appends_unseen_ids_and_keeps_known_indices(values):
    vocab = IdVocab(pa.array([1, 2, 3]))
    grown = vocab.extend(values)
    assert grown.ids.tolist() == [1, 2, 3, 4, 5]
    assert grown.encode([3, 1]).tolist() == vocab.encode([3, 1]).tolist()


def test_extend_of_string_ids_from_a_chunked_column():
    vocab = IdVocab(pa.array(["a", "b"]))
    assert vocab.extend(pa.chunked_array([["b", "c"], ["d"]])).ids.tolist() == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "values",
    [[3, 4, 5, 4, 1], np.array([3, 4, 5, 4, 1]), pa.array([3, 4, 5, 4, 1]), pa.chunked_array([[3, 4], [5, 4, 1]])],
    ids=["list", "numpy", "arrow", "chunked"],
)
def test_extend_encode_grows_and_encodes_in_one_lookup(values):
    vocab = IdVocab(pa.array([1, 2, 3]), "item")
    grown, idx = vocab.extend_encode(values)
    assert grown.ids.tolist() == [1, 2, 3, 4, 5] and idx.tolist() == [2, 3, 4, 3, 0]
    assert vocab.extend_encode([2, 1])[0] is vocab
    assert IdVocab([], "user").extend_encode(["b", "a", "b"])[1].tolist() == [0, 1, 0]
    strings = IdVocab(["x", "y"], "user")
    with pytest.raises(ValueError, match="null"):
        strings.extend_encode(pa.array(["z", None]))
    with pytest.raises(TypeError, match="string in this vocabulary"):
        strings.extend_encode([1, 2])
