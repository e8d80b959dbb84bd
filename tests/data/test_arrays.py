import numpy as np
import pytest

from hf_recsys.data.arrays import unique


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.int8, bool])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 500])
def test_unique_equals_numpy(dtype, n):
    rng = np.random.default_rng(n)
    a = rng.integers(0, 2 if dtype is bool else 20, size=n).astype(dtype)
    for return_index in (False, True):
        for return_inverse in (False, True):
            got = unique(a, return_index=return_index, return_inverse=return_inverse)
            want = np.unique(a, return_index=return_index, return_inverse=return_inverse)
            got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.dtype == w.dtype or g.dtype == np.intp
                np.testing.assert_array_equal(g, np.asarray(w).reshape(-1))
            if return_index and return_inverse:  # each value is its first occurrence's, and maps back
                np.testing.assert_array_equal(got[0][got[2]], a)
                np.testing.assert_array_equal(a[got[1]], got[0])


def test_unique_flattens_and_passes_other_dtypes_to_numpy():
    np.testing.assert_array_equal(unique(np.array([[3, 1], [3, 2]])), [1, 2, 3])
    floats = np.array([2.0, np.nan, 1.0, np.nan])
    np.testing.assert_array_equal(unique(floats), np.unique(floats))  # NaNs collapse as numpy's do
    np.testing.assert_array_equal(unique(np.array(["b", "a", "b"], dtype=object)), ["a", "b"])
