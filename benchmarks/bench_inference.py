"""Inference speed and memory of the full `colorize` pipeline, side by side with peer networks.

    python benchmarks/bench_inference.py [--model ID_OR_PATH] [--json OUT]

Prints, for 256x256, 768x512 and 4000x3000 photos: latency, images/s, the share of time outside
the network, and the process's peak RSS so far; the work outside the network at 12 MP against
OpenCV's float32 RGB -> Lab -> RGB round trip (and kornia's and skimage's); and network and
pipeline throughput of ours, the pix2pix U-Net and an ECCV16-size network at the same working
size, as ratios to ours. Peer networks have random weights: speed needs none.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from peers import ECCV16Net  # benchmarks/peers.py, beside this script
from PIL import Image

from colorgan_hub import DEFAULT_MODEL, ColorGAN
from colorgan_hub.networks import UNetGenerator

SIZES = [(256, 256), (768, 512), (4000, 3000)]


def photo(width: int, height: int) -> Image.Image:
    """A real photo (scikit-image's astronaut) resized to width x height."""
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.LANCZOS)


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class NetworkClock:
    """Adds up the time spent inside the generator's forward."""

    def __init__(self, module):
        self.total = 0.0
        module.register_forward_pre_hook(self._start)
        module.register_forward_hook(self._stop)

    def _start(self, *_):
        self._t = time.perf_counter()

    def _stop(self, *_):
        self.total += time.perf_counter() - self._t


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pipeline_rows(model) -> list[dict]:
    """Each size at one scale, then with `multiscale=True` (classification head)."""
    clock = NetworkClock(model.generator)
    rows = []
    for multiscale in (False, True) if model.head == "classification" else (False,):
        for width, height in SIZES:
            img = photo(width, height)
            repeats = 10 if width * height < 1e6 else 5
            clock.total = 0.0
            latency = timed(lambda: model.colorize(img, multiscale=multiscale), repeats)
            network = clock.total / (repeats + 1)
            rows.append(
                {
                    "size": f"{width}x{height}" + (" multiscale" if multiscale else ""),
                    "latency_s": latency,
                    "images_per_s": 1 / latency,
                    "outside_network_share": max(0.0, 1 - network / latency),
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
    return rows


def full_resolution_overhead(model) -> dict:
    """(call on 4000x3000) - (same call on a 256-px image, same network work), vs colour round trips."""
    big, small = photo(4000, 3000), photo(256, 192)
    t_big, t_small = timed(lambda: model.colorize(big), 9), timed(lambda: model.colorize(small), 15)
    rgb = np.asarray(big, dtype=np.float32) / 255.0
    opencv = timed(lambda: cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab), cv2.COLOR_Lab2RGB), 9)
    import kornia
    from skimage import color

    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    kornia_rt = timed(lambda: kornia.color.lab_to_rgb(kornia.color.rgb_to_lab(tensor)), 2)
    skimage_rt = timed(lambda: color.lab2rgb(color.rgb2lab(rgb)), 1)
    outside = t_big - t_small
    return {
        "call_4000x3000_s": t_big,
        "call_256x192_s": t_small,
        "outside_network_s": outside,
        "opencv_roundtrip_s": opencv,
        "kornia_roundtrip_s": kornia_rt,
        "skimage_roundtrip_s": skimage_rt,
        "outside_over_opencv": outside / opencv,
    }


class _Decoded(torch.nn.Module):
    """Our classification generator with its annealed-mean decoding: logits in, ab out (what the
    peers' networks give), so the network rows compare like with like."""

    def __init__(self, model):
        super().__init__()
        self.generator, self.decode = model.generator, model.decode  # parameters: the generator's only
        self.multiple = model.generator.multiple

    def forward(self, l):
        return self.decode(self.generator(l))


def peer_rows(model) -> list[dict]:
    """Network-only and full-pipeline throughput at the same working size (256), ratio to ours."""
    ours_decoded = _Decoded(model) if model.head == "classification" else model.generator
    peers = {
        "ours (default: multi-scale in the pipeline)": ours_decoded,
        "pix2pix U-Net (n_down 8, 64 filters)": UNetGenerator(1, 2, width=64, depth=8, upsample="transpose"),
        "ECCV16-size (Zhang et al.)": ECCV16Net(),
    }
    peers["ECCV16-size (Zhang et al.)"].multiple = 8
    img, square = photo(768, 512), photo(256, 256)
    rows = []
    ours = model.generator
    for name, net in peers.items():
        net = net.eval().to(memory_format=torch.channels_last)
        x = torch.randn(8, 1, 256, 256).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            net_batch = 8 / timed(lambda: net(x), 3)
        if net is not ours_decoded:  # a peer network in our pipeline: it predicts ab directly
            model.generator, head, model.head = net, model.head, "regression"
        pipe = 1 / timed(lambda: model.colorize(img, size=256), 5)
        # a 256x256 photo as users colorize it: ours at its defaults (working size 128, multi-scale),
        # a peer at the working size it was made for (256)
        default_path = 1 / timed(lambda: model.colorize(square, size=None if net is ours_decoded else 256), 10)
        if net is not ours_decoded:
            model.generator, model.head = ours, head
        rows.append(
            {
                "network": name,
                "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
                "net_images_per_s_256_batch8": net_batch,
                "pipeline_images_per_s_768x512": pipe,
                "default_path_images_per_s_256x256": default_path,
            }
        )
    for row in rows:
        row["net_ratio_to_ours"] = row["net_images_per_s_256_batch8"] / rows[0]["net_images_per_s_256_batch8"]
        row["pipeline_ratio_to_ours"] = row["pipeline_images_per_s_768x512"] / rows[0]["pipeline_images_per_s_768x512"]
        row["default_path_ratio_to_ours"] = row["default_path_images_per_s_256x256"] / rows[0]["default_path_images_per_s_256x256"]
    return rows


def realness_rows(model) -> list[dict]:
    """`model.realness` latency per photo size, and for a model that reads ImageNet features, the
    same with that read-out switched off (what the features cost)."""
    rows = []
    for width, height in SIZES[1:]:
        img = photo(width, height)
        row = {"size": f"{width}x{height}", "latency_s": timed(lambda: model.realness(img), 10)}
        if model.uses_features:
            saved = model.realness_feature_readout[2].clone()
            model.realness_feature_readout[2].zero_()
            try:
                row["without_features_s"] = timed(lambda: model.realness(img), 10)
            finally:
                model.realness_feature_readout[2].copy_(saved)
        rows.append(row)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model to time (default: the bundled model if present, else the default architecture, random weights)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    source = args.model or (DEFAULT_MODEL if Path(DEFAULT_MODEL, "config.json").exists() else None)
    model = ColorGAN.from_pretrained(source) if source else ColorGAN().eval()
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "model": source or "default architecture, random weights",
        "pipeline": pipeline_rows(model),
        "full_resolution": full_resolution_overhead(model),
        "peers": peer_rows(model),
        "realness": realness_rows(model),
    }
    print(format_tables(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def format_tables(result: dict) -> str:
    lines = [
        f"Inference on {result['machine']}; model: {result['model']}",
        "",
        "| input | latency (s) | images/s | time outside the network | peak RSS so far (MB) |",
        "|---|---|---|---|---|",
    ]
    for r in result["pipeline"]:
        lines.append(f"| {r['size']} | {r['latency_s']:.3f} | {r['images_per_s']:.1f} | {100 * r['outside_network_share']:.0f}% | {r['peak_rss_mb']:.0f} |")
    f = result["full_resolution"]
    lines += [
        "",
        f"4000x3000: call {f['call_4000x3000_s']:.3f} s - 256x192 call {f['call_256x192_s']:.3f} s = "
        f"{f['outside_network_s']:.3f} s outside the network = {f['outside_over_opencv']:.2f}x the OpenCV float32 "
        f"RGB->Lab->RGB round trip ({f['opencv_roundtrip_s']:.3f} s; kornia {f['kornia_roundtrip_s']:.3f} s, "
        f"skimage {f['skimage_roundtrip_s']:.3f} s)",
        "",
        "| network (working size 256) | params (M) | network images/s (batch 8) | ratio | pipeline images/s (768x512) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["peers"]:
        lines.append(
            f"| {r['network']} | {r['params_m']:.1f} | {r['net_images_per_s_256_batch8']:.1f} | {r['net_ratio_to_ours']:.2f} | "
            f"{r['pipeline_images_per_s_768x512']:.1f} | {r['pipeline_ratio_to_ours']:.2f} |"
        )
    eccv = next((r for r in result["peers"] if r["network"].startswith("ECCV16")), None)
    twelve = next((r for r in result["pipeline"] if r["size"] == "4000x3000 multiscale"), None)
    if eccv and twelve:  # the default photo path (multi-scale) against its targets
        lines += [
            "",
            f"Default photo path (working size 128, multi-scale) on a 256x256 photo: {1 / eccv['default_path_ratio_to_ours']:.1f}x "
            f"the photos per second of the ECCV16-size network at its working size 256 through the same pipeline (target >= 3x; "
            f"at equal working size 256 multi-scale gives {1 / eccv['pipeline_ratio_to_ours']:.1f}x); a 12-megapixel photo end to end "
            f"in {twelve['latency_s']:.2f} s (target <= 1 s)",
        ]
    lines += ["", "| realness score of | latency (s) | without the ImageNet features (s) |", "|---|---|---|"]
    for r in result.get("realness", []):
        without = f"{r['without_features_s']:.3f}" if "without_features_s" in r else "(model reads none)"
        lines.append(f"| {r['size']} | {r['latency_s']:.3f} | {without} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
