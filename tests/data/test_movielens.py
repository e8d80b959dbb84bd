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


def _sasrec_folder(tmp_path):
    """A few users in the SASRec ml-1m.txt format, with its id map and the original movies.dat (latin-1)."""
    (tmp_path / "ml-1m.txt").write_text("1 1\n1 2\n1 3\n2 2\n1 1\n2 3\n3 1\n")  # user 1 sees item 1 again at the end
    (tmp_path / "sas_to_original_items.txt").write_text("1 1198\n2 3552\n3 356\n")
    (tmp_path / "movies.dat").write_bytes(
        "356::Forrest Gump (1994)::Comedy|Romance|War\n1198::Raiders of the Lost Ark (1981)::Action|Adventure\n"
        "3552::Caddyshack (1980)::Comedy\n9::Caf\xe9 (1995)::Drama\n".encode("latin-1")
    )
    return tmp_path


def test_sasrec_sequence_format_keeps_each_users_order(tmp_path):
    from hf_recsys.data import DataValidationError, leave_last_out, load_interactions

    folder = _sasrec_folder(tmp_path)
    log = load_interactions(folder / "ml-1m.txt", format="sasrec")
    assert log.column_names == ["user_id", "item_id", "timestamp"]
    assert log["user_id"] == [1, 1, 1, 2, 1, 2, 3] and log["timestamp"] == [0, 1, 2, 0, 3, 1, 0]
    split = leave_last_out(log, n_validation=1)  # user 1's last line is the test item, the one before validation
    test, validation = split["test"].to_pandas(), split["validation"].to_pandas()
    assert test[test.user_id == 1].item_id.tolist() == [1]
    assert validation[validation.user_id == 1].item_id.tolist() == [3]
    (tmp_path / "bad.txt").write_text("1 1\n1,2\n")
    with pytest.raises(DataValidationError, match="SASRec sequence file"):
        load_interactions(tmp_path / "bad.txt", format="sasrec")


def test_movielens_1m_sasrec_joins_titles_through_the_id_map(tmp_path):
    from hf_recsys.data import load_movielens_1m_sasrec

    log, items = load_movielens_1m_sasrec(_sasrec_folder(tmp_path))
    assert log.num_rows == 7 and items["item_id"] == [1, 2, 3]
    assert items["title"] == ["Raiders of the Lost Ark (1981)", "Caddyshack (1980)", "Forrest Gump (1994)"]
    assert items["genres"][0] == ["Action", "Adventure"] and "Forrest Gump" in items["text"][2]
    (tmp_path / "sas_to_original_items.txt").write_text("1 1198\n2 4242\n")
    with pytest.raises(ValueError, match="not in movies.dat"):
        load_movielens_1m_sasrec(tmp_path)


def test_the_train_command_reads_a_sasrec_ml1m_folder(tmp_path):
    from hf_recsys.training.arguments import DataArguments
    from hf_recsys.training.run import load_training_data

    parts, name = load_training_data(DataArguments(dataset=str(_sasrec_folder(tmp_path)), n_validation=1))
    assert name == tmp_path.name and parts["test"]["item_id"] == [1]  # user 1's last line
