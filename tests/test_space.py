"""The Gradio demo: refuses to start without a model, API endpoints through gradio_client, load,
no files left behind, and a real headless Chromium that uploads a photo and sees the result."""

import os
import shutil
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from colorgan_hub import demo as demo_module  # noqa: E402

from .conftest import make_photo  # noqa: E402

SCREENSHOT = Path(tempfile.gettempdir()) / "colorgan-demo-screenshot.png"

pytestmark = pytest.mark.slow  # served demos and a browser


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_model_dir):
    cwd_before = set(os.listdir("."))
    demo = demo_module.build_demo({"tiny": tiny_model_dir})
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, max_file_size=demo_module.MAX_FILE_SIZE, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    assert set(os.listdir(".")) == cwd_before, "the demo left files in the working directory"


@pytest.fixture(scope="module")
def client(app):
    return Client(app, verbose=False)


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("space_photos")
    make_photo(120, 80, seed=1).save(folder / "colour.png")
    make_photo(120, 80, seed=2).convert("L").save(folder / "gray.png")
    return folder


def test_refuses_to_start_without_a_model():
    with pytest.raises(RuntimeError, match="no trained model"):
        demo_module.build_demo({})


def test_colorize_endpoint(client, photo_files):
    (before, after), download, label, note, gallery = client.predict(handle_file(str(photo_files / "gray.png")), 128, "tiny", 0.38, api_name="/colorize")
    from PIL import Image

    assert Image.open(after).size == (120, 80) and Image.open(before).size == (120, 80)
    assert gallery == []  # one colorization: no variations to pick from
    assert Image.open(download).format == "PNG"
    assert {c["label"] for c in label["confidences"]} == {"photographed in colour", "colorized by machine"}
    assert sum(c["confidence"] for c in label["confidences"]) == pytest.approx(1.0)
    assert "120x80 colorized at working size 128 and 192 (multi-scale) in" in note  # multi-scale by default


def test_score_endpoint_and_grayscale_answer(client, photo_files):
    label = client.predict(handle_file(str(photo_files / "colour.png")), "tiny", api_name="/score")
    assert 0 <= label["confidences"][0]["confidence"] <= 1
    label = client.predict(handle_file(str(photo_files / "gray.png")), "tiny", api_name="/score")
    assert label["label"] == "black-and-white (grayscale) photograph: no colour to judge (colorize it first)"


@pytest.fixture(scope="module")
def bad_uploads(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_uploads")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("these are not pixels")
    good = folder / "good.jpg"
    make_photo(120, 80).save(good, quality=90)
    (folder / "cut.jpg").write_bytes(good.read_bytes()[:400])
    return folder


@pytest.mark.parametrize(
    "name, reason",
    [
        ("empty.png", "empty.png: empty file"),
        ("notes.png", "notes.png: not an image file"),
        ("cut.jpg", "cut.jpg: truncated or corrupt image"),
    ],
)
def test_bad_uploads_get_our_one_line_message(client, bad_uploads, name, reason):
    for args, api in (((128, "tiny", 0.38), "/colorize"), (("tiny",), "/score")):
        with pytest.raises(AppError) as caught:
            client.predict(handle_file(str(bad_uploads / name)), *args, api_name=api)
        assert reason in str(caught.value) and "upstream" not in str(caught.value)


def test_colorize_endpoint_upscales_and_offers_variations(client, photo_files):
    from PIL import Image

    (before, after), download, label, note, gallery = client.predict(
        handle_file(str(photo_files / "gray.png")), 128, "tiny", 0.38, 0.5, "2x", 3, 7, api_name="/colorize"
    )
    assert Image.open(after).size == (240, 160) and Image.open(before).size == (240, 160)
    assert len(gallery) == 3 and [item["caption"] for item in gallery] == ["variation 1", "variation 2", "variation 3"]
    images = [np.asarray(Image.open(item["image"]), np.int16) for item in gallery]
    assert np.abs(images[0] - images[1]).mean() > 0.5  # different colorizations
    assert np.array_equal(np.asarray(Image.open(after), np.int16), images[0])
    assert "240x160 (upscaled x2) 3 variations" in note
    (before, after), _, _, note, _ = client.predict(handle_file(str(photo_files / "gray.png")), 128, "tiny", 0.38, 0.5, "off", 1, 0, True, api_name="/colorize")
    assert Image.open(after).size == (120, 80) and "at working size 128 and 192 (multi-scale)" in note


def test_oversized_upload_names_the_limit(client, tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "MAX_PIXELS", 5000)  # a 120x80 photo is over it
    path = tmp_path / "big.png"
    make_photo(120, 80).save(path)
    with pytest.raises(AppError, match="big.png: 120x80 is 0.0 megapixels, over the limit"):
        client.predict(handle_file(str(path)), 128, "tiny", 0.38, api_name="/colorize")


def test_eight_requests_at_once(client, photo_files):
    path = str(photo_files / "gray.png")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: client.predict(handle_file(path), 128, "tiny", 0.38, api_name="/colorize"), range(8)))
    assert len(results) == 8 and all("colorized" in r[3] for r in results)


def test_examples_are_desaturated_skimage_photos():
    from PIL import Image

    paths = demo_module.example_files()
    assert [Path(p).stem for p in paths] == list(demo_module.EXAMPLES)
    assert all(Image.open(p).mode == "L" and not Path(p).is_relative_to(Path.cwd()) for p in paths)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_browser_upload_shows_slider_and_label(app, photo_files):
    browser = _browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        browser.get(app)
        wait = WebDriverWait(browser, 60)
        upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
        upload.send_keys(str(photo_files / "gray.png"))
        time.sleep(1)  # let the upload land in the component
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#colorize-button"))).click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#before-after img")) >= 2)
        label = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#result-label")))
        wait.until(lambda b: "photographed in colour" in label.text)
        assert all(img.is_displayed() for img in browser.find_elements(By.CSS_SELECTOR, "#before-after img"))
        browser.save_screenshot(str(SCREENSHOT))
    except Exception:
        browser.save_screenshot(str(SCREENSHOT.with_name("colorgan-demo-failure.png")))
        raise
    finally:
        browser.quit()
    assert SCREENSHOT.stat().st_size > 10_000
    print(f"screenshot: {SCREENSHOT}")


def test_video_endpoint_colorizes_a_clip_and_names_a_bad_one(client, tmp_path):
    import av

    from .test_video import SHOT, H, W, two_shots, write_clip

    clip = tmp_path / "film.mkv"
    write_clip(clip, two_shots())
    video, note = client.predict(handle_file(str(clip)), 128, "tiny", 0.5, 0.8, api_name="/colorize_video")
    path = video["video"] if isinstance(video, dict) else video
    with av.open(path) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", W, H)
        assert len(list(container.decode(video=0))) == 2 * SHOT and container.streams.audio
    assert note.startswith(f"{2 * SHOT} frames {W}x{H} at 25 fps, 1 audio stream(s) copied, 1 scene cut(s);")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(AppError, match="broken.mp4: not a video FFmpeg can read"):
        client.predict(handle_file(str(tmp_path / "broken.mp4")), 128, "tiny", 0.5, 0.8, api_name="/colorize_video")


def test_score_endpoint_answers_monochrome_for_a_toned_print(client, tmp_path):
    import numpy as np
    from PIL import Image

    gray = np.asarray(make_photo(120, 80, seed=3).convert("L"), np.float32)[..., None] / 255
    sepia = (gray * (0.7 + 0.3 * np.array([1.0, 0.75, 0.45])) * 255).round().astype(np.uint8)
    Image.fromarray(sepia).save(tmp_path / "sepia.png")
    label = client.predict(handle_file(str(tmp_path / "sepia.png")), "tiny", api_name="/score")
    assert label["label"] == "monochrome (toned) photograph: no colour to judge"


def test_request_folders_are_pruned_and_removed_with_the_app(monkeypatch):
    folders = demo_module.RequestFolders(max_age=60)
    old, recent = folders.new(), folders.new()
    (old / "colorized.png").write_bytes(b"x")
    os.utime(old, (time.time() - 120, time.time() - 120))
    folders.new()
    assert not old.exists() and recent.exists()  # only what Gradio copied long ago is gone
    root = Path(folders.root.name)
    folders.root.cleanup()  # what happens when the app's process exits
    assert not root.exists()


def test_a_model_that_cannot_be_loaded_is_one_line(tmp_path):
    with pytest.raises(RuntimeError, match=r"cannot load model .*: the folder has no config.json"):
        demo_module.build_demo({"broken": str(tmp_path)})


def test_cold_start_under_concurrent_load(tmp_path, bad_uploads):
    """A freshly started demo on the bundled model (a Space after sleeping), hit by 8 clients at once
    before any request has warmed it up: every good photo comes back, the corrupt ones get their
    one-line reason, and the server still answers afterwards."""
    import subprocess
    import sys

    for i in range(6):
        make_photo(160 + 40 * i, 120 + 24 * i, seed=20 + i).convert("L").save(tmp_path / f"photo{i}.png")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "colorgan_hub.cli", "demo", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.time() + 120
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, f"the demo exited: {server.stdout.read()}"
            assert time.time() < deadline, "the demo did not start within 120 s"
            time.sleep(0.2)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        uploads = [tmp_path / f"photo{i}.png" for i in range(6)] + [bad_uploads / "cut.jpg", bad_uploads / "notes.png"]

        def request(path):
            try:
                return client.predict(handle_file(str(path)), 128, "bundled default", api_name="/colorize")
            except AppError as err:
                return err

        with ThreadPoolExecutor(len(uploads)) as pool:
            results = list(pool.map(request, uploads))
        for path, result in zip(uploads[:6], results[:6]):
            assert not isinstance(result, Exception), f"{path.name}: {result}"
            assert "colorized at working size 128" in result[3]
        assert "cut.jpg: truncated or corrupt image" in str(results[6])
        assert "notes.png: not an image file" in str(results[7])
        assert server.poll() is None, "the demo died under load"
        again = client.predict(handle_file(str(uploads[0])), 128, "bundled default", api_name="/colorize")
        assert "colorized" in again[3]
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def bundled_app():
    demo = demo_module.build_demo({"bundled default": demo_module.DEFAULT_MODEL})
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, max_file_size=demo_module.MAX_FILE_SIZE, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def _browser():
    chromium, driver_path = _chromium(), shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium and chromium-driver (see .ci/run)")
        pytest.skip("headless Chromium / chromedriver not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1157",
        f"--user-data-dir={tempfile.mkdtemp(prefix='colorgan-chromium-')}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)


def test_browser_hints_recolour_their_regions_only(bundled_app, tmp_path):
    """In Chromium, on the bundled model: a photo colorized, then two hints placed by clicking the
    canvas and coloured with the picker; the result changes where they are and not elsewhere."""
    import io
    import urllib.request

    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from colorgan_hub import metrics

    skdata = pytest.importorskip("skimage.data")
    Image.fromarray(skdata.coffee()).convert("L").save(tmp_path / "coffee.png")  # a cup on a saucer on a table, 600x400
    hints = [(300, 180, "#2040d0"), (480, 300, "#20a040")]  # inside the cup, on the saucer
    browser = _browser()
    wait = WebDriverWait(browser, 120)

    def result() -> np.ndarray:
        src = browser.find_elements(By.CSS_SELECTOR, "#before-after img")[-1].get_attribute("src")
        return np.asarray(Image.open(io.BytesIO(urllib.request.urlopen(src).read())).convert("RGB"))

    try:
        browser.get(bundled_app)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0].send_keys(str(tmp_path / "coffee.png"))
        time.sleep(1)  # let the upload land in the component
        browser.find_element(By.CSS_SELECTOR, "#colorize-button").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#before-after img")) >= 2)
        automatic = result()
        next(el for el in browser.find_elements(By.CSS_SELECTOR, "#hints-panel button") if "Hints" in el.text).click()
        for n, (x, y, colour) in enumerate(hints, 1):
            canvas = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#hint-canvas img"))
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
            natural = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", canvas)
            rect = canvas.rect  # the picture is scaled down and centred in the element
            scale = min(rect["width"] / natural[0], rect["height"] / natural[1])
            ActionChains(browser).move_to_element_with_offset(canvas, (x - natural[0] / 2) * scale, (y - natural[1] / 2) * scale).click().perform()
            wait.until(lambda b, n=n: f"with {n} hint(s)" in b.find_element(By.CSS_SELECTOR, "#timing").text)
            browser.find_element(By.CSS_SELECTOR, "#hint-colour button.dialog-button").click()
            field = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#hint-colour input[type=text]"))
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(colour, Keys.ENTER)
            browser.find_element(By.CSS_SELECTOR, "#hint-list").click()  # away from the picker: it closes
            wait.until(lambda b, colour=colour: colour in b.find_element(By.CSS_SELECTOR, "#hint-list").text.lower())
        time.sleep(3)  # the last recolouring's result
        wait.until(lambda b: f"with {len(hints)} hint(s)" in b.find_element(By.CSS_SELECTOR, "#timing").text)
        hinted = result()
        browser.save_screenshot(str(SCREENSHOT.with_name("colorgan-demo-hints.png")))
    except Exception:
        browser.save_screenshot(str(SCREENSHOT.with_name("colorgan-demo-hints-failure.png")))
        raise
    finally:
        browser.quit()
    change = np.linalg.norm(metrics.image_ab(hinted) - metrics.image_ab(automatic), axis=0)  # ab units per pixel
    rows, cols = np.mgrid[: change.shape[0], : change.shape[1]]
    near = [change[(rows - y) ** 2 + (cols - x) ** 2 < 15**2].mean() for x, y, _ in hints]
    far = np.median(change[np.min([np.hypot(rows - y, cols - x) for x, y, _ in hints], axis=0) > 150])
    assert min(near) > 20 and far < min(near) / 3, (near, far)  # measured: near 79 and 55, far 10
