"""IdVocab.extend: the kinds of id containers a log yields (lists, numpy, pyarrow arrays and chunked columns)."""

import numpy as np
import pyarrow as pa
import pytest

from hf_recsys.data.vocab import IdVocab


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
