"""The Gradio demo page of examples/space/: its tables equal the model's answers, and in a real headless browser
(Debian's chromium + chromedriver, driven by selenium) picking items shows the recommendations model.recommend gives.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from pathlib import Path

import pytest

pytest.importorskip("hf_recsys_classic")

from hf_recsys import AutoModelForRecommendation  # noqa: E402
from hf_recsys.data import generate_interactions  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "examples" / "space" / "app.py"


def _load_app():
    spec = importlib.util.spec_from_file_location("hf_recsys_space_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = _load_app()


@pytest.fixture(scope="module")
def fitted():
    log, items = generate_interactions(num_users=80, num_items=60, num_interactions=1600, seed=3)
    model = AutoModelForRecommendation.for_model("ease", l2=20.0).fit(log, show_progress=False)
    return model, items


def titles_of(items) -> dict:
    return dict(zip(items["item_id"], items["title"]))


def test_tables_are_the_models_answers_with_titles(fitted):
    model, items = fitted
    titles = titles_of(items)
    demo = app.DemoRecommender(model, titles)
    user = demo.users[4]
    seen = model.item_vocab.decode(model.seen_items[model.user_vocab.encode([user])[0]].indices).tolist()
    assert demo.history(user) == [[i, titles[i]] for i in seen] and seen

    ids, scores = model.recommend([user], k=7)
    assert demo.recommend_user(user, 7) == [
        [r, i, titles[i], round(float(s), 4)] for r, (i, s) in enumerate(zip(ids[0].tolist(), scores[0]), 1)
    ]
    picked = [items["item_id"][3], items["item_id"][11]]
    ids, _ = model.recommend(["someone new"], k=5, histories=[picked])
    rows = demo.recommend_history(picked, 5)
    assert [row[1] for row in rows] == ids[0].tolist() and not set(picked) & {row[1] for row in rows}
    assert [row[2] for row in rows] == [titles[i] for i in ids[0].tolist()]
    ids, _ = model.similar_items([picked[0]], k=4)
    assert [row[1] for row in demo.similar(picked[0], 4)] == ids[0].tolist()


def test_bad_picks_are_named(fitted):
    model, items = fitted
    demo = app.DemoRecommender(model, titles_of(items))
    with pytest.raises(ValueError, match="Pick at least one item"):
        demo.recommend_history([], 5)
    with pytest.raises(ValueError, match="Pick an item"):
        demo.similar(None, 5)
    assert demo.title(10**9) == f"item {10**9}"  # an item without a title is shown by its id


def test_page_builds_over_a_saved_model_and_its_catalogue(fitted, tmp_path):
    pytest.importorskip("gradio")
    model, items = fitted
    model.save_pretrained(tmp_path / "model")
    items.to_pandas()[["item_id", "title"]].to_csv(tmp_path / "items.csv", index=False)
    demo = app.load_demo(str(tmp_path / "model"), str(tmp_path / "items.csv"))
    assert demo.titles == titles_of(items)
    assert demo.recommend_user(demo.users[0], 3) == app.DemoRecommender(model, titles_of(items)).recommend_user(
        demo.users[0], 3
    )
    page = app.build_demo(demo)
    assert page.title == "hf-recsys demo: ease"


# ---------------------------------------------------------------------------------------------- the real browser
def _browser_missing() -> str | None:
    for exe in ("chromium", "chromedriver"):
        if shutil.which(exe) is None:
            return f"{exe} is not installed (Debian: apt-get install chromium chromium-driver; .ci/install-browser.sh)"
    for module in ("selenium", "gradio"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[test]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if (reason := _browser_missing()) is not None:
        pytest.skip(reason)
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2300"):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    yield driver
    driver.quit()


def _rows(driver, elem_id: str, n: int | None, timeout: float = 30) -> list[list[str]]:
    """The rendered body rows of a Gradio table once it shows ``n`` of them (``None``: any)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    seen: list = []

    def read(d):
        rows = [  # Gradio's virtual table: one div[role=row] per rendered row
            [c.text.strip() for c in row.find_elements(By.CSS_SELECTOR, "[role=gridcell]")]
            for row in d.find_elements(By.CSS_SELECTOR, f"#{elem_id} [role=row].virtual-row")
        ]
        seen[:] = [r for r in rows if any(r)]
        return seen if (len(seen) == n if n else seen) else False

    try:
        return WebDriverWait(driver, timeout).until(read)
    except TimeoutException as exc:
        raise AssertionError(f"#{elem_id} did not show {n or 'any'} rows in {timeout} s; it shows {seen}") from exc


def _pick(driver, elem_id: str, title: str) -> None:
    """Type a title into a Gradio dropdown and click its option (in the list that dropdown controls)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    box.click()
    if box.get_attribute("value"):  # a single-choice dropdown shows its current value in the box
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE)  # (on an empty multi-choice box this would drop the last pick)
    box.send_keys(title)
    options = f"#{box.get_attribute('aria-controls')} [role=option]"
    option = WebDriverWait(driver, 10).until(
        lambda d: next((o for o in d.find_elements(By.CSS_SELECTOR, options) if o.text.strip() == title), False)
    )
    option.click()
    box.send_keys(Keys.ESCAPE)  # close the list: it would cover the next control


def _click(driver, elem_id: str, timeout: float = 60) -> None:
    """Click a button once the page has rendered it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(ec.element_to_be_clickable((By.ID, elem_id))).click()


def _titles_in(rows: list[list[str]]) -> list[str]:
    return [r[-2] for r in rows]  # columns: rank, item_id, title, score (the row-number cell may lead)


@pytest.mark.slow
def test_the_page_in_a_real_browser(fitted, browser, tmp_path):
    """Start the app on 127.0.0.1 over a saved model, pick a user, build a history, look up similar items; every
    table shows the titles model.recommend / similar_items give; a screenshot is saved."""

    model, items = fitted
    titles = titles_of(items)
    model.save_pretrained(tmp_path / "model")
    items.to_pandas()[["item_id", "title"]].to_csv(tmp_path / "items.csv", index=False)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = app.load_demo(str(tmp_path / "model"), str(tmp_path / "items.csv"))
    page = app.build_demo(demo)
    port = _free_port()
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        user = demo.users[0]
        _click(browser, "show-user")  # the first user is preselected
        ids, _ = model.recommend([user], k=10)
        assert _titles_in(_rows(browser, "user-recs", 10)) == [titles[i] for i in ids[0].tolist()]
        shown = _rows(browser, "user-history", None)  # a long history is rendered only as far as it is visible
        assert [r[-1] for r in shown] == [t for _, t in demo.history(user)][: len(shown)]

        picked = [items["item_id"][5], items["item_id"][17]]
        for i in picked:
            _pick(browser, "picked", titles[i])
        _click(browser, "recommend-history")
        ids, _ = model.recommend(["visitor"], k=10, histories=[picked])
        assert _titles_in(_rows(browser, "history-recs", 10)) == [titles[i] for i in ids[0].tolist()]

        _pick(browser, "item", titles[picked[0]])
        _click(browser, "show-similar")
        ids, _ = model.similar_items([picked[0]], k=10)
        assert _titles_in(_rows(browser, "similar-items", 10)) == [titles[i] for i in ids[0].tolist()]

        shot = Path(os.environ.get("HF_RECSYS_DEMO_SCREENSHOT", tmp_path / "demo.png"))
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        page.close()
