"""The room's page and the report, end to end: a real fer-pi --video --status process, its
sign-in over real HTTP, its runs kept across restarts, and both pages loaded in a real
browser (Debian's headless Chromium driven by Selenium through chromedriver), which reads
what they show, lists every request they made, and takes a screenshot."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
import urllib.parse
from pathlib import Path

import pytest
from conftest import free_port, need, need_tool, run_cli, spawn

from fer_pi.core.labels import LABELS, UNCERTAIN
from fer_pi.outputs import page
from fer_pi.sources.demo import Placement, astronaut_bgr, compose, write_clip

PHASE = 240  # frames with two faces, then as many with none: 8 s each at the clip's 30 FPS
SHOTS = os.environ.get("FER_SCREENSHOTS")  # a folder: keep the screenshots (docs/img)



@pytest.fixture(scope="module")
def room_clip(tmp_path_factory) -> Path:
    """Two faces, then an empty room, then (looped) two faces again."""
    face = astronaut_bgr()
    two = [Placement(0, 90, 310), Placement(325, 90, 310)]
    frames = (compose(two if i < PHASE else [], face=face) for i in range(2 * PHASE))
    return write_clip(tmp_path_factory.mktemp("room") / "room.avi", frames)


def ask(port: int, method: str, path: str, body: str = "", headers: dict | None = None):
    """One request, no redirect followed: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def status(port: int, token: str | None = None) -> dict:
    code, _h, body = ask(port, "GET", "/status",
                         headers={"Authorization": f"Bearer {token}"} if token else {})
    assert code == 200, code
    return json.loads(body)


def start(clip: Path, tmp_path: Path, token: str | None = None, env: dict | None = None,
          *extra: str):
    port = free_port()
    args = ["--video", str(clip), "--headless", "--status", "--status-port", str(port), *extra]
    if token:
        (tmp_path / "token").write_text(token + "\n")
        (tmp_path / "s.toml").write_text(f'[status]\ntoken_file = "{tmp_path / "token"}"\n')
        args += ["--config", str(tmp_path / "s.toml")]
    proc = spawn(*args, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if status(port, token)["frames"] > 0:
                return proc, port
        except (OSError, AssertionError):
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"fer-pi did not serve /status: {proc.communicate()[1][-2000:]}")


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err[-2000:]
    return err


def test_sign_in_sets_a_cookie_that_opens_the_page_and_nothing_else_does(room_clip, tmp_path):
    token = "t0ken-" + os.urandom(8).hex()
    proc, port = start(room_clip, tmp_path, token, None, "--loop")
    try:
        code, headers, body = ask(port, "GET", "/")
        assert code == 401 and headers["content-type"].startswith("text/html")
        assert 'name="token"' in body and "frames" not in body  # the form, and no figure
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        code, headers, body = ask(port, "POST", "/login",
                                  urllib.parse.urlencode({"token": token + "x"}), form)
        assert code == 401 and "not this board" in body and "set-cookie" not in headers
        code, headers, _ = ask(port, "POST", "/login", urllib.parse.urlencode({"token": token}),
                               form)
        assert code == 303 and headers["location"] == "./"
        cookie = headers["set-cookie"].split(";")[0]
        assert token not in cookie and "HttpOnly" in headers["set-cookie"]
        for path in ("/", "/status", "/history"):
            code, headers, body = ask(port, "GET", path, headers={"Cookie": cookie})
            assert code == 200, path
        assert "img-src 'none'" in ask(port, "GET", "/", headers={"Cookie": cookie})[1][
            "content-security-policy"]
        snap = json.loads(ask(port, "GET", "/status", headers={"Cookie": cookie})[2])
        assert {"faces_now", "runs", "events", "hours"} <= set(snap)
        # another board's cookie, a cookie made up, a body too large, a POST elsewhere
        other = f"{page.COOKIE}={page.session_value(b'another token')}"
        for bad in (other, f"{page.COOKIE}=", f"{page.COOKIE}={'0' * 64}"):
            assert ask(port, "GET", "/status", headers={"Cookie": bad})[0] == 401
        assert ask(port, "POST", "/login", "token=" + "x" * 2000, form)[0] == 413
        assert ask(port, "POST", "/login", "&".join(f"f{i}=1" for i in range(6)), form)[0] == 401
        assert ask(port, "POST", "/status", "a=1", {"Cookie": cookie, **form})[0] == 405
    finally:
        err = stop(proc)
    assert "Traceback" not in err, err[-2000:]


def test_the_page_lists_fer_pis_runs_across_restarts(room_clip, tmp_path):
    """systemd's StateDirectory keeps the runs: a clean stop, a kill, and this run."""
    state = tmp_path / "state"
    state.mkdir()
    env = {"STATE_DIRECTORY": str(state)}
    r = run_cli("--video", str(room_clip), "--headless", "--status", "--status-port",
                str(free_port()), "--max-frames", "5", env=env)
    assert r.returncode == 0, r.stderr
    killed, _port = start(room_clip, tmp_path, None, env, "--loop")
    killed.kill()
    killed.communicate(timeout=20)
    proc, port = start(room_clip, tmp_path, None, env, "--loop")
    try:
        runs = status(port)["runs"]
    finally:
        stop(proc)
    assert len(runs) == 3
    assert runs[0]["stopped"] is not None and runs[0]["error"] is None  # stopped cleanly
    assert runs[1]["stopped"] is None  # killed: it never said it stopped
    assert runs[2]["stopped"] is None and runs[2]["started"] >= runs[1]["started"]
    assert json.loads((state / "runs.json").read_text())[-1]["stopped"] is not None


# -- in a real browser ---------------------------------------------------------------------
@pytest.fixture
def browser():
    chromium = need_tool("chromium", "Debian: apt install chromium chromium-driver")
    driver_exe = need_tool("chromedriver", "Debian: apt install chromium-driver")
    try:
        from selenium import webdriver
    except ImportError:
        need("selenium (pip install '.[test]')")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=en-GB"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(driver_exe))
    try:
        yield driver
    finally:
        driver.quit()


# chromedriver opens every session on this empty page (no content at all); whether its
# load is still in the log when a test reads it depends on the machine's speed
BLANK = "data:,"


def requests_made(driver) -> list[tuple[str, str]]:
    """Every (URL, MIME type) the page asked for or received, from Chromium's own log,
    less the session's empty first page."""
    seen = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg["method"] == "Network.requestWillBeSent":
            seen.append((params["request"]["url"], ""))
        elif msg["method"] == "Network.responseReceived":
            seen.append((params["response"]["url"], params["response"]["mimeType"]))
    return [(url, mime) for url, mime in seen if url != BLANK]


def wait_for(what, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def shot(driver, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        (Path(SHOTS) / name).write_bytes(path.read_bytes())


def test_the_page_in_a_browser_follows_the_room_within_2_s(browser, room_clip, tmp_path):
    from selenium.webdriver.common.by import By

    token = "t0ken-" + os.urandom(8).hex()
    # at the clip's own pace, as a camera: read as fast as it decodes, an empty room lasted
    # a fraction of a second (no faces, no scans) and the page, polling each second, could
    # miss it; the process also took the CPU its own status server needs
    proc, port = start(room_clip, tmp_path, token, None, "--loop", "--realtime")
    base = f"http://127.0.0.1:{port}/"
    try:
        browser.get(base)
        field = browser.find_element(By.NAME, "token")  # the sign-in form, first
        assert field.get_attribute("type") == "password"
        field.send_keys(token)
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        assert wait_for(lambda: browser.find_element(By.ID, "updated").text == "live", 10)

        def shown() -> str:
            return browser.find_element(By.ID, "faces").text

        # two changes of the room (two faces to none, none to two): each on the page
        # within 2 s of /status saying so
        delays, labels_seen = [], set()
        before = status(port, token)["faces"]
        deadline = time.monotonic() + 60
        while len(delays) < 2 and time.monotonic() < deadline:
            snap = status(port, token)
            if snap["faces"] != before and snap["faces"] in (0, 2):
                t0, want = time.monotonic(), str(snap["faces"])
                ok = wait_for(lambda: shown() == want, 3.0)  # noqa: B023 (called here)
                assert ok, f"the page still shows {shown()} faces, /status {snap['faces']}"
                delays.append(time.monotonic() - t0)
                before = snap["faces"]
                if snap["faces"]:
                    cells = browser.find_elements(By.CSS_SELECTOR, "#facelist td[data-label]")
                    labels_seen |= {c.get_attribute("data-label") for c in cells}
                    if {f["label"] for f in status(port, token)["faces_now"]} == labels_seen:
                        shot(browser, tmp_path, "room_page.png")
            time.sleep(0.1)
        assert len(delays) == 2, "the room did not change twice in 60 s"
        assert max(delays) <= 2.0, delays
        assert labels_seen and labels_seen <= {*LABELS, UNCERTAIN}
        assert "fer-pi started (this run)" in browser.find_element(By.ID, "restarts").text
        if not (tmp_path / "room_page.png").exists():
            shot(browser, tmp_path, "room_page.png")
        # nothing but this device was asked, and nothing came back that is a picture
        made = requests_made(browser)
        assert made and all(url.startswith(base) for url, _ in made), made
        assert not [m for _, m in made if m.startswith("image/")], made
        assert not browser.find_elements(By.CSS_SELECTOR, "img, picture, video, canvas, "
                                                          "svg image, object, embed, iframe")
    finally:
        stop(proc)


def test_the_report_in_a_browser_opens_from_the_file_alone(browser, room_clip, tmp_path):
    from selenium.webdriver.common.by import By

    from fer_pi.outputs.summary import main

    results = tmp_path / "r.jsonl"
    r = run_cli("--video", str(room_clip), "--headless", "--output", str(results))
    assert r.returncode == 0, r.stderr
    assert main([str(results), "--report", str(tmp_path / "report.html"), "--min-frames", "5"]) == 0
    browser.get((tmp_path / "report.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#faces tbody tr")
    data = json.loads(browser.find_element(By.ID, "summary").get_attribute("textContent"))
    assert len(rows) == data["faces_tracked"] >= 2
    cells = rows[0].find_elements(By.TAG_NAME, "td")
    assert cells[5].text == data["tracks"][0]["most_shown"] in {*LABELS, UNCERTAIN}
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")
    shot(browser, tmp_path, "report.png")
    made = requests_made(browser)
    assert all(url.startswith("file://") for url, _ in made), made
