"""The interactive html plot: the page's text, then the page in Debian's headless chromium driven by Selenium
(lanes drawn, zoom, click a bar or a section to play from there, beat clicks, labels that never overlap)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from matplotlib import image as mpimg

from beatwatch.analysis.audio.decode import decode, probe
from beatwatch.render.plot import SECTION_COLOURS, chord_name, harmony_colour, render_plot
from tests.helpers import click_track, write_wav
from tests.test_plot import PROGRESSION, song_doc, synthetic_doc

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
AUDIO_SR = 8000  # enough for clicks, and keeps three minutes of WAV small
LEFT, RIGHT = 100, 10  # the page's lane-name column and right margin (render/page/timeline.js)
MIX_BARS = 2000


def page_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', page, re.DOTALL)
    assert found
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> tuple[dict, Path]:
    """Three minutes at 120 BPM in the sections of tests.test_plot.FORM, with a click on every beat as its audio."""
    folder = tmp_path_factory.mktemp("song")
    doc = song_doc()
    signal, _ = click_track(120.0, seconds=doc["file"]["duration"], lead_in=0.0, sr=AUDIO_SR)
    (folder / "music").mkdir()
    wav = write_wav(folder / "music" / "song.wav", signal, sr=AUDIO_SR)
    doc["file"]["path"] = str(wav)
    return doc, wav


@pytest.fixture(scope="module")
def song_page(song, tmp_path_factory) -> Path:
    doc, wav = song
    out = tmp_path_factory.mktemp("pages") / "song.html"
    return render_plot(doc, out, audio=decode(probe(wav)))


@pytest.fixture(scope="module")
def mix_page(tmp_path_factory) -> tuple[dict, Path]:
    """A 67-minute mix of 2000 bars, a random chord per bar; no audio, drawn from the sidecar alone."""
    changes = np.random.default_rng(3).integers(0, len(PROGRESSION), MIX_BARS)
    doc = synthetic_doc(MIX_BARS, [PROGRESSION[c] for c in changes], path="/nowhere/mix.flac")
    return doc, render_plot(doc, tmp_path_factory.mktemp("pages") / "mix.html")


# ---- the page's text ----------------------------------------------------------------------------------------


def test_page_is_one_offline_file_with_the_timeline_and_a_relative_link_to_the_audio(song, song_page):
    doc, wav = song
    page = song_page.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<link" not in page and not re.search(r"<script[^>]*\ssrc=", page)
    assert "window.beatwatch" in page, "the script is inline"
    src = re.search(r'<audio id="player"[^>]* src="([^"]+)"', page).group(1)
    assert not src.startswith(("/", "file:"))
    assert (song_page.parent / unquote(src)).resolve() == wav.resolve()
    data = page_data(page)
    assert data["bars"]["t"] == [b["time"] for b in doc["timeline"]["bars"]]
    assert len(data["beats"]["t"]) == len(doc["timeline"]["beats"])
    assert [s[3] for s in data["sections"]] == [s["letter"] for s in doc["timeline"]["sections"]]
    assert data["wave"] and len(data["wave"]["lo"]) == len(data["wave"]["hi"]) > 1000


def test_embedded_audio_is_the_file_itself_and_only_html_can_carry_it(song, tmp_path):
    doc, wav = song
    page = render_plot(doc, tmp_path / "inside.html", embed_audio=True).read_text()
    src = re.search(r'<audio id="player"[^>]* src="([^"]+)"', page).group(1)
    prefix = "data:audio/wav;base64,"
    assert src.startswith(prefix) and base64.b64decode(src[len(prefix):]) == wav.read_bytes()
    with pytest.raises(ValueError, match="only an .html plot"):
        render_plot(doc, tmp_path / "inside.png", embed_audio=True)
    assert not (tmp_path / "inside.png").exists()


def test_names_cannot_end_the_script_or_inject_markup(song, tmp_path):
    doc = json.loads(json.dumps(song[0]))
    doc["file"]["path"] = str(tmp_path / "<b>x&amp;.wav")
    doc["timeline"]["sections"][0]["label"] = "</script><b>"
    page = render_plot(doc, tmp_path / "odd.html").read_text()
    assert page.count("</script>") == 2
    outside = re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL)
    assert "<b>" not in outside and "&lt;b&gt;x&amp;amp;.wav" in outside
    data = page_data(page)
    assert data["title"] == "<b>x&amp;.wav" and data["sections"][0][2] == "</script><b>"


@pytest.mark.slow
def test_plot_command_writes_the_page_and_embeds_on_request(song, tmp_path):
    doc, wav = song
    sidecar = tmp_path / "song.wav.beatwatch.json"
    sidecar.write_text(json.dumps(doc))
    run = [BEATWATCH, "plot", str(sidecar), "--config", str(tmp_path / "none.toml")]
    (tmp_path / "none.toml").write_text("")
    linked = subprocess.run([*run, "--out", str(tmp_path / "linked.html")], capture_output=True, text=True, timeout=120)
    assert linked.returncode == 0, linked.stderr
    assert Path(linked.stdout.strip()) == tmp_path / "linked.html"
    src = re.search(r'<audio id="player"[^>]* src="([^"]+)"', (tmp_path / "linked.html").read_text()).group(1)
    assert (tmp_path / unquote(src)).resolve() == wav.resolve()
    embedded = subprocess.run([*run, "--out", str(tmp_path / "inside.html"), "--embed-audio"], capture_output=True,
                              text=True, timeout=120)
    assert embedded.returncode == 0, embedded.stderr
    assert "data:audio/wav;base64," in (tmp_path / "inside.html").read_text()
    refused = subprocess.run([*run, "--out", str(tmp_path / "inside.png"), "--embed-audio"], capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 2 and "only an .html plot" in refused.stderr


# ---- in the browser -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (`make install` adds them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (test extra) is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,900", "--force-device-scale-factor=1", "--hide-scrollbars",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                 # Offline: any name lookup fails and any proxied request goes nowhere.
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--no-first-run"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def wait_for(driver, script: str, *args, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        time.sleep(0.05)


def open_page(driver, page: Path) -> None:
    """Load the page, its console log starting empty, and wait for its first drawing."""
    driver.get_log("browser")
    driver.get(page.as_uri())
    wait_for(driver, "return window.beatwatch && window.beatwatch.settled")


def set_view(driver, start: float, end: float) -> None:
    renders = driver.execute_script("return beatwatch.renders")
    driver.execute_script("beatwatch.setView(arguments[0], arguments[1])", start, end)
    wait_for(driver, "return beatwatch.settled && beatwatch.renders > arguments[0]", renders)


def lane_box(driver, lane: str) -> dict:
    """The lane's drawing area in the page's pixels: x from the lane-name column to the right margin."""
    return driver.execute_script(
        "const r = document.getElementById('detail').getBoundingClientRect(), l = beatwatch.lane(arguments[0]);"
        "return {left: r.left, top: r.top + l.top, width: r.width, height: l.height};", lane)


def rgb(colour: str | tuple[float, float, float]) -> np.ndarray:
    if isinstance(colour, str):
        return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return np.round(np.array(colour) * 255)


def near(pixels: np.ndarray, colour: np.ndarray, tolerance: float) -> np.ndarray:
    return np.abs(pixels.astype(int) - colour).max(axis=-1) <= tolerance


def test_headless_chromium_draws_every_lane_offline(browser, song, song_page):
    doc, _ = song
    open_page(browser, song_page)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith(("file:", "data:", "blob:")) for name in resources), resources
    wait_for(browser, "return document.getElementById('player').readyState >= 1")
    shot = (mpimg.imread(io.BytesIO(browser.get_screenshot_as_png()))[..., :3] * 255).round().astype(int)

    def region(lane: str) -> tuple[np.ndarray, dict]:
        box = lane_box(browser, lane)
        top, left = round(box["top"]) + 2, round(box["left"]) + LEFT + 2
        return shot[top:round(box["top"] + box["height"]) - 2, left:round(box["left"] + box["width"]) - RIGHT - 2], box

    duration = doc["file"]["duration"]
    sections, box = region("sections")
    colours = dict(zip("ABCDE", SECTION_COLOURS))
    for section in doc["timeline"]["sections"]:
        x = round((section["start"] + 0.1 * (section["end"] - section["start"])) / duration * sections.shape[1])
        assert near(sections[1, x], rgb(colours[section["letter"]]), 3), section
    keys, _ = region("keys")
    assert near(keys[1], rgb(harmony_colour("A", True)), 3).mean() > 0.95
    chords, _ = region("chords")
    assert len({tuple(p) for p in chords[1]}) >= 4 and (chords[1] < 235).any(axis=-1).mean() > 0.8
    for lane, colour, share in (("bars", "#d1495b", 0.01), ("beats", "#d1495b", 0.01), ("tempo", "#2e7d32", 0.005),
                                ("loudness", "#6a4c93", 0.005)):
        pixels, _ = region(lane)
        assert near(pixels, rgb(colour), 60).mean() > share, lane
    wave, _ = region("waveform")
    blended = 0.8 * rgb("#4a6fa5") + 0.2 * 255
    assert near(wave, blended, 30).mean() > 0.05


def test_zoom_then_click_bar_9_plays_from_its_start_and_the_playhead_follows(browser, song, song_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    doc, _ = song
    bar9 = doc["timeline"]["bars"][8]
    assert bar9["bar"] == 9
    open_page(browser, song_page)
    wait_for(browser, "return document.getElementById('player').readyState >= 1")
    detail = browser.find_element(By.ID, "detail")
    box = lane_box(browser, "bars")
    size = detail.size
    y_offset = round(box["height"] / 2 + box["top"] - detail.rect["y"] - size["height"] / 2)

    def offset_of(t: float) -> int:
        return round(browser.execute_script("return beatwatch.x(arguments[0])", t) - size["width"] / 2)

    inside = bar9["time"] + 0.3 * bar9["duration"]
    span = browser.execute_script("const v = beatwatch.view; return v.end - v.start")
    for _ in range(3):
        ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(detail, offset_of(inside), y_offset),
                                                 0, -300).perform()
        wait_for(browser, "return beatwatch.settled")
    view = browser.execute_script("return beatwatch.view")
    assert view["end"] - view["start"] < span / 4, "three wheel steps zoom in"
    assert view["start"] < bar9["time"] < view["end"], "the zoom keeps the bar under the pointer"
    browser.execute_script("const a = document.getElementById('player'); window.seekedTo = null;"
                           "a.addEventListener('seeked', () => { if (window.seekedTo === null) "
                           "window.seekedTo = a.currentTime; });")
    ActionChains(browser).move_to_element_with_offset(detail, offset_of(inside), y_offset).click().perform()
    seeked = wait_for(browser, "return window.seekedTo")
    assert abs(seeked - bar9["time"]) <= 0.05
    assert browser.find_element(By.ID, "position").text.startswith("bar 9")
    wait_for(browser, "return !document.getElementById('player').paused")
    heads = []
    for _ in range(2):
        time.sleep(0.6)
        heads.append(browser.execute_script(
            "const a = document.getElementById('player'), line = document.getElementById('playhead');"
            "return [a.currentTime, +line.getAttribute('x1'), beatwatch.x(a.currentTime)]"))
    (t0, x0, _), (t1, x1, expected) = heads
    assert t1 > t0 >= bar9["time"] and x1 > x0, "the playhead moves along the lanes as the audio plays"
    assert abs(x1 - expected) < 20
    browser.execute_script("document.getElementById('player').pause()")


def test_click_a_section_plays_from_its_first_bar(browser, song, song_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    doc, _ = song
    chorus = doc["timeline"]["sections"][2]
    assert chorus["letter"] == "C"
    open_page(browser, song_page)
    wait_for(browser, "return document.getElementById('player').readyState >= 1")
    detail = browser.find_element(By.ID, "detail")
    box, size = lane_box(browser, "sections"), detail.size
    x = browser.execute_script("return beatwatch.x(arguments[0])", (chorus["start"] + chorus["end"]) / 2)
    browser.execute_script("const a = document.getElementById('player'); window.seekedTo = null;"
                           "a.addEventListener('seeked', () => { if (window.seekedTo === null) "
                           "window.seekedTo = a.currentTime; });")
    ActionChains(browser).move_to_element_with_offset(
        detail, round(x - size["width"] / 2),
        round(box["top"] + box["height"] / 2 - detail.rect["y"] - size["height"] / 2)).click().perform()
    assert abs(wait_for(browser, "return window.seekedTo") - chorus["start"]) <= 0.05
    browser.execute_script("document.getElementById('player').pause()")


def test_beat_clicks_follow_the_beats_while_playing_and_stop_when_toggled_off(browser, song, song_page):
    from selenium.webdriver.common.by import By

    doc, _ = song
    open_page(browser, song_page)
    wait_for(browser, "return document.getElementById('player').readyState >= 1")
    browser.find_element(By.ID, "clicks").click()
    browser.execute_script("beatwatch.seek(19.9)")
    wait_for(browser, "return document.getElementById('player').currentTime >= 22.2", timeout=15)
    browser.execute_script("document.getElementById('player').pause()")
    end, clicks = browser.execute_script(
        "return [document.getElementById('player').currentTime, Object.assign({}, beatwatch.clicks)]")
    beats = [b for b in doc["timeline"]["beats"] if 19.9 <= b["time"]]
    surely = [b for b in beats if b["time"] <= end - 0.05]
    maybe = [b for b in beats if b["time"] <= end + 0.2]
    for kind, is_down in (("downbeats", True), ("beats", False)):
        low = sum((b["position"] == 1) == is_down for b in surely)
        high = sum((b["position"] == 1) == is_down for b in maybe)
        assert low <= clicks[kind] <= high, (kind, clicks, low, high)
    assert clicks["downbeats"] >= 2 and clicks["beats"] >= 3 * (clicks["downbeats"] - 1)
    browser.find_element(By.ID, "clicks").click()
    browser.execute_script("document.getElementById('player').play()")
    time.sleep(1.2)
    browser.execute_script("document.getElementById('player').pause()")
    assert browser.execute_script("return Object.assign({}, beatwatch.clicks)") == clicks


LABELS_JS = """
const svg = document.getElementById('detail').getBoundingClientRect();
return Array.from(document.querySelectorAll('#detail text')).map(t => {
  const r = t.getBoundingClientRect();
  return {text: t.textContent, lane: t.dataset.lane || '', bar: t.dataset.bar ? +t.dataset.bar : null,
          left: r.left - svg.left, right: r.right - svg.left, top: r.top, bottom: r.bottom};
});
"""


def overlaps(labels: list[dict]) -> list[tuple[str, str]]:
    return [(a["text"], b["text"]) for i, a in enumerate(labels) for b in labels[i + 1:]
            if a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]]


def test_a_2000_bar_mix_keeps_its_labels_apart_at_every_zoom(browser, mix_page):
    doc, page = mix_page
    open_page(browser, page)
    width = browser.execute_script("return document.getElementById('detail').getBoundingClientRect().width")
    bars = {b["bar"]: b for b in doc["timeline"]["bars"]}
    duration = doc["file"]["duration"]
    for start, end in ((0.0, duration), (1000.0, 1600.0), (1000.0, 1060.0), (1000.0, 1008.0),
                       (duration - 30.0, duration)):
        set_view(browser, start, end)
        labels = browser.execute_script(LABELS_JS)
        assert not overlaps(labels), (start, end, overlaps(labels)[:5])
        assert all(-0.5 <= label["left"] and label["right"] <= width + 0.5 for label in labels)
        numbered = sorted(label["bar"] for label in labels if label["bar"] is not None)
        in_view = [n for n, b in bars.items() if start <= b["time"] < end]
        assert min(10, len(in_view)) <= len(numbered) <= 60, (start, end, numbered)
        assert set(numbered) <= set(in_view)
        steps = set(np.diff(numbered).tolist())
        assert len(steps) == 1 and steps.pop() in (1, 2, 4, 8, 16, 32, 64, 128, 256), "every 2^k-th bar"
        assert any(label["lane"] == "chords" for label in labels)
        if end - start <= 10:
            assert numbered == [n for n in in_view if bars[n]["time"] <= end - 1.0], "close up, every bar is numbered"


def test_the_pointer_names_bar_chord_and_key_where_labels_were_thinned(browser, mix_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    doc, page = mix_page
    open_page(browser, page)
    bar = next(b for b in doc["timeline"]["bars"] if b["chord"] != "N" and b["time"] > 1500)
    key = next(k for k in doc["timeline"]["keys"] if k["start"] <= bar["time"] < k["end"])
    detail = browser.find_element(By.ID, "detail")
    size, chords = detail.size, lane_box(browser, "chords")
    x = browser.execute_script("return beatwatch.x(arguments[0])", bar["time"] + bar["duration"] / 2)
    ActionChains(browser).move_to_element_with_offset(
        detail, round(x - size["width"] / 2),
        round(chords["top"] + chords["height"] / 2 - detail.rect["y"] - size["height"] / 2)).perform()
    said = browser.find_element(By.ID, "hover").text
    assert f"bar {bar['bar']} " in said or f"bar {bar['bar'] + 1} " in said or f"bar {bar['bar'] - 1} " in said
    assert key["key"] in said
    set_view(browser, bar["time"] - 2.0, bar["time"] + 6.0)
    x = browser.execute_script("return beatwatch.x(arguments[0])", bar["time"] + bar["duration"] / 2)
    ActionChains(browser).move_to_element_with_offset(
        detail, round(x - size["width"] / 2),
        round(chords["top"] + chords["height"] / 2 - detail.rect["y"] - size["height"] / 2)).perform()
    said = browser.find_element(By.ID, "hover").text
    assert said.startswith(f"under the pointer: bar {bar['bar']} ·") and f"· {chord_name(bar['chord'])} ·" in said


def test_a_track_without_events_says_so_in_each_lane(browser, tmp_path):
    doc = synthetic_doc(1, ["N"], path=str(tmp_path / "silence.wav"))
    doc["timeline"] = {"beats": [], "bars": [], "chords": [], "tempo": [], "keys": [], "sections": [],
                       "energy": {"hop_s": 0.5, "values": []}}
    open_page(browser, render_plot(doc, tmp_path / "silence.html"))
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert all("silence.wav" in message for message in errors), errors
    messages = {label["lane"] or label["text"] for label in browser.execute_script(LABELS_JS)}
    assert {"no sections", "no bars", "no beats", "no chords", "no key", "no tempo", "no loudness per bar",
            "no energy curve"} <= messages


@pytest.mark.slow
def test_an_analysed_track_opens_without_errors_and_numbers_every_bar(browser, analyzer, media, tmp_path):
    signal, _ = click_track(120.0, seconds=12.0)
    wav = write_wav(media / "page_clicks.wav", signal)
    doc = analyzer.analyze(wav)
    bars = [b["bar"] for b in doc["timeline"]["bars"]]
    assert len(bars) >= 4
    open_page(browser, render_plot(doc, tmp_path / "clicks.html", audio=decode(probe(wav))))
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    labels = browser.execute_script(LABELS_JS)
    assert not overlaps(labels)
    assert sorted(label["bar"] for label in labels if label["bar"] is not None) == sorted(bars)
    keys = {label["text"] for label in labels if label["lane"] == "keys"}
    assert keys <= {k["key"] for k in doc["timeline"]["keys"]} and bool(keys) == bool(doc["timeline"]["keys"])


def test_zoom_buttons_and_keys_change_the_view_and_space_plays(browser, song_page):
    from selenium.webdriver.common.by import By

    open_page(browser, song_page)
    wait_for(browser, "return document.getElementById('player').readyState >= 1")
    full = browser.execute_script("return beatwatch.view")
    browser.find_element(By.ID, "zoom-in").click()
    wait_for(browser, "return beatwatch.settled")
    half = browser.execute_script("return beatwatch.view")
    assert half["end"] - half["start"] == pytest.approx((full["end"] - full["start"]) / 2)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("+")
    wait_for(browser, "const v = beatwatch.view; return beatwatch.settled && v.end - v.start < arguments[0]",
             (half["end"] - half["start"]) * 0.6)
    body.send_keys(" ")
    wait_for(browser, "return !document.getElementById('player').paused")
    body.send_keys(" ")
    wait_for(browser, "return document.getElementById('player').paused")
    body.send_keys("0")
    wait_for(browser, "const v = beatwatch.view; return beatwatch.settled && v.end - v.start == arguments[0]",
             full["end"] - full["start"])
