"""Video: frames/s end to end, flicker against independent frames, hue hits, scene cuts.

    python benchmarks/bench_video.py [--data ../shared/data] [--model ID_OR_PATH] [--clips 20]

Clips are made here from colour photos, so the truth and the motion are known: each clip is two
shots (two photos) of `--frames` frames each, a pan and a zoom over the photo, with a cut between
them. The colorizer sees only the clips' lightness.

- Quality (`val/`, 320x180 clips; the stability default is chosen on these) and `val_fullres/`
  (640x360 clips; reported, not used for any choice), for several `stability` values, 0 being
  independent frame-by-frame colorization through the same code:
  - flicker: mean absolute frame-to-frame change of the output's ab (Lab units, at the working
    size), each pixel compared with the same scene point in the previous frame (the known
    motion, bilinear), within shots. The truth's own figure (interpolation alone) is the floor.
  - hue hit rates (`colorgan_hub.metrics`), pooled over all frames, against the colour frames.
  - scene cuts found at the right frame, missed, and false.
- Speed: `colorize_video` on a 10 s 640x360 and 1280x720 H.264 clip with AAC audio: decode,
  colorize, encode, mux, all included.
"""

from __future__ import annotations

import argparse
import fractions
import json
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from colorgan_hub import DEFAULT_MODEL
from colorgan_hub.fullres import warm_up
from colorgan_hub.image_io import list_images
from colorgan_hub.metrics import HUE_FAMILIES, hue_hits_of, hue_rates, image_ab
from colorgan_hub.model import load_model
from colorgan_hub.options import STABILITY
from colorgan_hub.pipeline import working_shape
from colorgan_hub.video import VideoColorizer, colorize_video

HERE = Path(__file__).parent


def shot_motion(frames: int, photo_size: tuple[int, int], frame_size: tuple[int, int], rng) -> list[tuple[float, float, float]]:
    """Per frame (x0, y0, k): the photo point of frame pixel (u, v) is (x0 + k u, y0 + k v).
    A pan across part of the photo while zooming in or out by up to 25%."""
    (pw, ph), (fw, fh) = photo_size, frame_size
    k_fit = min(pw / fw, ph / fh)  # the largest window that fits
    k0, k1 = k_fit * rng.uniform(0.75, 0.9), k_fit * rng.uniform(0.75, 0.9)
    motion = []
    start, end = rng.uniform(0, 1, 2), rng.uniform(0, 1, 2)
    for t in range(frames):
        s = t / max(frames - 1, 1)
        k = k0 + (k1 - k0) * s
        free_x, free_y = pw - k * fw, ph - k * fh
        fx, fy = start + (end - start) * s
        motion.append((fx * free_x, fy * free_y, k))
    return motion


def render(photo: np.ndarray, motion, frame_size) -> list[np.ndarray]:
    """The frames of a shot (RGB uint8) from the photo, by the motion."""
    frames = []
    for x0, y0, k in motion:
        matrix = np.float32([[k, 0, x0], [0, k, y0]])
        frames.append(cv2.warpAffine(photo, matrix, frame_size, flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT))
    return frames


def working_ab(rgb: np.ndarray, work: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) ab in Lab units of an RGB frame at the working size (area average)."""
    return cv2.resize(np.ascontiguousarray(image_ab(rgb).transpose(1, 2, 0)), (work[1], work[0]), interpolation=cv2.INTER_AREA)


def flicker(abs_work: list[np.ndarray], motion, frame_size, work) -> list[float]:
    """Per consecutive pair of a shot: mean |ab_t - ab_{t-1} at the same scene point| over the
    working pixels whose point is inside the previous frame."""
    (fw, fh), (h, w) = frame_size, work
    scale_x, scale_y = fw / w, fh / h
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    u, v = (jj + 0.5) * scale_x - 0.5, (ii + 0.5) * scale_y - 0.5  # frame pixel of each working pixel
    out = []
    for t in range(1, len(abs_work)):
        (x0, y0, k), (px0, py0, pk) = motion[t], motion[t - 1]
        u_prev, v_prev = (x0 + k * u - px0) / pk, (y0 + k * v - py0) / pk
        map_x = ((u_prev + 0.5) / scale_x - 0.5).astype(np.float32)
        map_y = ((v_prev + 0.5) / scale_y - 0.5).astype(np.float32)
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        previous = cv2.remap(abs_work[t - 1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(float(np.abs(abs_work[t] - previous).mean(axis=2)[inside].mean()))
    return out


def make_clips(photos: list[Path], clips: int, frames: int, frame_size, seed: int = 0):
    """[(truth frames, motions of the two shots)] from consecutive pairs of photos."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(clips):
        shots, motions = [], []
        for photo_path in photos[2 * c : 2 * c + 2]:
            photo = np.asarray(Image.open(photo_path).convert("RGB"))
            motion = shot_motion(frames, (photo.shape[1], photo.shape[0]), frame_size, rng)
            shots.append(render(photo, motion, frame_size))
            motions.append(motion)
        out.append((shots, motions))
    return out


def quality(model, clips, frame_size, stabilities) -> dict:
    """Flicker, hue hits and cuts per stability value over the clips."""
    work = working_shape(frame_size[1], frame_size[0], model.image_size)
    results = {}
    truth_flicker = [
        f for shots, motions in clips for shot, m in zip(shots, motions) for f in flicker([working_ab(x, work) for x in shot], m, frame_size, work)
    ]
    for stability in stabilities:
        flickers, cuts_right, cuts_false, cuts_missed = [], 0, 0, 0
        counts = {name: np.zeros(2, np.int64) for name in HUE_FAMILIES}
        for shots, motions in clips:
            colorizer = VideoColorizer(model, stability=stability)
            frames = [frame for shot in shots for frame in shot]
            outputs = list(colorizer.frames(np.asarray(Image.fromarray(f).convert("L")) for f in frames))
            n = len(shots[0])
            found = set(colorizer.cuts)
            cuts_right += n in found
            cuts_missed += n not in found
            cuts_false += len(found - {n})
            for s, (shot, motion) in enumerate(zip(shots, motions)):
                outs = outputs[s * n : (s + 1) * n]
                flickers += flicker([working_ab(o, work) for o in outs], motion, frame_size, work)
                for o, t in zip(outs, shot):
                    hue_hits_of(image_ab(o), image_ab(t), counts)
        rates = hue_rates(counts)
        results[str(stability)] = {
            "flicker": float(np.mean(flickers)),
            "hue": rates,
            "cuts_found": cuts_right,
            "cuts_missed": cuts_missed,
            "false_cuts": cuts_false,
        }
    independent = results[str(0.0)]["flicker"]
    for r in results.values():
        r["flicker_ratio"] = r["flicker"] / independent
        r["hue_macro_change"] = r["hue"]["macro"] - results[str(0.0)]["hue"]["macro"]
    return {"truth_flicker": float(np.mean(truth_flicker)), "by_stability": results, "clips": len(clips), "frames_per_shot": len(clips[0][0][0])}


def write_clip(path: Path, photo: np.ndarray, frame_size, seconds: float, rate: int = 25) -> None:
    """A gray H.264 clip (pan and zoom over `photo`) with a mono AAC tone, for the speed test."""
    rng = np.random.default_rng(1)
    n = int(seconds * rate)
    frames = render(photo, shot_motion(n, (photo.shape[1], photo.shape[0]), frame_size, rng), frame_size)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = frame_size[0], frame_size[1], "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for frame in frames:
            gray = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            container.mux(video.encode(av.VideoFrame.from_ndarray(gray, format="rgb24")))
        container.mux(video.encode(None))
        tone = (0.2 * np.sin(np.arange(int(44100 * seconds)) * 2 * np.pi * 440 / 44100)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 44100, start, fractions.Fraction(1, 44100)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))


def speed(model, photo_path: Path, sizes, seconds: float, repeats: int) -> dict:
    photo = np.asarray(Image.open(photo_path).convert("RGB"))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in sizes:
            clip = Path(tmp, f"clip_{w}x{h}.mp4")
            write_clip(clip, photo, (w, h), seconds)
            runs = []
            for _ in range(repeats):
                result = colorize_video(model, clip, Path(tmp, f"out_{w}x{h}.mp4"))
                runs.append(result.frames_per_second)
            out[f"{w}x{h}"] = {"frames": result.frames, "fps_best": max(runs), "fps_runs": runs, "audio_streams": result.audio_streams}
    return out


def print_quality(name: str, q: dict) -> None:
    print(f"\n{name}: {q['clips']} clips of 2 shots x {q['frames_per_shot']} frames; truth's own flicker {q['truth_flicker']:.2f}")
    print("| stability | flicker (ab) | vs independent | hue macro | change | blue/cyan | green | red | cuts found / missed / false |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s, r in q["by_stability"].items():
        hue = r["hue"]
        print(
            f"| {s} | {r['flicker']:.2f} | {r['flicker_ratio']:.2f} | {hue['macro']:.3f} | {r['hue_macro_change']:+.3f} | "
            f"{hue['blue/cyan']:.3f} | {hue['green']:.3f} | {hue['red']:.3f} | {r['cuts_found']} / {r['cuts_missed']} / {r['false_cuts']} |"
        )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data", help="folder holding val/ and val_fullres/")
    parser.add_argument("--model", default=None, help="Hub id or local folder (default: the bundled model)")
    parser.add_argument("--clips", type=int, default=20, help="clips per folder (two photos each)")
    parser.add_argument("--frames", type=int, default=24, help="frames per shot")
    parser.add_argument("--stabilities", default=f"0,0.5,0.7,{STABILITY},0.9", help="comma-separated stability values (0 = independent frames)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the speed clips")
    parser.add_argument("--repeats", type=int, default=2, help="speed runs per size (best reported)")
    parser.add_argument("--skip-quality", action="store_true", help="speed only")
    parser.add_argument("--skip-speed", action="store_true", help="quality only")
    args = parser.parse_args(argv)
    model = load_model(args.model or DEFAULT_MODEL)
    warm_up()
    stabilities = sorted({float(s) for s in args.stabilities.split(",")} | {0.0})
    results = {"stability_default": STABILITY}
    if not args.skip_quality:
        for folder, frame_size in (("val", (320, 180)), ("val_fullres", (640, 360))):
            photos, _ = list_images(args.data / folder, recursive=False)
            chosen = [photos[i] for i in np.random.default_rng(0).permutation(len(photos))[: 2 * args.clips]]  # all sources, not sorted runs
            clips = make_clips(chosen, args.clips, args.frames, frame_size, seed=0)
            results[folder] = quality(model, clips, frame_size, stabilities)
            print_quality(folder, results[folder])
    if args.skip_speed:
        return results
    fullres, _ = list_images(args.data / "val_fullres", recursive=False)
    results["speed"] = speed(model, fullres[0], [(640, 360), (1280, 720)], args.seconds, args.repeats)
    print(f"\nspeed (decode + colorize + encode, {args.seconds:g} s clips, H.264 + AAC, stability {STABILITY}):")
    for size, r in results["speed"].items():
        print(f"  {size}: {r['fps_best']:.1f} frames/s (runs: {', '.join(f'{x:.1f}' for x in r['fps_runs'])})")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--json", type=Path, default=HERE / "video_results.json")
    known, rest = parser.parse_known_args()
    known.json.write_text(json.dumps(main(rest), indent=2))
