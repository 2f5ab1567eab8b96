"""The report (`snakemake --report`) of a run where two images failed, opened in a real
headless browser: the run's figures on the landing page, the sections in a reader's order,
the review list with its crops, the fields table sorted and searched, the failures by class
and the sample pages chosen to inform."""

from __future__ import annotations

import contextlib
import csv
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from conftest import SAMPLE_IMAGES, Workdir, make_workdir

pytestmark = pytest.mark.xdist_group("report")

SECTIONS = ["1 Overview", "2 Fields", "3 Review", "4 Failures", "5 Samples"]
SECTIONS += ["6 Performance", "7 Costs"]


@pytest.fixture(scope="module")
def report_run(tmp_path_factory) -> Workdir:
    """Three samples, a file that is no image, and a page over the pixel limit."""
    workdir = make_workdir(tmp_path_factory.mktemp("report"), SAMPLE_IMAGES[:3])
    (workdir.scans / "notes.jpg").write_text("not an image")
    page = Image.open(SAMPLE_IMAGES[0])
    page.resize((page.width * 4, page.height * 4)).save(workdir.scans / "huge.jpg")
    (workdir.path / "run.yaml").write_text(
        "input_dir: scans\nshard_size: 2\nmax_failed: 2\nimages: {max_pixels: 4000000}\n"
    )
    workdir.snakemake("--configfile", "config/config.yaml", "run.yaml")
    plan = (workdir.results / "plan" / "plan.json.gz").read_bytes()
    workdir.snakemake("--configfile", "config/config.yaml", "run.yaml", "--report", "report.html")
    assert (workdir.results / "plan" / "plan.json.gz").read_bytes() == plan
    return workdir


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    yield driver
    driver.quit()


def test_the_landing_page_shows_the_runs_figures(report_run, browser, tmp_path: Path):
    browser.get((report_run.path / "report.html").as_uri())
    table = _wait_for(browser, "//table[@id='run-figures']", lambda t: t.is_displayed())
    figures = {
        row.find_element("xpath", "th").text: row.find_element("xpath", "td").text
        for row in table.find_elements("xpath", ".//tr")
    }
    assert figures["Images"].startswith("5 (5 pages)")
    assert figures["Finished"] == "3 ok, 2 failed, 0 skipped"
    assert figures["Failed by class"] == "1 DecompressionBomb, 1 UnreadableImage"
    assert re.fullmatch(r"\d+:\d\d from the first page begun to the last finished", figures["Time"])
    assert re.match(r"OCR: [\d,]+ images an hour", figures["Throughput"])
    assert figures["Engines"].startswith("OCR faster_paddle ")
    assert "KIE ocrkie-learned " in figures["Engines"]
    assert figures["API spend"] == "none: every engine ran here"
    values = _confidences(report_run)
    doubtful = sum(1 for c in values if c < 0.9)
    assert figures["To review"] == f"{doubtful} of {len(values)} values read under 0.9 confidence"
    shot = tmp_path / "landing.png"
    browser.save_screenshot(str(shot))
    pixels = Image.open(shot).convert("L")
    assert sum(pixels.histogram()[:128]) > 20_000  # the sidebar and the figures, not blank
    browser.find_element("xpath", "//a[text()='3 Review']").click()  # a link to its section
    assert _wait_for(browser, "//tr[td[contains(., 'Least certain values')]]")


def test_the_sections_come_in_a_readers_order_and_every_item_has_a_label(report_run, browser):
    browser.get((report_run.path / "report.html").as_uri())
    heights = [_wait_for(browser, f"//*[text()='{s}']").location["y"] for s in SECTIONS]
    assert heights == sorted(heights) and len(set(heights)) == len(SECTIONS)
    for section in SECTIONS:
        labels = [row.text for row in _open_section(browser, report_run, section)]
        assert labels and not any("results/" in t or "page_" in t for t in labels), labels


def test_the_review_list_shows_the_least_certain_values_with_their_crops(report_run, browser):
    frame = _open_item(browser, report_run, "3 Review", "Least certain values")
    rows = frame.find_elements("xpath", "//tbody/tr")
    confidences = [row.find_element("xpath", "td[1]").text for row in rows]
    expected = sorted(_confidences(report_run))[:20]
    assert confidences == [f"{c:.3f}" for c in expected] and expected
    for row in rows:
        crop = row.find_element("xpath", "td[4]/img")
        assert crop.get_property("complete") and crop.get_property("naturalWidth") > 20
        assert row.find_element("xpath", "td[3]").text  # the value read


def test_the_fields_table_sorts_and_searches(report_run, browser):
    frame = _open_item(browser, report_run, "2 Fields", "Extracted fields")
    headers = [th.text for th in frame.find_elements("xpath", "//thead//th")]
    frame.find_element("xpath", "//th[text()='total confidence']").click()
    column = headers.index("total confidence") + 1
    cells = frame.find_elements("xpath", f"//tbody/tr/td[{column}]")
    numbers = [float(cell.text) for cell in cells if cell.text]
    assert numbers == sorted(numbers) and len(numbers) == 3  # the failed images have none
    frame.find_element("id", "search").send_keys("sample_001")
    shown = [row.text for row in frame.find_elements("xpath", "//tbody/tr") if row.is_displayed()]
    assert len(shown) == 1 and shown[0].startswith("sample_001.jpg ok")
    assert frame.find_element("id", "count").text == "1"


def test_the_failures_are_grouped_by_class(report_run, browser):
    frame = _open_item(browser, report_run, "4 Failures", "Failures by class")
    rows = [
        [cell.text for cell in row.find_elements("xpath", "td")]
        for row in frame.find_elements("xpath", "//tbody/tr")
    ]
    assert sorted(row[:3] for row in rows) == [
        ["DecompressionBomb", "OCR", "1"],
        ["UnreadableImage", "OCR", "1"],
    ]
    assert any(row[3].startswith("notes.jpg: ") for row in rows)


def test_the_samples_are_the_least_certain_pages_and_a_failed_one(report_run, browser):
    rows = _open_section(browser, report_run, "5 Samples")
    chosen = [row.text for row in rows]
    assert len(chosen) == 4
    assert all("least certain value" in text for text in chosen[:3])
    assert "huge.jpg" in chosen[3] and "failed: DecompressionBomb" in chosen[3]
    image = _click_until(
        browser,
        "//tr[td[contains(., 'huge.jpg')]]//a[@iconname='eye']",
        "//img[contains(@src, 'filename=page_4.png')]",
        ready=lambda img: img.get_property("complete") and img.get_property("naturalWidth"),
    )
    assert image.get_property("naturalWidth") >= 300


def test_every_figure_is_a_real_image(report_run, browser):
    for section, label, name in (
        ("1 Overview", "Images by status", "status.png"),
        ("2 Fields", "Fields found", "kie_fields.png"),
        ("3 Review", "OCR line confidence", "ocr_confidence.png"),
        ("6 Performance", "Throughput", "throughput.png"),
    ):
        _open_section(browser, report_run, section)
        image = _click_until(
            browser,
            f"//tr[td[contains(., '{label}')]]//a[@iconname='eye']",
            f"//img[contains(@src, 'filename={name}')]",
            ready=lambda img: img.get_property("complete") and img.get_property("naturalWidth"),
        )
        assert image.get_property("naturalWidth") >= 300, label


def _kie_rows(workdir: Workdir) -> list[dict[str, str]]:
    with open(workdir.results / "kie.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _confidences(workdir: Workdir) -> list[float]:
    """The confidence of every value in kie.csv."""
    return [
        float(value)
        for row in _kie_rows(workdir)
        for name, value in row.items()
        if name.endswith("_confidence") and value
    ]


def _open_section(browser, workdir: Workdir, section: str):
    """The section's rows in the sidebar, once it shows them."""
    browser.get((workdir.path / "report.html").as_uri())
    _click_until(browser, f"//*[text()='{section}']", "//tr[.//a[@iconname='eye']]")
    return browser.find_elements("xpath", "//tr[.//a[@iconname='eye']]")


def _open_item(browser, workdir: Workdir, section: str, label: str):
    """Opens an HTML item and returns the browser switched into its frame."""
    _open_section(browser, workdir, section)
    row = f"//tr[td[contains(., '{label}')]]"
    _click_until(browser, f"{row}//a[@iconname='eye']", "//iframe")
    browser.switch_to.frame(_wait_for(browser, "//iframe"))
    _wait_for(browser, "//tbody")
    return browser


def _click_until(browser, target: str, shown: str, ready=bool, attempts: int = 5):
    """Clicks `target` until `shown` appears and is `ready`, and returns it.

    The report's sidebar widens with a CSS transition when a section opens, so a click
    landing mid-transition can miss the moving button; a user would click again.
    """
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        StaleElementReferenceException,
        TimeoutException,
    )

    for _ in range(attempts):
        if found := _find(browser, shown, ready):
            return found
        with contextlib.suppress(ElementClickInterceptedException, StaleElementReferenceException):
            _wait_for(browser, target).click()
        with contextlib.suppress(TimeoutException):
            return _wait_for(browser, shown, ready, timeout=4)
    raise AssertionError(f"{shown} never appeared after {attempts} clicks on {target}")


def _wait_for(browser, xpath: str, ready=bool, timeout: float = 20):
    from selenium.webdriver.support.wait import WebDriverWait

    wait = WebDriverWait(browser, timeout, poll_frequency=0.2)
    return wait.until(lambda _: _find(browser, xpath, ready), f"{xpath} never appeared")


def _find(browser, xpath: str, ready=bool):
    """The first element at `xpath` that is `ready`, or None."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for element in browser.find_elements(By.XPATH, xpath):
        with contextlib.suppress(StaleElementReferenceException):  # re-rendered meanwhile
            if ready(element):
                return element
    return None


def test_without_kie_the_samples_are_the_pages_with_the_least_certain_lines(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    workdir.snakemake("--config", "input_dir=scans", "shard_size=2", "kie_backend=none")
    report = workdir.results / "report"
    assert "<th>To review</th><td>no values: no KIE ran</td>" in (
        report / "overview.html"
    ).read_text(encoding="utf-8")
    chosen = json.loads((report / "samples" / "pages.json").read_text())
    why = [re.fullmatch(r"(\d+) lines under 0.99 confidence", c["chosen"]) for c in chosen.values()]
    lines = [int(match[1]) for match in why]
    assert len(chosen) == 2 and lines == sorted(lines, reverse=True)
    assert "No value was read" in (report / "review.html").read_text(encoding="utf-8")


def test_the_landing_page_states_the_api_spend_in_money_where_prices_are_set():
    from ocrkie.report import _spend

    api = {
        "spent": {"ocr": {"calls": 2, "billed_pages": 6}},
        "saved_by_cache": {"ocr": {"billed_pages": 4}},
    }
    assert _spend(api, {}) == "6 pages paid in 2 calls; 4 pages saved by the cache"
    assert _spend(api, {"ocr": 0.0015}) == (
        "6 pages paid in 2 calls ($0.009); 4 pages saved by the cache ($0.006)"
    )
    assert _spend({}, {"ocr": 0.0015}) == "none: every engine ran here"
