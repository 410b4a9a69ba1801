"""Resolution increase: the bundled upscalers against bicubic and Lanczos, and their speed.

    python benchmarks/bench_upscale.py [--data ../shared/data/val_fullres] [--historic ../shared/data/historic]
                                       [--sheet sheet.png] [--json out.json]

Quality: every photo of `--data` to gray, shrunk by 2 and by 4 (area), clean and JPEG quality 75,
brought back by bicubic, Lanczos and the network; mean PSNR of L (peak 100, `scale` pixels shaved
at each edge) against the gray original. Targets: at least 1.0 dB over bicubic at x2 and 0.5 dB at x4.
Speed (median of 3 after a warm-up): a 1-megapixel photo to a x2 colorized result, end to end
(read, upscale, colorize, recombine, write JPEG; target at most 2 s on 2 CPU cores), the same for
x4 from a quarter of a megapixel, and a 640x360 frame's x2 upscaling alone (what video would need).
Sheet: `historic/` photos at x2, a crop of each: bicubic, the network, the network colorized.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from bench_inference import timed  # median seconds after a warm-up
from PIL import Image, ImageDraw

from colorgan_hub import DEFAULT_MODEL
from colorgan_hub.color import gray_to_l_numpy, rgb_to_l_numpy
from colorgan_hub.image_io import list_images
from colorgan_hub.model import load_model
from colorgan_hub.upscale import SCALES, load_upscaler, upscale_l
from training.data import gray_photo
from training.train_upscaler import evaluate

HERE = Path(__file__).parent
TARGETS = {2: 1.0, 4: 0.5}


def quality(paths: list[Path]) -> dict:
    """PSNR of L per scale and input (clean, JPEG 75): bicubic, Lanczos, the network."""
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    rows = {}
    for scale in SCALES:
        for jpeg in (None, 75):
            scores = evaluate(load_upscaler(scale), photos, scale, jpeg_quality=jpeg)
            rows[f"x{scale} {'jpeg75' if jpeg else 'clean'}"] = {**scores, "gain": scores["network"] - scores["bicubic"]}
    return rows


def speed(model, photo: np.ndarray) -> dict:
    """End-to-end seconds (file to file) of a 1 MP photo at x2 and a 0.25 MP one at x4, and the
    upscaler alone on a 640x360 frame."""
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for scale, pixels in ((2, 1_000_000), (4, 250_000)):
            side = pixels**0.5
            h, w = photo.shape[:2]
            factor = side / (h * w) ** 0.5
            source = Path(folder, f"input-{scale}.jpg")
            Image.fromarray(cv2.resize(photo, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)).convert("L").save(source, quality=90)

            def run():
                model.colorize(source, upscale=scale).save(Path(folder, f"out-{scale}.jpg"), quality=95)

            size = Image.open(source).size
            out[f"x{scale}"] = {"input": f"{size[0]}x{size[1]}", "seconds": timed(run, 3)}
    frame = rgb_to_l_numpy(cv2.resize(photo, (640, 360), interpolation=cv2.INTER_AREA))
    seconds = timed(lambda: upscale_l(load_upscaler(2), frame), 3)
    out["frame 640x360 x2, upscaler alone"] = {"seconds": seconds, "frames_per_second": 1.0 / seconds}
    return out


def sheet(model, paths: list[Path], path: Path, crop: int = 150, zoom: int = 2) -> None:
    """Per historic photo, the centre crop of its x2 result, shown `zoom` times larger (nearest
    neighbour, so the pixels show): bicubic, the network, the network colorized."""
    rows = []
    for p in paths:
        gray = gray_photo(np.asarray(Image.open(p).convert("RGB")))
        l = gray_to_l_numpy(gray)
        bicubic = np.clip(cv2.resize(l, (l.shape[1] * 2, l.shape[0] * 2), interpolation=cv2.INTER_CUBIC), 0, 100)
        network = upscale_l(load_upscaler(2), l)
        colour = np.asarray(model.colorize(Image.fromarray(gray), upscale=2))
        y, x = network.shape[0] // 2 - crop // 2, network.shape[1] // 2 - crop // 2
        as_gray = lambda arr: Image.fromarray(np.round(arr[y : y + crop, x : x + crop] * 2.55).astype(np.uint8)).convert("RGB")  # L for display
        row = [as_gray(bicubic), as_gray(network), Image.fromarray(colour[y : y + crop, x : x + crop])]
        rows.append([img.resize((crop * zoom, crop * zoom), Image.Resampling.NEAREST) for img in row])
    side = crop * zoom
    canvas = Image.new("RGB", (3 * side, len(rows) * side + 20), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(["bicubic x2", "upscaler x2", "upscaler x2, colorized"]):
        draw.text((c * side + 4, 4), label, fill="black")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            canvas.paste(img, (c * side, 20 + r * side))
    canvas.save(path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "val_fullres"), help="full-resolution photos")
    parser.add_argument("--historic", default=str(HERE.parent.parent / "shared" / "data" / "historic"), help="photos for the sheet")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the colorizer for the end-to-end timing and the sheet")
    parser.add_argument("--sheet", type=Path, help="write the historic sheet here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    paths = list_images(args.data, recursive=False)[0]
    rows = quality(paths)
    print(f"PSNR of L (dB) on {len(paths)} photos of {args.data}, shrunk by area")
    print("| input | bicubic | Lanczos | upscaler | gain over bicubic | target |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        target = TARGETS[int(name[1])]
        print(
            f"| {name} | {row['bicubic']:.2f} | {row['lanczos']:.2f} | {row['network']:.2f} | {row['gain']:+.2f} | "
            f"{'>= ' + format(target, '.1f') if 'clean' in name else '-'} |"
        )
    model = load_model(args.model)
    timing = speed(model, np.asarray(Image.open(paths[0]).convert("RGB")))
    for name, row in timing.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    if args.sheet:
        sheet(model, list_images(args.historic, recursive=False)[0][:3], args.sheet)
        print(f"sheet: {args.sheet}")
    result = {"photos": len(paths), "quality": rows, "speed": timing}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
