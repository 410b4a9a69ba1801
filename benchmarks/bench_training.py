"""Training speed: images/s of the default architecture, and of the data path against the reports'.

    python benchmarks/bench_training.py [--data ../shared/data/train] [--json OUT]

Data path, in one run on the same photos: ours (HF `datasets` stream, draft-mode JPEG decode, one
PIL resample per crop, Lab batched in torch) and the reports' way (a torch Dataset whose
`__getitem__` does PIL open + resize + `skimage.color.rgb2lab` per image). Training: L1 and GAN
steps of the U-Net ColorGAN at 256 px (and 128 px), batch 16, as training/train.py runs them; and
the EfficientNet-Lite0 generator's pre-training step under each way of making it fast on a CPU
(frozen stages, bf16, channels-last), and the Lite2 generator's (the default model's) at the
default recipe's two settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorgan_hub import ColorGAN
from training.data import ColorizationStream, DataConfig, batch_to_lab, build_stream, collate, image_paths
from training.losses import ColourClassLoss, discriminator_loss, generator_adversarial_loss

ROOT = Path(__file__).resolve().parents[1]


class ReportsDataset(torch.utils.data.Dataset):
    """The reports' data path: PIL open + resize + skimage rgb2lab, one image at a time."""

    def __init__(self, paths, size=256):
        self.paths, self.size = paths, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from skimage.color import rgb2lab

        img = Image.open(self.paths[i]).convert("RGB").resize((self.size, self.size), Image.Resampling.BICUBIC)
        lab = rgb2lab(np.asarray(img)).astype("float32")
        lab = torch.from_numpy(lab).permute(2, 0, 1)
        return lab[:1] / 50.0 - 1.0, lab[1:] / 110.0


def images_per_s(batches, n_batches: int, batch_size: int, skip: int = 2) -> float:
    """Throughput over n_batches after `skip` warm-up batches."""
    it = iter(batches)
    for _ in range(skip):
        next(it)
    start = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    return n_batches * batch_size / (time.perf_counter() - start)


def step_rate(step, repeats: int, batch_size: int) -> float:
    """Images per second of `step` (a batch of `batch_size`) over `repeats` calls after one warm-up."""
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return repeats * batch_size / (time.perf_counter() - start)


def data_paths(data_dir: str, n_batches: int, batch_size: int) -> dict:
    stream, column = build_stream(DataConfig(train_data_dir=data_dir, calibration_fraction=0.0))
    ours = torch.utils.data.DataLoader(ColorizationStream(stream, column, 256), batch_size=batch_size, collate_fn=collate)
    ours_lab = ((b["l"], b["ab"]) for b in ours)  # Lab is computed per sample in the stream
    reports = torch.utils.data.DataLoader(ReportsDataset(image_paths(data_dir)), batch_size=batch_size, shuffle=True)
    result = {"ours_images_per_s": images_per_s(ours_lab, n_batches, batch_size), "reports_images_per_s": images_per_s(iter(reports), n_batches, batch_size)}
    result["speedup"] = result["ours_images_per_s"] / result["reports_images_per_s"]
    return result


def training_steps(resolution: int, batch_size: int, repeats: int = 3) -> dict:
    torch.manual_seed(0)
    model = ColorGAN().train()
    generator = model.generator.to(memory_format=torch.channels_last)
    discriminator = model.discriminator.to(memory_format=torch.channels_last)
    optimizer_g = torch.optim.Adam(generator.parameters(), 2e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), 2e-4, betas=(0.5, 0.999))
    rgb = torch.randint(0, 256, (batch_size, 3, resolution, resolution), dtype=torch.uint8)
    real_l, real_ab = batch_to_lab(rgb)

    class_loss = ColourClassLoss.for_model(model)

    def l1_step():  # pre-training: the colour-class cross-entropy of the default (classification) head
        loss = class_loss(generator(real_l), real_ab)
        loss.backward()
        optimizer_g.step()
        optimizer_g.zero_grad()

    def gan_step():
        logits_g = generator(real_l)
        fake_ab = model.decode(logits_g)
        logits = discriminator(torch.cat([real_l, real_l]), torch.cat([real_ab, fake_ab.detach()]))
        discriminator_loss(*logits.chunk(2)).backward()
        optimizer_d.step()
        optimizer_d.zero_grad()
        discriminator.requires_grad_(False)
        loss_g = generator_adversarial_loss(discriminator(real_l, fake_ab)) + 10 * class_loss(logits_g, real_ab)
        discriminator.requires_grad_(True)
        loss_g.backward()
        optimizer_g.step()
        optimizer_g.zero_grad()

    return {f"{name}_images_per_s": step_rate(step, repeats, batch_size) for name, step in (("l1", l1_step), ("gan", gan_step))}


ENCODER_OPTIONS = (  # (name, frozen up to stride, bf16 autocast, channels-last)
    ("whole encoder fine-tuned, fp32", 0, False, True),
    ("whole encoder fine-tuned, fp32, contiguous (no channels-last)", 0, False, False),
    ("whole encoder fine-tuned, bf16", 0, True, True),
    ("frozen to stride 8, fp32", 8, False, True),
    ("frozen to stride 8, bf16 (the default recipe's first run)", 8, True, True),
    ("frozen to stride 16, bf16", 16, True, True),
    ("encoder frozen whole, bf16 (decoder alone learns)", 32, True, True),
    ("frozen to stride 4, bf16 (the default recipe's second run)", 4, True, True),
)
LITE2_OPTIONS = (  # the default model's encoder, at the two settings of its runs
    ("frozen to stride 8, bf16 (the default model's first run)", 8, True, True),
    ("frozen to stride 4, bf16 (the default model's second run)", 4, True, True),
)


def encoder_steps(resolution: int = 128, batch_size: int = 16, repeats: int = 3, encoder: str = "efficientnet-lite0", options=ENCODER_OPTIONS) -> dict:
    """Pre-training steps of an EfficientNet-Lite generator (cross-entropy of the classification
    head, Adam) per option of `options` (name, frozen up to stride, bf16, channels-last), and the
    frozen encoder's forward pass alone (what caching its features would save at most). The
    encoder's weights are random: the speed is the same as with the ImageNet ones."""
    torch.manual_seed(0)
    model = ColorGAN(encoder=encoder).train()
    generator, body = model.generator, model.generator.body
    rgb = torch.randint(0, 256, (batch_size, 3, resolution, resolution), dtype=torch.uint8)
    real_l, real_ab = batch_to_lab(rgb)
    class_loss = ColourClassLoss.for_model(model)
    result = {}
    for name, stride, bf16, channels_last in options:
        generator.requires_grad_(True)
        body.freeze_encoder(stride)
        generator.train().to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        optimizer = torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], 1e-4)
        x = real_l.contiguous(memory_format=torch.channels_last) if channels_last else real_l

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = class_loss(generator(x), real_ab)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        result[name] = step_rate(step, repeats, batch_size)
    encoder = body.encoder.eval()
    gray = torch.rand(batch_size, 1, resolution, resolution).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        result["frozen encoder forward alone (the most a feature cache saves)"] = step_rate(lambda: encoder(gray), repeats, batch_size)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "train"), help="folder of training photos")
    parser.add_argument("--batches", type=int, default=30, help="batches timed for each data path")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    result = {
        "threads": torch.get_num_threads(),
        "data_path": data_paths(args.data, args.batches, 16),
        "train_256": training_steps(256, 16),
        "train_128": training_steps(128, 32),
        "encoder_128": encoder_steps(128, 16),
        "encoder_128_lite2": encoder_steps(128, 16, encoder="efficientnet-lite2", options=LITE2_OPTIONS),
    }
    print(format_tables(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def format_tables(result: dict) -> str:
    d = result["data_path"]
    lines = [
        f"Training on {result['threads']} torch threads",
        "",
        "| data path (256 px, batch 16) | images/s |",
        "|---|---|",
        f"| ours: datasets stream + draft decode + one OpenCV resample + LUT/OpenCV Lab | {d['ours_images_per_s']:.1f} |",
        f"| reports: PIL open + resize + skimage rgb2lab in __getitem__ | {d['reports_images_per_s']:.1f} |",
        f"| speed-up | {d['speedup']:.2f}x |",
        "",
        "| default ColorGAN training | L1 step images/s | GAN step images/s |",
        "|---|---|---|",
    ]
    for res in (256, 128):
        t = result[f"train_{res}"]
        lines.append(f"| {res} px | {t['l1_images_per_s']:.1f} | {t['gan_images_per_s']:.1f} |")
    for key, encoder in (("encoder_128", "Lite0"), ("encoder_128_lite2", "Lite2")):
        if key in result:
            lines += ["", f"| EfficientNet-{encoder} generator, pre-training step, 128 px, batch 16 | images/s |", "|---|---|"]
            lines += [f"| {name} | {value:.1f} |" for name, value in result[key].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
