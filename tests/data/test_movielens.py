"""MovieLens readers: the three layouts written in their own formats into tmp_path, and the real ml-latest-small."""

from __future__ import annotations

import pytest

from hf_recsys.data import detect_movielens, load_movielens
from hf_recsys.data.movielens import ML100K_GENRES


def _genre_flags(*names):
    return "|".join("1" if g in names else "0" for g in ML100K_GENRES)


def test_ml_100k(tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881251000\n")
    (tmp_path / "u.item").write_bytes(
        (
            f"242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|{_genre_flags('Comedy')}\n"
            f"302|L.A. Confidential (1997)|01-Jan-1997||http://x|{_genre_flags('Crime', 'Film-Noir', 'Mystery')}\n"
            f"303|Caf\xe9 (1997)|01-Jan-1997||http://x|{_genre_flags('unknown')}\n"
        ).encode("latin-1")
    )
    assert detect_movielens(tmp_path) == "100k"
    log, items = load_movielens(tmp_path)
    assert log.column_names == ["user_id", "item_id", "rating", "timestamp"]
    assert log["user_id"] == [196, 186, 196] and log["item_id"] == [242, 302, 302]
    assert log["rating"] == [3.0, 3.0, 5.0] and log["timestamp"][0] == 881250949
    assert items["item_id"] == [242, 302, 303]
    assert items["title"][2] == "Café (1997)"  # latin-1 decoded
    assert items["genres"] == [["Comedy"], ["Crime", "Film-Noir", "Mystery"], []]
    assert items["text"][1] == "L.A. Confidential (1997). Genres: Crime, Film-Noir, Mystery."


def test_ml_1m(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (tmp_path / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|"
        'Children\'s|Musical\n9::Am\xe9lie: "Le Fabuleux" (2001)::Comedy|Romance\n'.encode("latin-1")
    )
    assert detect_movielens(tmp_path) == "dat"
    log, items = load_movielens(tmp_path)
    assert log["user_id"] == [1, 1, 2] and log["item_id"] == [1193, 661, 1193] and log["rating"] == [5.0, 3.0, 4.0]
    assert items["genres"][1] == ["Animation", "Children's", "Musical"]
    assert items["title"][2] == 'Amélie: "Le Fabuleux" (2001)'


def test_ml_latest_small_layout(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n2,1,3.5,964981247\n")
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"American President, The (1995)",Comedy\n'
    )
    (tmp_path / "tags.csv").write_text("userId,movieId,tag,timestamp\n2,1,pixar,1445714994\n")
    log, items = load_movielens(tmp_path)
    assert log.num_rows == 2 and items["title"][1] == "American President, The (1995)"
    assert items["tags"] == [["pixar"], []]
    _, no_tags = load_movielens(tmp_path, with_tags=False)
    assert no_tags["tags"] == [[], []]


def test_unknown_folder_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match="does not look like a MovieLens folder"):
        load_movielens(tmp_path)


@pytest.mark.slow
def test_real_ml_latest_small(ml_latest_small):
    log, items = load_movielens(ml_latest_small)
    assert log.num_rows == 100_836 and items.num_rows == 9_742
    assert len(set(log["user_id"])) == 610
    first = items[0]
    assert first["item_id"] == 1 and first["title"] == "Toy Story (1995)"
    assert first["genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert "pixar" in first["tags"] and first["text"].startswith("Toy Story (1995). Genres: Adventure")


@pytest.mark.slow
def test_real_ml_latest_small_split_matches_pandas(ml_latest_small):
    import pandas as pd

    from hf_recsys.data import leave_last_out, load_interactions

    log = load_interactions(ml_latest_small / "ratings.csv")
    splits = leave_last_out(log, n_test=1, n_validation=1)
    assert splits["test"].num_rows == splits["validation"].num_rows == 610
    df = pd.read_csv(ml_latest_small / "ratings.csv").reset_index()
    last = df.sort_values(["userId", "timestamp", "index"]).groupby("userId").tail(1)
    got = splits["test"].to_pandas()
    expected = last.rename(columns={"userId": "user_id", "movieId": "item_id"})[["user_id", "item_id"]]
    assert (
        got[["user_id", "item_id"]].sort_values("user_id").values.tolist()
        == expected.sort_values("user_id").values.tolist()
    )
