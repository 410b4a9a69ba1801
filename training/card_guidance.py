"""Write a guided model's card sections from measured figures: how it takes hints and a reference
photo (the hint sweep of `benchmarks/bench_hints.py --json`), and its colour with the default
multi-scale decoding (`colorgan evaluate --json`, at one scale and multi-scale).

    python training/card_guidance.py --model colorgan_hub/default_model --hints hints.json \
        --single val-single.json --multi val-multi.json [--fullres_single F --fullres_multi F] [--procedure TEXT]

The sections go between marker comments in the model's README.md (written anew on every run, so a
card is never edited by hand): after "## Training procedure" the guidance training, after
"## Evaluation" the two tables.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from training.hint_sweep import ZHANG_SIGGRAPH17

START, END = "<!-- guidance: start -->", "<!-- guidance: end -->"
FAMILIES = ("red", "orange/yellow", "green", "blue/cyan", "purple")


def sweep_table(name: str, result: dict) -> str:
    counts = list(result["psnr"])
    lines = [
        f"Hint sweep on {name} ({result['photos']} photos, Zhang et al.'s protocol: 256x256, hints from 6x6 patches of the truth):",
        "",
        "| hints | " + " | ".join(counts) + " | the truth as reference |",
        "|---" * (len(counts) + 2) + "|",
        "| PSNR (dB) | " + " | ".join(f"{result['psnr'][n]:.2f}" for n in counts) + f" | {result['reference_psnr']:.2f} |",
        "| gain over no hints | " + " | ".join(f"{result['gain'][n]:+.2f}" for n in counts) + f" | {result['reference_gain']:+.2f} |",
        "| Zhang et al. SIGGRAPH17, gain (ImageNet) | " + " | ".join(f"{ZHANG_SIGGRAPH17[int(n)] - ZHANG_SIGGRAPH17[0]:+.2f}" for n in counts) + " | |",
        "",
        f"Hints honoured: at 10 hints the result's colour lies a median {result['hint_error']:.1f} ab units from each hint's. With the "
        f"truth as the reference photo the colourfulness is {result['reference_colourfulness']:.0%} of the truth's. One hint of the "
        f"opposite hue to the truth's moves the colour a median {result['leakage']['near']:.1f} ab units within 8 px of it and "
        f"{result['leakage']['far']:.1f} beyond 128 px.",
    ]
    return "\n".join(lines)


def colour_rows(label: str, single: dict, multi: dict) -> str:
    def row(name, r):
        hues = " | ".join(f"{r.get('hue_' + f, 0):.3f}" for f in FAMILIES)
        return f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['cf']:.2f} | {r['hue_macro']:.3f} | {hues} |"

    return "\n".join(
        [
            f"{label}:",
            "",
            "| | PSNR (dB) | SSIM | colourfulness | hue hits macro | " + " | ".join(FAMILIES) + " |",
            "|---" * (5 + len(FAMILIES)) + "|",
            row("multi-scale (the default)", multi["colour"]["model"]),
            row("one scale (`multiscale=False`)", single["colour"]["model"]),
            row("gray", single["colour"]["gray"]),
            row("ground truth", single["colour"]["ground truth"]),
        ]
    )


def section(text: str, body: str, after: str) -> str:
    """`text` with `body` between the markers placed right after the heading line `after` (replacing an earlier one)."""
    text = re.sub(re.escape(START) + ".*?" + re.escape(END) + "\n*", "", text, flags=re.S)
    heading = text.index(after)
    end_of_line = text.index("\n", heading) + 1
    return text[:end_of_line] + f"\n{START}\n{body}\n{END}\n" + text[end_of_line:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the model folder whose README.md gets the sections")
    parser.add_argument("--hints", type=Path, required=True, help="benchmarks/bench_hints.py --json output")
    parser.add_argument("--single", type=Path, required=True, help="colorgan evaluate --json on val at one scale (--no-multiscale)")
    parser.add_argument("--multi", type=Path, required=True, help="colorgan evaluate --json on val multi-scale (the default)")
    parser.add_argument("--fullres_single", type=Path, help="the same on val_fullres at one scale")
    parser.add_argument("--fullres_multi", type=Path, help="the same on val_fullres multi-scale")
    parser.add_argument("--procedure", default="", help="how the guidance network was trained, for the card")
    args = parser.parse_args(argv)
    hints = json.loads(args.hints.read_text())
    sweeps = [sweep_table(Path(name).name, result) for name, result in hints.items() if isinstance(result, dict) and "psnr" in result]
    speed = hints.get("speed", {})
    use = (
        'Use: `model.colorize(photo, hints=[(x, y, "#1f3f8f")], reference="a_colour_photo.jpg")` (x, y in the photo\'s pixels; '
        "only the hint's chroma is used, the photo's lightness stays its own), `model.suggest_colours(photo, x, y)` for the likeliest "
        "colours at a point; `colorgan colorize old.jpg --hint X,Y,#rrggbb --reference PHOTO`. Without hints or a reference the "
        "model colorizes exactly as its automatic colorizer."
    )
    guidance = "\n\n".join(
        [
            "### Hints and a reference photo",
            use,
            args.procedure,
            *sweeps,
            f"A hinted colorization of a 1-megapixel photo (10 hints) takes {speed.get('hinted_1mp_s', float('nan')):.2f} s on 2 CPU cores.",
        ]
    )
    tables = [colour_rows("`val`, protocol 256", json.loads(args.single.read_text()), json.loads(args.multi.read_text()))]
    if args.fullres_single and args.fullres_multi:
        tables.append(colour_rows("`val_fullres`, protocol full", json.loads(args.fullres_single.read_text()), json.loads(args.fullres_multi.read_text())))
    card_path = args.model / "README.md"
    text = card_path.read_text(encoding="utf-8")
    text = re.sub(re.escape(START) + ".*?" + re.escape(END) + "\n*", "", text, flags=re.S)
    text = section(text, guidance, "## Training procedure")
    evaluation = "### Multi-scale (the default) and one scale\n\n" + "\n\n".join(tables)
    heading = text.index("## Evaluation")
    end_of_line = text.index("\n", heading) + 1
    text = text[:end_of_line] + f"\n{START}\n{evaluation}\n{END}\n" + text[end_of_line:]
    card_path.write_text(text, encoding="utf-8")
    print(f"wrote the guidance and multi-scale sections of {card_path}")


if __name__ == "__main__":
    main()
