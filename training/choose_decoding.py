"""Choose a classification-head model's decoding defaults (vividness, temperature; with
--image_size, the working size too) on validation photos, by the same selection score train.py
keeps its generator by, and save them in its config.

    python training/choose_decoding.py --model runs/cls/model --validation_data_dir ../shared/data/val \
        --vividness 0.4 0.5 0.6 0.7 0.8 --temperature 0.4 0.5 0.6 --out runs/cls/model

Every pair is decoded through the users' pipeline (`model.colorize`) on --max_validation_samples
photos spread over the folder (the ones train.py validates on); the table and the choice go to
stdout and --json. Only the config changes: the weights are copied as they are. The realness
calibration depends on the colours the detector sees: fit it again afterwards (calibrate.py, or
detector.py for a family-trained detector).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from colorgan_hub import ColorGAN
from colorgan_hub.evaluate import colour_metrics
from training import selection

COLUMNS = ("psnr_gain", "cf_ratio", "hue_macro", "hue_red", "hue_orange/yellow", "hue_green", "hue_blue/cyan", "hue_purple", "score")


def sweep(model, truths, vividness, temperature, targets: selection.Targets, batch_size: int = 8, sizes=(None,)) -> list[dict]:
    """One row per (working size, vividness, temperature): colour metrics and the selection score."""
    base = selection.baseline(truths)
    images, arrays = [img for _, img in truths], [np.asarray(img) for _, img in truths]
    rows = []
    for size in sizes:
        for v in vividness:
            for t in temperature:
                outputs = model.colorize(images, size=size, vividness=v, temperature=t, batch_size=batch_size)
                result = selection.score(colour_metrics([np.asarray(o) for o in outputs], arrays), base, targets)
                rows.append({"image_size": size or model.image_size, "vividness": v, "temperature": t, **{k: result[k] for k in COLUMNS}})
                print(" ".join(f"{k} {rows[-1][k]:.3f}" for k in ("image_size", "vividness", "temperature", *COLUMNS)), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="save_pretrained folder or Hub id (classification head)")
    parser.add_argument("--validation_data_dir", required=True, help="folder of colour photos to choose on")
    parser.add_argument("--max_validation_samples", type=int, default=100, help="photos, spread over the folder")
    parser.add_argument("--vividness", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7, 0.8, 1.0])
    parser.add_argument("--temperature", type=float, nargs="+", default=[0.38, 0.5, 0.6])
    parser.add_argument("--image_size", type=int, nargs="+", help="working sizes (long side, px) to choose among too (default: the model's own)")
    parser.add_argument("--select_psnr_gain", type=float, default=0.5, help="PSNR gain over gray (dB) that counts as full marks")
    parser.add_argument("--select_cf_ratio", type=float, default=0.8, help="colourfulness ratio to the truth that counts as full marks")
    parser.add_argument("--select_hue_macro", type=float, default=0.4, help="hue hit rate (macro) that counts as full marks")
    parser.add_argument("--out", type=Path, help="save the model with the chosen defaults here (may be --model's own folder)")
    parser.add_argument("--json", type=Path, help="write the table and the choice here")
    args = parser.parse_args(argv)
    model = ColorGAN.from_pretrained(args.model).eval()
    if model.head != "classification":
        parser.error(f"{args.model}: a {model.head}-head model has no decoding to choose")
    bad = [v for v in args.vividness if not 0 <= v <= 1] + [t for t in args.temperature if t <= 0]
    if bad:
        parser.error(f"vividness must be in [0, 1] and temperature > 0: {bad}")
    truths = selection.validation_truths(args.validation_data_dir, args.max_validation_samples)
    if not truths:
        parser.error(f"no readable photos in {args.validation_data_dir}")
    targets = selection.Targets(args.select_psnr_gain, args.select_cf_ratio, args.select_hue_macro)
    if args.image_size and min(args.image_size) < model.generator.multiple:
        parser.error(f"--image_size must be at least {model.generator.multiple} px")
    rows = sweep(model, truths, args.vividness, args.temperature, targets, sizes=args.image_size or (None,))
    best = max(rows, key=lambda r: r["score"])
    choice = {"vividness": best["vividness"], "temperature": best["temperature"]}
    if args.image_size:
        choice["image_size"] = best["image_size"]
    print("chosen:", json.dumps(best))
    if args.json:
        args.json.write_text(json.dumps({"photos": len(truths), "targets": vars(targets), "rows": rows, "chosen": best}, indent=2))
    if args.out:
        source = Path(args.model)
        if not (source / "config.json").exists():
            parser.error("--out needs --model to be a local folder (its weights are copied as they are)")
        args.out.mkdir(parents=True, exist_ok=True)
        if args.out.resolve() != source.resolve():
            for f in source.iterdir():
                if f.is_file():
                    shutil.copy2(f, args.out / f.name)
        config = {**json.loads((source / "config.json").read_text()), **choice}
        (args.out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return best


if __name__ == "__main__":
    main()
