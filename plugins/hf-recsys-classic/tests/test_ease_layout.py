"""EASE's item-item matrix is row-major after fit, as after loading (scoring is sparse histories @ B: torch's kernel
was measured ~48x slower on the column-major matrix the solve leaves)."""

from hf_recsys import AutoModelForRecommendation
from hf_recsys.testing_utils import tiny_log


def test_fitted_item_weights_are_row_major(tmp_path):
    model = AutoModelForRecommendation.for_model("ease", l2=10.0).fit(tiny_log())
    assert model.item_weights.is_contiguous()
    model.save_pretrained(tmp_path / "m")
    loaded = AutoModelForRecommendation.from_pretrained(tmp_path / "m")
    assert loaded.item_weights.is_contiguous()
    assert (loaded.item_weights == model.item_weights).all()
