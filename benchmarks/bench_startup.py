"""Start-up: what a newcomer waits for before the first result, measured on fresh processes.

    python benchmarks/bench_startup.py [--repeats 5] [--json OUT]

Prints the median over `--repeats` runs of: `colorgan --help`; `colorgan colorize one.jpg -o out/`
from process start to the file written, and to the process gone (a real black-and-white photo,
1000x553); the bundled model loaded by `ColorGAN.from_pretrained` in a process that has imported
the package; `colorgan demo` from process start to the page answering; and a 6-second 640x360
clip through `colorgan colorize` (frames per second of the command's own line, start-up aside,
and end to end). Each beside its target. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
PHOTO = HERE.parent.parent / "shared" / "data" / "historic" / "Detroit_circa_1915.jpg"
COLORGAN = [sys.executable, "-m", "colorgan_hub.cli"]
TARGETS = {"help_s": 1.0, "photo_written_s": 2.5, "model_load_s": 0.5, "demo_serving_s": 5.0, "video_fps": 25.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def help_seconds() -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", "from colorgan_hub.cli import run; run()", "--help"], capture_output=True, check=True)
    return time.time() - start


def photo_seconds(folder: Path) -> tuple[float, float]:
    """(seconds to the file written, seconds to the process gone), through the console script's path."""
    out = folder / "out"
    start = time.time()
    subprocess.run(
        [sys.executable, "-c", "from colorgan_hub.cli import run; run()", "colorize", str(PHOTO), "-o", str(out), "--overwrite"],
        capture_output=True,
        check=True,
    )
    gone = time.time() - start
    written = (out / PHOTO.name).stat().st_mtime - start
    return written, gone


def model_load_seconds() -> float:
    code = (
        "import time; from colorgan_hub.model import ColorGAN; from colorgan_hub import DEFAULT_MODEL; t = time.perf_counter(); "
        "ColorGAN.from_pretrained(DEFAULT_MODEL); print(time.perf_counter() - t)"
    )
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip())


def demo_seconds() -> float:
    port = free_port()
    start = time.time()
    server = subprocess.Popen([*COLORGAN, "demo", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.time() - start < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as answer:
                    if answer.status == 200:
                        return time.time() - start
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the demo did not answer within 120 s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def video(folder: Path) -> tuple[float, float]:
    """(frames/s the command reports, frames/s end to end) for a 6 s 640x360 clip."""
    import numpy as np
    from PIL import Image
    from skimage import data

    sys.path.insert(0, str(HERE))
    from bench_video import write_clip

    clip = folder / "clip.mp4"
    if not clip.exists():
        write_clip(clip, np.asarray(Image.fromarray(data.astronaut())), (640, 360), 6.0)
    start = time.time()
    done = subprocess.run([*COLORGAN, "colorize", str(clip), "-o", str(folder / "video"), "--overwrite"], capture_output=True, text=True, check=True)
    seconds = time.time() - start
    fps = float(re.search(r"([0-9.]+) frames/s", done.stderr.splitlines()[-2]).group(1))
    return fps, 150 / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each measurement (the median is reported)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        photo = [photo_seconds(folder) for _ in range(args.repeats)]
        videos = [video(folder) for _ in range(max(1, args.repeats // 2))]
        figures = {
            "help_s": statistics.median(help_seconds() for _ in range(args.repeats)),
            "photo_written_s": statistics.median(w for w, _ in photo),
            "photo_process_gone_s": statistics.median(g for _, g in photo),
            "model_load_s": statistics.median(model_load_seconds() for _ in range(args.repeats)),
            "demo_serving_s": statistics.median(demo_seconds() for _ in range(args.repeats)),
            "video_fps": statistics.median(f for f, _ in videos),
            "video_end_to_end_fps": statistics.median(e for _, e in videos),
        }
    print("| | measured | target |\n|---|---|---|")
    labels = {
        "help_s": "`colorgan --help` (s)",
        "photo_written_s": "one photo, process start to file written (s)",
        "photo_process_gone_s": "one photo, process start to exit (s)",
        "model_load_s": "bundled model loaded (s)",
        "demo_serving_s": "`colorgan demo` serving (s)",
        "video_fps": "6 s 640x360 clip, frames/s (start-up aside)",
        "video_end_to_end_fps": "the same clip, frames/s end to end",
    }
    for key, label in labels.items():
        target = TARGETS.get(key)
        print(f"| {label} | {figures[key]:.2f} | {'' if target is None else ('>= ' if key == 'video_fps' else '<= ') + f'{target:g}'} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
