"""load_items: genres, tags (inline and from a tags table), text, images, and bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from hf_recsys.data import DataValidationError, load_items

MOVIES = pd.DataFrame(
    {
        "movieId": [1, 2, 3],
        "title": ["Toy Story (1995)", "Heat (1995)", "Nothing (2000)"],
        "genres": ["Animation|Comedy", "Action| Crime", "(no genres listed)"],
    }
)
TAGS = pd.DataFrame(
    {"userId": [7, 8, 7, 9], "movieId": [1, 1, 2, 1], "tag": ["pixar", "fun", "heist", "pixar"], "timestamp": [1] * 4}
)


def test_genres_tags_and_text(tmp_path):
    movies, tags = tmp_path / "movies.csv", tmp_path / "tags.csv"
    MOVIES.to_csv(movies, index=False)
    TAGS.to_csv(tags, index=False)
    items = load_items(movies, tags=tags)
    assert items.column_names == ["item_id", "title", "genres", "tags", "text"]
    assert items["genres"] == [["Animation", "Comedy"], ["Action", "Crime"], []]
    assert items["tags"] == [["pixar", "fun"], ["heist"], []]
    assert items["text"] == [
        "Toy Story (1995). Genres: Animation, Comedy. Tags: pixar, fun.",
        "Heat (1995). Genres: Action, Crime. Tags: heist.",
        "Nothing (2000).",
    ]


def test_inline_list_columns_and_mapping():
    df = pd.DataFrame({"sku": ["a", "b"], "name": ["Red shoe", None], "cats": [["shoes", "red"], None]})
    items = load_items(df, columns={"item_id": "sku", "title": "name", "genres": "cats"})
    assert items["item_id"] == ["a", "b"] and items["title"] == ["Red shoe", ""]
    assert items["genres"] == [["shoes", "red"], []]
    assert items["text"] == ["Red shoe. Genres: shoes, red.", ""]


def test_inline_tags_merge_with_tag_table():
    df = pd.DataFrame({"item_id": [1, 2], "title": ["A", "B"], "tags": ["x|y", ""]})
    extra = pd.DataFrame({"item_id": [1, 2, 2], "tag": ["y", "z", "z"]})
    items = load_items(df, tags=extra)
    assert items["tags"] == [["x", "y"], ["z"]]


def test_image_paths(tmp_path):
    (tmp_path / "1.jpg").write_bytes(b"\xff\xd8")
    items = load_items(MOVIES, image_dir=tmp_path)
    assert items["image_path"] == [str(tmp_path / "1.jpg"), None, None]


def test_duplicate_item_ids():
    df = pd.DataFrame({"item_id": [1, 2, 1], "title": ["a", "b", "c"]})
    with pytest.raises(DataValidationError, match=r"duplicate id.*1.*rows \[0, 2\]"):
        load_items(df)


def test_missing_item_id_column():
    with pytest.raises(DataValidationError, match=r"Missing required column\(s\) \['item_id'\]"):
        load_items(pd.DataFrame({"title": ["a"]}))


def test_empty_item_file(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text("movieId,title,genres\n")
    with pytest.raises(DataValidationError, match="empty"):
        load_items(path)
