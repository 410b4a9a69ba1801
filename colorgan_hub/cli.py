"""The `colorgan` command line: colorize files and folders, score photos for realness.

    colorgan colorize old.jpg scans/ "more/*.png" film.mp4 -o colored/ [--model ID_OR_PATH] [--size 256] [--vividness 0.8]
                      [--upscale 2] [--variations 3 --seed 0]
    colorgan score photo.jpg colored/*.png [--model ID_OR_PATH] [--json]
    colorgan evaluate --data DIR [--model ID_OR_PATH] [--limit N] [--protocol 256|full] [--vividness V] [--temperature T]
                      [--detector-generators ID_OR_PATH ...] [--json OUT]
    colorgan demo [--host 127.0.0.1] [--port 7860]

One line per bad file on stderr, the rest carry on. Exit status: 0 all done, 1 some input
failed, 2 usage error (bad arguments, a model that cannot be loaded).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import socket
import sys
from pathlib import Path

from tqdm.auto import tqdm

from . import DEFAULT_MODEL
from .pipeline import MAX_VARIATIONS
from .upscale import SCALES
from .image_io import DEFAULT_MAX_PIXELS, ImageError, NoColourError, list_images, load_image, output_path, save_image, spread_evenly
from .video import STABILITY, VIDEO_SUFFIXES, VideoError, colorize_video, video_output_path

VIVIDNESS_HELP = "classification models: 0 (muted, safe) to 1 (bold, risky) colour (default: the model's own, chosen on validation)"
TEMPERATURE_HELP = "classification models: annealed-mean temperature, 1 the distribution's mean, towards 0 its likeliest colour (default: the model's own)"
MULTISCALE_HELP = ("classification models, photos: the network also sees each photo at 1.5x the working size and averages the "
                   "two colour distributions: more faithful colour for about 3x the network time")


class UsageError(Exception):
    """Bad arguments or an unloadable model: exit status 2."""


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


class Inputs:
    """What the command-line inputs expand to: image paths, video paths (by suffix), error
    lines, notes, skipped files. Without `videos`, video files are errors (score, evaluate)."""

    def __init__(self, specs: list[str], recursive: bool = False, videos: bool = False):
        self.paths, self.videos, self.errors, self.notes, self.skipped = [], [], [], [], 0
        self._take_videos = videos
        for spec in specs:
            if glob.has_magic(spec):
                matches = sorted(glob.glob(spec, recursive=recursive))
                if not matches:
                    self.errors.append(f"{spec}: no file matches this pattern")
                self._add_files([Path(m) for m in matches if Path(m).is_file()])
            elif Path(spec).is_dir():
                self._add_folder(spec, recursive)
            else:
                self._add_files([Path(spec)])  # a missing or bad file is reported when it is loaded
        self.paths = list(dict.fromkeys(self.paths))
        self.videos = list(dict.fromkeys(self.videos))

    def _add_files(self, paths: list[Path]) -> None:
        for path in paths:
            if not is_video(path):
                self.paths.append(path)
            elif self._take_videos:
                self.videos.append(path)
            else:
                self.errors.append(f"{path}: a video; this command takes photos (colorize takes videos)")

    def _add_folder(self, spec: str, recursive: bool) -> None:
        images, others = list_images(spec, recursive=recursive)
        videos = [p for p in others if is_video(p)] if self._take_videos else []
        others = [p for p in others if p not in videos]
        self.paths += images
        self.videos += videos
        self.skipped += len(others)
        kinds = ("images or videos", "image or video") if self._take_videos else ("images", "image")
        if others:
            self.notes.append(f"{spec}: {len(others)} file(s) that are not {kinds[0]} skipped (e.g. {others[0].name})")
        if images or videos:
            return
        below = [] if recursive else list_images(spec, recursive=True)[0]
        if below:
            self.errors.append(f"{spec}: no image files at its top level but {len(below)} in subfolders: add --recursive")
        else:
            self.errors.append(f"{spec}: folder holds no {kinds[1]} files")


def load_model(spec: str | None):
    from .model import ModelLoadError
    from .model import load_model as load

    if spec is None:
        if not Path(DEFAULT_MODEL, "config.json").exists():
            raise UsageError("no default model is bundled with this install: pass --model HUB_ID_OR_FOLDER")
        spec = DEFAULT_MODEL
    try:
        return load(spec)
    except ModelLoadError as err:
        raise UsageError(str(err)) from None


def report(message: str, kind: str = "error") -> None:
    """One line on stderr that does not tear a running progress bar."""
    tqdm.write(f"{kind}: {message}", file=sys.stderr)


def _load_input(path: Path, max_pixels: int):
    """load_image plus a note when only the first frame of an animation is used."""
    image = load_image(path, max_pixels=max_pixels)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        report(f"{path}: {frames} frames; the first frame only is used", "note")
    return image


def _summary(done: str, written: int, inputs: Inputs, failed: int, where: str = "") -> str:
    """The closing line of a command: how many of how many, what failed, what was skipped."""
    total = len(inputs.paths) + len(inputs.videos)
    noun = "image(s)" if not inputs.videos else "video(s)" if not inputs.paths else "file(s)"
    if not total:
        line = f"nothing {done}: no image in the inputs"
    else:
        line = f"{done} {written} of {total} {noun}{where}"
    extras = [f"{failed} failed"] if failed else []
    if inputs.skipped:
        extras.append(f"{inputs.skipped} non-image file(s) skipped")
    return line + (f" ({', '.join(extras)})" if extras else "")


def _output_folder(folder: Path) -> bool:
    """Create the output folder, or stop with one line saying why it cannot be used. Returns
    whether it was created now (so that a run that writes nothing can remove it again)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: exists and is not a folder")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"-o {folder}: cannot create this folder ({err.strerror or err})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {folder}: the folder is not writable")
    return created


def _progress(items, what: str):
    return tqdm(items, desc=what, unit="image", disable=len(items) <= 1, file=sys.stderr)


def cmd_colorize(args) -> int:
    inputs = Inputs(args.inputs, args.recursive, videos=True)
    created = _output_folder(args.output_dir)
    for line in inputs.notes:
        report(line, "note")
    for line in inputs.errors:
        report(line)
    paths = inputs.paths
    model = load_model(args.model)
    if args.multiscale and model.head != "classification":
        raise UsageError("--multiscale needs a model with the classification head (this one regresses ab)")
    failed, written, claimed = len(inputs.errors), 0, {}
    pending = []  # (path, image, destination) waiting for a batch

    def flush():
        nonlocal failed, written
        if not pending:
            return
        outputs = model.colorize([img for _, img, _ in pending], size=args.size, batch_size=args.batch_size, temperature=args.temperature,
                                 vividness=args.vividness, max_pixels=args.max_pixels, return_exceptions=True,
                                 upscale=args.upscale, variations=args.variations, seed=args.seed, multiscale=args.multiscale)
        for (path, _, dests), out in zip(pending, outputs):
            if isinstance(out, Exception):  # one photo's failure is its own: the batch's others are written
                report(str(out))
                failed += 1
                continue
            try:
                for image, dest in zip(out if args.variations else [out], dests):
                    save_image(image, dest)
                written += 1
            except OSError as err:
                report(f"{dest}: cannot write ({err})")
                failed += 1
        pending.clear()

    for path in _progress(paths, "colorize"):
        dests = destinations(output_path(path, args.output_dir), args.variations)
        problem = next(filter(None, (_destination_problem(path, dest, claimed, args.overwrite) for dest in dests)), None)
        if problem:
            report(problem)
            failed += 1
            continue
        try:
            image = _load_input(path, args.max_pixels)
        except ImageError as err:
            report(str(err))
            failed += 1
            continue
        claimed.update(dict.fromkeys(dests, path))
        pending.append((path, image, dests))
        if len(pending) >= args.batch_size:
            flush()
    flush()
    if inputs.videos and (args.upscale > 1 or args.variations):
        report("videos are colorized once, at their own size: --upscale and --variations apply to photos", "note")
    for path in inputs.videos:
        done = _colorize_video(model, path, args, claimed)
        written += done
        failed += not done
    if created and not written:  # nothing came out: leave no empty folder behind
        with contextlib.suppress(OSError):
            args.output_dir.rmdir()
    print(_summary("colorized", written, inputs, failed, f" into {args.output_dir}"), file=sys.stderr)
    return 1 if failed else 0


def destinations(dest: Path, variations: int | None) -> list[Path]:
    """Where a photo's result goes: `dest`, or NAME-1.EXT ... NAME-N.EXT for N variations."""
    if not variations:
        return [dest]
    return [dest.with_name(f"{dest.stem}-{n}{dest.suffix}") for n in range(1, variations + 1)]


def _destination_problem(path: Path, dest: Path, claimed: dict, overwrite: bool) -> str | None:
    """Why `path` must not be written to `dest` (another input claimed it, or it exists), or None."""
    if dest in claimed:
        return f"{path}: output {dest} would also be written for {claimed[dest]}; skipped"
    if dest.exists() and not overwrite:
        return f"{path}: {dest} exists (use --overwrite to replace it)"
    return None


def _colorize_video(model, path: Path, args, claimed: dict) -> bool:
    """One video file into the output folder, with a progress bar in frames; False if it failed."""
    dest = video_output_path(path, args.output_dir)
    problem = _destination_problem(path, dest, claimed, args.overwrite)
    if problem:
        report(problem)
        return False
    claimed[dest] = path
    bars = []  # made at the first frame: a file that fails to open prints its error line only

    def progress(done, expected):
        if not bars:
            bars.append(tqdm(desc=path.name, total=expected, unit="frame", file=sys.stderr, leave=False))
        bars[0].update(done - bars[0].n)

    if args.multiscale:
        report(f"{path}: --multiscale is for photos; the video's frames are colorized at one scale", "note")
    try:
        result = colorize_video(model, path, dest, size=args.size, stability=args.stability, vividness=args.vividness,
                                temperature=args.temperature, progress=progress, max_pixels=args.max_pixels)
    except VideoError as err:
        report(str(err))
        return False
    finally:
        for bar in bars:
            bar.close()
    for line in result.notes:
        report(f"{path}: {line}", "note")
    tqdm.write(f"{dest}: {result.summary()}, {result.frames_per_second:.1f} frames/s", file=sys.stderr)
    return True


def cmd_score(args) -> int:
    inputs = Inputs(args.inputs, args.recursive)
    for line in inputs.notes:
        report(line, "note")
    for line in inputs.errors:
        report(line)
    model = load_model(args.model)
    failed, scores = len(inputs.errors), []
    for path in _progress(inputs.paths, "score"):
        try:
            p = model.realness(_load_input(path, args.max_pixels), size=args.size, max_pixels=args.max_pixels)
        except NoColourError as err:  # an answer, not a failure: a black-and-white or toned print
            scores.append({"file": str(path), "realness": None, "monochrome": err.reason})
            if not args.json:
                tqdm.write(f"monochrome\t{path}", file=sys.stdout)
            continue
        except ImageError as err:
            report(str(err))
            failed += 1
            continue
        scores.append({"file": str(path), "realness": p})
        if not args.json:
            tqdm.write(f"{p:.4f}\t{path}", file=sys.stdout)
    if args.json:
        print(json.dumps(scores, indent=2))
    if failed or inputs.skipped or not inputs.paths:
        print(_summary("scored", len(scores), inputs, failed), file=sys.stderr)
    return 1 if failed else 0


def cmd_demo(args) -> int:
    try:
        from .demo import main as serve
    except ImportError as err:
        raise UsageError(f"the demo needs the space extra: pip install 'colorgan-hub[space]' ({err})") from None
    with socket.socket() as probe:  # Gradio's own message names its settings, not our --port
        try:
            probe.bind((args.host, args.port))
        except OSError as err:
            raise UsageError(f"--port {args.port}: cannot serve on {args.host}:{args.port} ({err.strerror or err}): choose another port") from None
    serve(args.host, args.port)
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, format_markdown

    if not args.data.is_dir():
        raise UsageError(f"--data {args.data}: no such folder")
    inputs = Inputs([str(args.data)], args.recursive)
    for line in inputs.errors:
        report(line)
    paths, errors = inputs.paths, inputs.errors
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    paths = spread_evenly(paths, args.limit)
    model = load_model(args.model)
    generators = [load_model(spec) for spec in args.detector_generators]
    failed = []

    def bad_image(message):
        failed.append(message)
        report(message)

    try:
        result = evaluate(model, paths, protocol=args.protocol, size=args.size, batch_size=args.batch_size, report=bad_image,
                          temperature=args.temperature, vividness=args.vividness, generators=generators, detector=args.detector,
                          multiscale=args.multiscale)
    except ValueError as err:  # nothing usable to evaluate
        raise UsageError(str(err)) from None
    result["model"] = args.model or DEFAULT_MODEL
    print(format_markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if failed or errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorgan", description="Colorize grayscale photos with a conditional GAN.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("inputs", nargs="+", help="image files, folders, or quoted glob patterns")
        p.add_argument("--model", default=None, help="Hub model id or local save_pretrained folder (default: the bundled model)")
        p.add_argument("--size", type=int, default=None, help="working resolution, long side in px (default: the model's)")
        p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse images larger than this many pixels")
        p.add_argument("-r", "--recursive", action="store_true", help="also take the images in the folders' subfolders")

    p = sub.add_parser("colorize", help="colorize photos at full resolution")
    common(p)
    p.add_argument("-o", "--output-dir", type=Path, default=Path("colorized"), help="folder for the results (default: colorized/)")
    p.add_argument("--batch-size", type=int, default=8, help="images per network batch")
    p.add_argument("--vividness", type=float, default=None, help=VIVIDNESS_HELP)
    p.add_argument("--temperature", type=float, default=None, help=TEMPERATURE_HELP)
    p.add_argument("--multiscale", action="store_true", help=MULTISCALE_HELP)
    p.add_argument("--stability", type=float, default=STABILITY,
                   help=f"videos: share of the previous frame's colour carried along the motion, 0 (independent frames) to below 1 (default: {STABILITY})")
    p.add_argument("--upscale", type=int, default=1, metavar="N",
                   help="first bring the photo to N times its width and height (2 or 4) with the bundled lightness upscaler (default: 1, off)")
    p.add_argument("--variations", type=int, default=None, metavar="N",
                   help=f"write N different plausible colorizations of each photo, NAME-1 ... NAME-N (1 to {MAX_VARIATIONS}; photos only)")
    p.add_argument("--seed", type=int, default=0, help="which variations --variations draws: the same seed gives the same ones (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=cmd_colorize)

    p = sub.add_parser("score", help="probability that colour photos were photographed in colour (monochrome: a black-and-white or toned print)")
    common(p)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of lines")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("demo", help="start the Gradio demo on http://127.0.0.1:7860")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on")
    p.add_argument("--port", type=int, default=7860, help="port to serve on")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("evaluate", help="colour metrics against the gray baseline and the truth, and the detector's")
    p.add_argument("--data", type=Path, required=True, help="folder of colour photos (the ground truth)")
    p.add_argument("--model", default=None, help="Hub model id or local save_pretrained folder (default: the bundled model)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only N photos, spread evenly over the sorted list (a quick estimate)")
    p.add_argument("-r", "--recursive", action="store_true", help="also take the photos in the folder's subfolders")
    p.add_argument("--protocol", choices=["256", "full"], default="256", help="256: short side 256 + centre crop, as the papers; full: original size")
    p.add_argument("--size", type=int, default=None, help="working resolution, long side in px (default: the model's)")
    p.add_argument("--batch-size", type=int, default=8, help="images per network batch")
    p.add_argument("--vividness", type=float, default=None, help=VIVIDNESS_HELP)
    p.add_argument("--temperature", type=float, default=None, help=TEMPERATURE_HELP)
    p.add_argument("--multiscale", action="store_true", help=MULTISCALE_HELP)
    p.add_argument("--detector-generators", nargs="+", default=[], metavar="ID_OR_PATH",
                   help="other generators (checkpoints, the other head) for the detector's 'checkpoints' family; without them that family is left out")
    p.add_argument("--detector", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure the realness detector, most of the time taken (--no-detector: the colour metrics alone)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "size", None) is not None and args.size < 16:
        parser.error("--size must be at least 16")
    if getattr(args, "batch_size", 1) < 1:
        parser.error("--batch-size must be at least 1")
    if getattr(args, "temperature", None) is not None and not 0 < args.temperature <= 10:
        parser.error("--temperature must be in (0, 10]")
    if getattr(args, "vividness", None) is not None and not 0 <= args.vividness <= 1:
        parser.error("--vividness must be in [0, 1]")
    if getattr(args, "stability", None) is not None and not 0 <= args.stability < 1:
        parser.error("--stability must be in [0, 1)")
    if getattr(args, "upscale", 1) not in (1, *SCALES):
        parser.error(f"--upscale must be 1 (off), {' or '.join(map(str, SCALES))}")
    if getattr(args, "variations", None) is not None and not 1 <= args.variations <= MAX_VARIATIONS:
        parser.error(f"--variations must be between 1 and {MAX_VARIATIONS}")
    if getattr(args, "seed", 0) < 0:
        parser.error("--seed must be >= 0")
    try:
        return args.func(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
