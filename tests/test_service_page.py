"""The service's web page in a real headless Chromium (Selenium), against uvicorn on loopback.

The `browser` and `shots` fixtures (conftest) save screenshots to
`$SIAMKIT_SCREENSHOTS` (default: a temporary folder) and skip the tests when
Chromium or its driver is not installed (`apt-get install chromium chromium-driver`).
"""

import shutil

import pytest

from siamkit.service import Settings, create_app

pytestmark = pytest.mark.slow  # uses the session-trained `trained_run`


@pytest.fixture(scope="module")
def page_url(trained_run, gallery_index, live_server, tmp_path_factory):
    index_dir, paths = gallery_index
    copy = tmp_path_factory.mktemp("page") / "ix"
    shutil.copytree(index_dir, copy)
    return live_server(create_app(trained_run, copy, Settings(threshold=1.0))), paths


def _wait(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _visible(driver, element_id):
    return lambda d: d.find_element("id", element_id).is_displayed() and d.find_element("id", element_id)


def test_compare_two_files_shows_the_decision(browser, page_url, shots):
    url, paths = page_url
    browser.get(url)
    _wait(browser, lambda d: d.find_element("id", "run-name").text == "digits")
    browser.find_element("id", "file-a").send_keys(str(paths[0]))
    browser.find_element("id", "file-b").send_keys(str(paths[10]))  # another zero
    browser.find_element("id", "compare-button").click()
    decision = _wait(browser, _visible(browser, "decision"))
    assert decision.text.startswith(("Same", "Different"))
    assert decision.get_attribute("class") in ("decision same", "decision different")
    assert "given" in browser.find_element("id", "threshold").text
    assert len(browser.find_elements("css selector", "#preview-a img, #preview-b img")) == 2
    browser.save_screenshot(str(shots / "compare.png"))


def test_search_shows_a_grid_and_a_result_compares_with_the_query(browser, page_url, shots):
    url, paths = page_url
    browser.get(url)
    _wait(browser, lambda d: d.find_element("id", "run-name").text == "digits")
    browser.find_element("id", "tab-search").click()
    browser.find_element("id", "search-file").send_keys(str(paths[3]))
    browser.find_element("id", "search-button").click()
    _wait(browser, lambda d: len(d.find_elements("css selector", "#search-results li")) == 10)
    first = browser.find_element("css selector", "#search-results li button")
    assert "#1 · 3" in first.text and "distance 0.0000" in first.text and "match" in first.text
    _wait(browser, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#search-results img')].every(i => i.complete && i.naturalWidth > 0)"))
    browser.save_screenshot(str(shots / "search.png"))
    first.click()
    decision = _wait(browser, _visible(browser, "decision"))
    assert decision.text.startswith("Same") and "same" in decision.get_attribute("class")
    browser.save_screenshot(str(shots / "search-compare.png"))


def test_a_non_image_upload_shows_the_error_inline(browser, page_url, shots, tmp_path):
    url, paths = page_url
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    browser.get(url)
    _wait(browser, lambda d: d.find_element("id", "run-name").text == "digits")
    browser.find_element("id", "file-a").send_keys(str(paths[0]))
    browser.find_element("id", "file-b").send_keys(str(notes))
    browser.find_element("id", "compare-button").click()
    error = _wait(browser, _visible(browser, "compare-error"))
    assert "'notes.png': unsupported file type" in error.text
    assert not browser.find_element("id", "compare-result").is_displayed()
    browser.save_screenshot(str(shots / "error.png"))


def test_the_model_card_and_tabs_work_from_the_keyboard(browser, page_url, shots):
    from selenium.webdriver.common.keys import Keys

    url, _ = page_url
    browser.get(url)
    _wait(browser, lambda d: d.find_element("id", "run-name").text == "digits")
    browser.find_element("id", "tab-compare").send_keys(Keys.ARROW_RIGHT)
    assert browser.switch_to.active_element.get_attribute("id") == "tab-search"
    browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    card = _wait(browser, _visible(browser, "model-card"))
    assert "cnn" in card.text and "12 items" in card.text and "1.0000 — given" in card.text
    assert "test_roc_auc" in browser.find_element("id", "model-metrics").text
    browser.save_screenshot(str(shots / "model.png"))


def test_with_protected_reads_the_page_sends_the_key_for_thumbnails_and_the_report(
        browser, trained_run, gallery_index, live_server, tmp_path, shots):
    from siamkit.runs import REPORT_FILE

    run_copy = tmp_path / "digits"
    shutil.copytree(trained_run.path, run_copy)
    (run_copy / REPORT_FILE).write_text("<!doctype html><title>run report</title><p id=report-body>the report</p>")
    index_dir, paths = gallery_index
    key_file = tmp_path / "key"
    key_file.write_text("a-page-test-key-0123456789\n")
    url = live_server(create_app(str(run_copy), index_dir, Settings(threshold=1.0, api_key_file=str(key_file),
                                                                     protect_reads=True)))
    browser.get(url)
    error = _wait(browser, _visible(browser, "page-error"))
    assert "key" in error.text.lower()  # no key yet: the card cannot load, and the key box opens
    assert browser.find_element("id", "key-box").get_attribute("open") is not None
    key = browser.find_element("id", "api-key")
    key.send_keys("a-page-test-key-0123456789")
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
    _wait(browser, lambda d: d.find_element("id", "run-name").text == "digits")
    browser.find_element("id", "tab-search").click()
    browser.find_element("id", "search-file").send_keys(str(paths[3]))
    browser.find_element("id", "search-button").click()
    _wait(browser, lambda d: len(d.find_elements("css selector", "#search-results li")) == 10)
    _wait(browser, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#search-results img')].every(i => i.complete && i.naturalWidth > 0)"))
    browser.save_screenshot(str(shots / "search-protected.png"))

    browser.find_element("id", "tab-model").click()
    page = browser.current_window_handle
    _wait(browser, _visible(browser, "report-link")).find_element("css selector", "a").click()
    _wait(browser, lambda d: len(d.window_handles) == 2)
    browser.switch_to.window([h for h in browser.window_handles if h != page][0])
    _wait(browser, lambda d: d.find_elements("id", "report-body"))
    assert browser.find_element("id", "report-body").text == "the report"
    browser.close()
    browser.switch_to.window(page)
