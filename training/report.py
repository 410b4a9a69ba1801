"""Turn a finished training run into a shippable model folder with a complete model card.

    python training/report.py --run runs/small --val_dir ../shared/data/val \
        [--fullres_dir ../shared/data/val_fullres] [--out runs/small/model]

Measures the final model and the L1-only model (`model-l1/`) with the same evaluation as
`colorgan evaluate --protocol 256` (and `--protocol full` on --fullres_dir), draws the training
curves from the TensorBoard logs and a before/after sheet (gray input | L1-only | final | ground
truth), and writes README.md (from model_card.md) with Hub metadata and a model-index.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from huggingface_hub import EvalResult, ModelCard
from PIL import Image, ImageDraw

from colorgan_hub import ColorGAN
from colorgan_hub.evaluate import evaluate, format_markdown, gray_baseline, load_truths
from training.data import list_images

DATA_TERMS = """Real colour photos from `../shared/data/train` (7,593 photos, 256x256): pets and flowers
(Kaggle cats-vs-dogs and breed photos; TensorFlow flower_photos, CC-BY per Flickr photo), one
ImageNet sample per class (ImageNet terms: non-commercial research), BSDS500 (Berkeley: research use)
and Wikipedia photos (Creative Commons, attribution required). Validation: `../shared/data/val`
(400 photos, every 20th of each source, never trained on) and `val_fullres` (Sun-Hays 80 scenes,
research use). Because of these terms the model is for **research and demonstration** only.
Known skew: many pets and flowers, few broad scenes or people."""

LIMITATIONS = """- Small, skewed training data (7.6k photos, mostly pets and flowers): scenes, people and
  objects unlike them come out in warm browns and oranges; colours are plausible at best, never
  historical truth. Strong hues that the image does not imply (a red tulip, a yellow flower, a
  magenta blanket) are not recovered.
- L1 regresses to the conditional median (sepia); the GAN phase and the colourfulness-matching
  fine-tuning raise colourfulness, largely along that same warm direction.
- Colour is predicted at the working size (the config's `image_size`) and upsampled: thin
  coloured details can bleed; lightness is always the photo's own, at full resolution.
- The realness score was trained against **this model's** colorizations only (with JPEG and resize
  augmentation): it is not a detector of other colorizers, edits or generated images.
- Trained and measured on CPU at 128 px crops; no people-specific or fairness evaluation was done."""

INTENDED_USE = """Research and demonstration: colorizing old or grayscale photos for a first
impression, teaching, and studying GAN colorization and colorization detection. Not for claims about
the true colours of historical scenes, and not for forensic decisions."""


PROCEDURE = (
    "L1 pre-training of the generator, then a short GAN phase (L1 x 100 + vanilla GAN loss, "
    "spectral-norm PatchGAN, lower learning rate, EMA generator; the generator best under both fidelity "
    "and colour on validation is kept), then the detector phase (generator frozen; real photos vs its "
    "colorizations, both randomly JPEG-compressed and resized), then Platt scaling of the realness "
    "score on held-out training photos. Hyperparameters: see `config.json` and the command."
)


def curves(runs: list[Path], out: Path) -> bool:
    """Training curves from the TensorBoard logs of one run, or of several run one after the other
    (each continuing from the last one's model: its steps drawn after the last one's); False when
    there are none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars, offset = {}, 0
    for run in runs:
        last = 0
        for events in sorted(run.glob("logs/**/events.out.tfevents.*")):
            acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
            acc.Reload()
            for tag in acc.Tags()["scalars"]:
                scalars.setdefault(tag, {}).update({offset + e.step: e.value for e in acc.Scalars(tag)})
                last = max([last] + [e.step for e in acc.Scalars(tag)])
        offset += last
    if not scalars:
        return False
    panels = [("train/loss_g_l1", "generator L1 loss"), ("train/loss_g_cf", "colourfulness-matching loss"), ("train/loss_d", "discriminator loss (GAN phase)"),
              ("train/loss_detector", "detector loss"), ("val/psnr_gain", "validation PSNR gain over gray (dB)"),
              ("val/cf_ratio", "validation colourfulness / truth's")]
    panels = [(tag, title) for tag, title in panels if tag in scalars]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    for ax, (tag, title) in zip(np.atleast_1d(axes), panels):
        steps = sorted(scalars[tag])
        ax.plot(steps, [scalars[tag][s] for s in steps], lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def sheet(models: dict[str, ColorGAN], truths, out: Path, n: int = 6) -> None:
    """Rows of: gray input | each model | ground truth, with a header."""
    tiles = []
    for _, truth in truths[:n]:
        row = [gray_baseline(truth)] + [np.asarray(m.colorize(truth)) for m in models.values()] + [np.asarray(truth)]
        tiles.append(np.concatenate(row, axis=1))
    grid = np.concatenate(tiles, axis=0)
    header = Image.new("RGB", (grid.shape[1], 24), "white")
    draw = ImageDraw.Draw(header)
    for i, name in enumerate(["gray input", *models, "ground truth"]):
        draw.text((i * 256 + 8, 6), name, fill="black")
    Image.fromarray(np.concatenate([np.asarray(header), grid], axis=0)).save(out, quality=88)


def model_index(result: dict, dataset: str) -> list[EvalResult]:
    row, detector = result["colour"]["model"], result.get("detector", {}).get("clean", {})
    values = {"PSNR": row["psnr"], "SSIM": row["ssim"], "colorfulness": row["cf"], "AuC": row["auc"],
              "detector ROC-AUC": detector.get("auc"), "detector ECE": detector.get("ece")}
    return [EvalResult(task_type="image-to-image", dataset_type="imagefolder", dataset_name=dataset, metric_type=name.lower().replace(" ", "_"),
                       metric_name=name, metric_value=round(float(value), 4)) for name, value in values.items() if value is not None]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="training output folder (with model/ and model-l1/)")
    parser.add_argument("--val_dir", required=True, help="validation photos (protocol 256)")
    parser.add_argument("--fullres_dir", help="full-resolution photos (protocol full)")
    parser.add_argument("--out", type=Path, help="model folder to complete (default: RUN/model)")
    parser.add_argument("--command", help="the exact training command, for the card (default: from the run's logs)")
    parser.add_argument("--title", help="a name for the model, for the card")
    parser.add_argument("--l1_model", type=Path, help="the L1-only model to compare with (default: RUN/model-l1)")
    parser.add_argument("--curves_from", type=Path, nargs="+", help="runs whose logs make the curves, in order (default: RUN)")
    parser.add_argument("--procedure", default=PROCEDURE, help="how the model was trained, for the card")
    parser.add_argument("--limit", type=int, help="use only the first N photos of each folder (a quick check)")
    args = parser.parse_args(argv)
    out = args.out or args.run / "model"
    final = ColorGAN.from_pretrained(out)
    models = {"final": final}
    l1_model = args.l1_model or args.run / "model-l1"
    if (l1_model / "config.json").exists():
        models = {"L1 only": ColorGAN.from_pretrained(l1_model), "final": final}

    paths = list_images(args.val_dir, args.limit)
    size = final.image_size  # every model at the final one's working size: a like-for-like table
    results = {name: evaluate(m, paths, protocol="256", size=size, detector=name == "final", progress=False) for name, m in models.items()}
    shown = dict(results["final"], colour={"final": results["final"]["colour"]["model"]})
    if "L1 only" in results:
        shown["colour"]["L1 only (before the GAN)"] = results["L1 only"]["colour"]["model"]
    shown["colour"].update({k: v for k, v in results["final"]["colour"].items() if k != "model"})
    text = "Protocol 256 on `val`. " + format_markdown(shown)
    if args.fullres_dir:
        results["fullres"] = evaluate(final, list_images(args.fullres_dir, args.limit), protocol="full", progress=False)
        text += "\n\nProtocol full on `val_fullres`:\n\n" + format_markdown(results["fullres"])
    (out / "evaluation.json").write_text(json.dumps(results, indent=2))
    has_curves = curves(args.curves_from or [args.run], out / "curves.png")
    sheet(models, load_truths(paths[:: max(1, len(paths) // 6)][:6], "256"), out / "sheet.jpg")

    meta = json.loads((args.run / "best" / "metrics.json").read_text()) if (args.run / "best" / "metrics.json").exists() else None
    procedure = f"Exact command:\n\n```bash\n{args.command}\n```\n" if args.command else ""
    procedure += "\n" + args.procedure
    if meta:
        procedure += f"\n\nKept generator: validation step {meta['step']} (PSNR gain {meta['psnr_gain']:.2f} dB, colourfulness ratio {meta['cf_ratio']:.2f})."
    if has_curves:
        procedure += "\n\n![training curves](curves.png)"
    evaluation = text + "\n\nBefore/after on validation photos:\n\n![gray input, L1-only, final, ground truth](sheet.jpg)"

    card = final.generate_model_card(
        model_title=args.title, training_data=DATA_TERMS, training_procedure=procedure, evaluation=evaluation,
        limitations=LIMITATIONS, intended_use=INTENDED_USE,
    )
    card.data.license = "other"  # the weights follow the training photos' terms; the code is MIT
    card.data.license_name = "research-and-demonstration-only"
    card.data.license_link = "LICENSE.md"
    card.data.datasets = ["local: shared/data (ImageNet samples, BSDS500, TF flowers, Kaggle cats/dogs, Wikipedia photos)"]
    card.data.model_name = args.title or "colorgan-hub"
    card.data.eval_results = model_index(results["final"], "ColorGAN Hub val (400 photos)")
    card.save(out / "README.md")
    (out / "LICENSE.md").write_text(
        "Model weights: research and demonstration use only, following the terms of the training photos "
        "(see README.md, Training data). The colorgan-hub code is MIT-licensed.\n"
    )
    ModelCard.load(out / "README.md")  # the metadata must parse
    print(text)
    return results


if __name__ == "__main__":
    main()
