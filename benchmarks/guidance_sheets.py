"""Sheets of what hints and a reference photo do, for looking at.

    python benchmarks/guidance_sheets.py [--model ID_OR_PATH] [--out docs/]

hints-historic.jpg: each real black-and-white photograph of ../shared/data/historic colorized
automatically, then with three hints (dots on the picture; positions and colours chosen by looking
at the photos: a coat, a sky, a wall...), then the hinted result. reference-palettes.jpg: photos of
../shared/data/val colorized automatically and with three other val photos as the reference (each
reference shown above its column).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from colorgan_hub import DEFAULT_MODEL, ColorGAN
from colorgan_hub.image_io import list_images, spread_evenly

HERE = Path(__file__).parent
DATA = HERE.parent.parent / "shared" / "data"

# (x, y) in each photo's own pixels, and the colour the region is given.
HINTS = {
    "Abandoned_Boy_Holding_a_Stuffed_Toy_Animal._London_1945.jpg": [(200, 650, "#2a5db0"), (370, 440, "#a0784a"), (720, 800, "#7d7873")],
    "Acrobats_Balance_On_Top_Of_The_Empire_State_Building__1934.jpg": [(150, 80, "#7a9cc6"), (200, 1020, "#6b5e52"), (560, 620, "#2d3a5a")],
    "Detroit_circa_1915.jpg": [(500, 30, "#8fb0d8"), (120, 250, "#9a5b43"), (500, 480, "#8a8a80")],
    "Einstein__Rejection__and_Crafting_a_Future.jpeg": [(400, 860, "#6b5a4a"), (360, 480, "#d9a98a"), (60, 300, "#3d4a5a")],
    "Helen_Keller_meeting_Charlie_Chaplin_in_1919.jpg": [(610, 300, "#3f5d8a"), (200, 400, "#8b7d68"), (100, 60, "#4a6b3a")],
    "Louis_Armstrong_practicing_in_his_dressing_room__ca_1946.jpg": [(800, 600, "#2f3a4a"), (200, 515, "#c9a13b"), (300, 150, "#7a8a6e")],
}


def fit(img: Image.Image, side: int) -> Image.Image:
    img = img.convert("RGB")
    scale = side / max(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)


def with_dots(img: Image.Image, hints, scale: float) -> Image.Image:
    img = img.copy()
    pen = ImageDraw.Draw(img)
    for x, y, colour in hints:
        x, y, r = x * scale, y * scale, 6
        pen.ellipse((x - r - 2, y - r - 2, x + r + 2, y + r + 2), fill="black")
        pen.ellipse((x - r, y - r, x + r, y + r), fill="white")
        pen.ellipse((x - r + 2, y - r + 2, x + r - 2, y + r - 2), fill=colour)
    return img


def hints_sheet(model, out: Path, side: int = 300) -> None:
    rows = []
    for name, hints in HINTS.items():
        path = DATA / "historic" / name
        gray = Image.open(path)
        automatic, hinted = model.colorize(path), model.colorize(path, hints=hints)
        scale = side / max(gray.size)
        rows.append([fit(automatic, side), with_dots(fit(gray, side), hints, scale), fit(hinted, side)])
    width, heights = 3 * side, [max(im.height for im in row) for row in rows]
    sheet = Image.new("RGB", (width, 24 + sum(heights)), "white")
    pen = ImageDraw.Draw(sheet)
    for c, label in enumerate(["automatic", "three hints", "with the hints"]):
        pen.text((c * side + 6, 6), label, fill="black")
    y = 24
    for row, h in zip(rows, heights):
        for c, im in enumerate(row):
            sheet.paste(im, (c * side + (side - im.width) // 2, y))
        y += h
    sheet.save(out, quality=88)


def reference_sheet(model, out: Path, side: int = 220) -> None:
    photos = spread_evenly(list_images(DATA / "val")[0], 60)
    targets, references = [photos[5], photos[21], photos[40]], [photos[12], photos[33], photos[50]]
    sheet = Image.new("RGB", ((2 + len(references)) * side, 24 + (1 + len(targets)) * side), "white")
    pen = ImageDraw.Draw(sheet)
    for c, label in enumerate(["photo", "automatic", *[f"reference {n}" for n in range(1, len(references) + 1)]]):
        pen.text((c * side + 6, 6), label, fill="black")
    for c, ref in enumerate(references):
        sheet.paste(fit(Image.open(ref), side), ((2 + c) * side, 24))
    for r, target in enumerate(targets):
        y = 24 + (1 + r) * side
        sheet.paste(fit(Image.open(target), side), (0, y))
        sheet.paste(fit(model.colorize(target), side), (side, y))
        for c, ref in enumerate(references):
            sheet.paste(fit(model.colorize(target, reference=ref), side), ((2 + c) * side, y))
    sheet.save(out, quality=88)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model with guidance inputs")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs", help="folder for the sheets")
    args = parser.parse_args()
    model = ColorGAN.from_pretrained(args.model)
    hints_sheet(model, args.out / "hints-historic.jpg")
    reference_sheet(model, args.out / "reference-palettes.jpg")
    print(f"wrote {args.out / 'hints-historic.jpg'} and {args.out / 'reference-palettes.jpg'}")


if __name__ == "__main__":
    main()
