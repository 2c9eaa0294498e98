"""`sweep ui` in a real headless Chromium: the MLflow UI lists a sweep's child runs and draws the
test_acc curves across them. Screenshots go to test-artifacts/ for a person to look at."""

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.fake_sweep import log_trial, make_spec
from helpers.listening import listening_addresses
from helpers.servers import free_port
from sweep.tracking.runs import SweepTracker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("chromedriver")),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A finished sweep with five trials, served by `sweep ui` on a loopback port (one server for
    the module: the tests only read it, and it takes seconds to start)."""
    spec = make_spec(tmp_path_factory.mktemp("ui"), "browsed", optimizers=["sgd", "sam_gns"])
    tracker = SweepTracker(spec)
    for i, (rule, lr) in enumerate([("sgd", 0.1), ("sgd", 0.3), ("sam_gns", 0.2), ("sam_gns", 0.6), ("sam_gns", 1.0)]):
        log_trial(tracker, f"t{i}", rule, lr, 0, 80.0 + i, [40 + 5 * i, 60 + 3 * i, 70 + 2 * i])
    tracker.finish({})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "ui", "browsed", "--tracking-uri", spec.tracking.mlflow_uri, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a process group of its own: its sockets are told from other tests'
    )
    url = server.stdout.readline().split(": ", 1)[1].split()[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            break
        except OSError:
            time.sleep(1)
    yield (
        url,
        [r.info.run_name for r in tracker.client.search_runs([tracker.experiment_id]) if "mlflow.parentRunId" in r.data.tags],
        server.pid,
    )
    server.terminate()
    server.wait(timeout=30)


def test_the_ui_listens_on_loopback_only(ui):
    url, _, group = ui
    port = int(url.split(":")[2].split("/")[0])
    # the server's own sockets: another test's process may listen on the same port number elsewhere
    assert listening_addresses(port, [group]) == {"127.0.0.1"}


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp()}",
        "--window-size=1600,1000",
    ]
    for flag in flags:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def test_mlflow_ui_lists_the_child_runs_and_charts_test_acc(ui):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, child_names, _ = ui
    assert url.startswith("http://127.0.0.1:") and "workflowType=machine_learning" in url
    ARTIFACTS.mkdir(exist_ok=True)
    driver = browser()
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 90)
        wait.until(lambda d: "browsed (sweep)" in d.page_source)  # the model-training runs table
        driver.find_element(By.CSS_SELECTOR, 'button[data-component-id*="runnamecellrenderer"]').click()  # expand the parent
        wait.until(lambda d: all(name in d.page_source for name in child_names))
        driver.save_screenshot(str(ARTIFACTS / "mlflow_ui_runs.png"))

        chart_mode = driver.find_element(By.CSS_SELECTOR, 'input[name="runs-view-mode"][value="CHART"]')
        driver.execute_script("arguments[0].click()", chart_mode)  # a tooltip may cover the label
        search = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'input[placeholder="Search metric charts"]'))[0]
        search.send_keys("test_acc")

        def test_acc_chart(d):
            titles = d.find_elements(By.XPATH, '//*[@title="test_acc"]')
            traces = d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace")
            return titles and len(traces) >= len(child_names)

        wait.until(test_acc_chart)
        time.sleep(1)  # let the lines finish drawing before the screenshot
        driver.save_screenshot(str(ARTIFACTS / "mlflow_ui_test_acc_chart.png"))
    finally:
        driver.quit()
