"""The `colorgan` command line: colorize files and folders, score photos for realness.

    colorgan colorize old.jpg scans/ "more/*.png" film.mp4 -o colored/ [--model ID_OR_PATH] [--size 256] [--vividness 0.8]
                      [--upscale 2] [--variations 3 --seed 0] [--hint X,Y,#rrggbb ...] [--hints FILE.json] [--reference PHOTO]
    colorgan score photo.jpg colored/*.png [--model ID_OR_PATH] [--json]
    colorgan evaluate --data DIR [--model ID_OR_PATH] [--limit N] [--protocol 256|full] [--vividness V] [--temperature T]
                      [--detector-generators ID_OR_PATH ...] [--json OUT]
    colorgan demo [--host 127.0.0.1] [--port 7860]

One line per bad file on stderr, the rest carry on. Exit status: 0 all done, 1 some input
failed, 2 usage error (bad arguments, a model that cannot be loaded, a hint or reference that
cannot be used). Modules are imported when a command needs them: `--help` does not load torch.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import signal
import socket
import sys
from pathlib import Path

from tqdm.auto import tqdm

from . import DEFAULT_MODEL
from .image_io import DEFAULT_MAX_PIXELS, ImageError, NoColourError, list_images, load_image, output_path, save_image, spread_evenly
from .options import MAX_VARIATIONS, STABILITY, VIDEO_SUFFIXES, check_options

VIVIDNESS_HELP = "classification models: 0 (muted, safe) to 1 (bold, risky) colour (default: the model's own, chosen on validation)"
TEMPERATURE_HELP = "classification models: annealed-mean temperature, 1 the distribution's mean, towards 0 its likeliest colour (default: the model's own)"
MULTISCALE_HELP = (
    "classification models, photos: the network also sees each photo at 1.5x the working size and averages the "
    "two colour distributions (the default: more faithful colour; --no-multiscale: one scale, about 3x faster)"
)


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


def open_model(spec: str | None):
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
    total = len(inputs.paths) + len(inputs.videos) + len(inputs.errors)  # an input that named nothing usable counts as one that failed
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
    # disable=None: no bar when stderr is not a terminal (a log would fill with bar updates between the error lines)
    return tqdm(items, desc=what, unit="image", disable=True if len(items) <= 1 else None, file=sys.stderr)


def cmd_colorize(args) -> int:
    from .guidance import HintError

    inputs = Inputs(args.inputs, args.recursive, videos=True)
    created = _output_folder(args.output_dir)
    for line in inputs.notes:
        report(line, "note")
    for line in inputs.errors:
        report(line)
    paths = inputs.paths
    model = open_model(args.model)
    multiscale = model.head == "classification" if args.multiscale is None else args.multiscale  # the default where the model can
    if multiscale and model.head != "classification":
        raise UsageError("--multiscale needs a model with the classification head (this one regresses ab)")
    if args.variations and model.head != "classification":
        raise UsageError("--variations needs a model with the classification head (this one regresses ab)")
    hints_for, reference = _guidance(args, model, paths)
    failed, written, claimed, hint_failures = len(inputs.errors), 0, {}, 0
    pending = []  # (path, image, destination) waiting for a batch

    def flush():
        nonlocal failed, written, hint_failures
        if not pending:
            return
        hints = [hints_for(path) for path, _, _ in pending] if hints_for else None
        outputs = model.colorize(
            [img for _, img, _ in pending],
            size=args.size,
            batch_size=args.batch_size,
            temperature=args.temperature,
            vividness=args.vividness,
            max_pixels=args.max_pixels,
            return_exceptions=True,
            upscale=args.upscale,
            variations=args.variations,
            seed=args.seed,
            multiscale=multiscale,
            hints=hints,
            reference=reference,
        )
        for (_, _, dests), out in zip(pending, outputs):
            if isinstance(out, Exception):  # one photo's failure is its own: the batch's others are written
                report(str(out))
                failed += 1
                hint_failures += isinstance(out, HintError)
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
    if inputs.videos and (args.upscale > 1 or args.variations or hints_for):
        report("videos are colorized once, at their own size, with --reference only: --upscale, --variations and hints apply to photos", "note")
    for path in inputs.videos:
        done = _colorize_video(model, path, args, claimed, reference)
        written += done
        failed += not done
    if created and not written:  # nothing came out: leave no empty folder behind
        with contextlib.suppress(OSError):
            args.output_dir.rmdir()
    print(_summary("colorized", written, inputs, failed, f" into {args.output_dir}"), file=sys.stderr)
    return 2 if hint_failures else 1 if failed else 0


def _guidance(args, model, paths: list[Path]):
    """(hints_for(path) -> that photo's hints or None, or None when no hints were given; the
    reference as a loaded image, or None), from --hint, --hints and --reference. UsageError for
    a malformed hint or file, an unusable reference, or a model without guidance inputs."""
    from .guidance import NO_GUIDANCE, HintError, parse_colour, read_reference

    hints_for, reference = None, None
    if not (args.hint or args.hints or args.reference):
        return hints_for, reference
    if getattr(model, "guidance", None) is None:
        raise UsageError(NO_GUIDANCE)
    if args.hints:
        hints_for = _hints_file(args.hints, paths)
    if args.hint:
        extra = args.hint
        by_file = hints_for
        hints_for = lambda path: (by_file(path) or []) + extra if by_file else extra  # noqa: E731 (--hint: on every photo)
    for path in paths if hints_for else []:
        for n, hint in enumerate(hints_for(path) or [], 1):
            try:
                parse_colour(hint[2])
            except HintError as err:
                raise UsageError(f"hint {n} for {path}: {err}") from None
    if args.reference:
        try:
            reference = load_image(args.reference, max_pixels=args.max_pixels)
            read_reference(reference, model.generator.bins)  # checked once, before any photo
        except (ImageError, HintError) as err:
            raise UsageError(f"--reference: {err}") from None
    return hints_for, reference


def _hint_flag(text: str) -> tuple[float, float, str]:
    """--hint X,Y,COLOUR -> (x, y, colour); argparse's error otherwise."""
    parts = text.split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        return float(parts[0]), float(parts[1]), parts[2].strip()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y,COLOUR (e.g. 120,80,#2a5db0)") from None


def _hints_file(path: Path, photos: list[Path]):
    """--hints FILE.json: a list of {"x":, "y":, "colour":} for one photo, or an object keyed by
    file name (or path as given) for several -> hints_for(path). UsageError, naming the file, for
    anything else."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise UsageError(f"--hints {path}: cannot read it ({err.strerror or err})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"--hints {path}: not JSON ({err})") from None

    def hint_list(value, where: str) -> list:
        if not isinstance(value, list):
            raise UsageError(f'--hints {path}: {where} must be a list of {{"x":, "y":, "colour":}}')
        out = []
        for n, item in enumerate(value, 1):
            colour = item.get("colour", item.get("color")) if isinstance(item, dict) else None
            try:
                out.append((float(item["x"]), float(item["y"]), colour if isinstance(colour, str) else list(colour)))
            except (KeyError, TypeError, ValueError):
                raise UsageError(f'--hints {path}: {where}, hint {n} is not {{"x": number, "y": number, "colour": "#rrggbb"}}: {item!r}') from None
        return out

    if isinstance(data, list):
        if len(photos) > 1:
            raise UsageError(f"--hints {path}: a list of hints is for one photo; for {len(photos)} photos key them by file name")
        hints = hint_list(data, "the list")
        return lambda photo: hints
    if not isinstance(data, dict):
        raise UsageError(f"--hints {path}: must be a list of hints or an object keyed by file name")
    by_name = {key: hint_list(value, f"{key!r}") for key, value in data.items()}
    known = {str(p) for p in photos} | {p.name for p in photos}
    unknown = [key for key in by_name if key not in known]
    if unknown:
        raise UsageError(f"--hints {path}: no input photo is named {unknown[0]!r}")
    return lambda photo: by_name.get(str(photo), by_name.get(photo.name))


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


def _colorize_video(model, path: Path, args, claimed: dict, reference=None) -> bool:
    """One video file into the output folder, with a progress bar in frames; False if it failed."""
    from .video import VideoError, colorize_video, video_output_path

    dest = video_output_path(path, args.output_dir)
    problem = _destination_problem(path, dest, claimed, args.overwrite)
    if problem:
        report(problem)
        return False
    claimed[dest] = path
    bars = []  # made at the first frame: a file that fails to open prints its error line only

    def progress(done, expected):
        if not bars:
            bars.append(tqdm(desc=path.name, total=expected, unit="frame", file=sys.stderr, leave=False, disable=None))
        bars[0].update(done - bars[0].n)

    if args.multiscale:
        report(f"{path}: --multiscale is for photos; the video's frames are colorized at one scale", "note")
    try:
        result = colorize_video(
            model,
            path,
            dest,
            size=args.size,
            stability=args.stability,
            vividness=args.vividness,
            temperature=args.temperature,
            progress=progress,
            max_pixels=args.max_pixels,
            reference=reference,
        )
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
    model = open_model(args.model)
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


def cmd_colorize_dataset(args) -> int:
    try:
        import datasets  # noqa: F401
        from accelerate import PartialState
    except ImportError as err:
        raise UsageError(f"colorize-dataset needs the datasets extra: pip install 'colorgan-hub[datasets]' ({err})") from None
    import torch

    from .collection import CollectionError, Job, prepare_output, read_job, run_share, totals, write_card

    if args.num_processes > 1 and "LOCAL_RANK" not in os.environ:  # the shortcut: the same command under `accelerate launch`
        return _relaunch(args)
    state = PartialState(cpu=not (torch.cuda.is_available() or torch.backends.mps.is_available()))
    if state.num_processes > 1 and "numba" not in sys.modules:
        # the full-resolution recombination's threads (numba) share each process's CPU threads, as torch's do (accelerate
        # launch gives each process OMP_NUM_THREADS); a thread per core in every process made 2 processes 4x slower than 1
        os.environ.setdefault("NUMBA_NUM_THREADS", str(torch.get_num_threads()))
    if args.reference and not Path(args.reference).is_file():
        raise UsageError(f"--reference {args.reference}: no such file")
    options = {
        "size": args.size,
        "vividness": args.vividness,
        "temperature": args.temperature,
        "multiscale": args.multiscale,
        "upscale": args.upscale,
        "reference": args.reference,
    }
    job = Job(
        source=args.source,
        split=args.split,
        config=args.config,
        image_column=args.image_column,
        model=args.model or DEFAULT_MODEL,
        options={k: v for k, v in options.items() if v is not None and not (k == "upscale" and v == 1)},
        score=args.score,
        image_format=args.format,
        shard_size=args.shard_size,
        processes=state.num_processes,
    )
    out_dir = args.output_dir
    problem = None
    if state.is_main_process:
        try:
            from .collection import open_source

            open_source(job)  # a source that cannot be opened stops the job before anything is written
            prepare_output(out_dir, job, args.resume, args.overwrite)
        except CollectionError as err:
            problem = str(err)
    problem = _shared(state, problem)
    if problem:
        raise UsageError(problem)
    job.id = read_job(out_dir).id  # every process names its shards with the job's id
    model = open_model(args.model)
    if job.options.get("reference"):
        from .guidance import HintError, read_reference

        if getattr(model, "guidance", None) is None:
            raise UsageError("--reference: the model takes no reference photo (it has no guidance inputs)")
        try:
            read_reference(job.options["reference"], model.generator.bins)
        except HintError as err:
            raise UsageError(f"--reference: {err}") from None
    bar = tqdm(desc="colorize-dataset", unit="image", file=sys.stderr, disable=None if state.is_main_process else True, total=_expected_rows(job, state))
    try:
        counts = run_share(
            model,
            job,
            out_dir,
            state.process_index,
            state.num_processes,
            device=state.device,
            max_pixels=args.max_pixels,
            batch_size=args.batch_size,
            progress=lambda n: bar.update(n * state.num_processes),
        )
    except CollectionError as err:
        raise UsageError(str(err)) from None
    finally:
        bar.close()
    state.wait_for_everyone()
    if not state.is_main_process:
        return 0
    done = totals(out_dir, state.num_processes)
    write_card(out_dir, job, done)
    skipped = f", {counts.skipped * state.num_processes if counts.skipped else 0} already done" if args.resume else ""
    print(
        f"colorized {done['colorized']} of {done['rows']} row(s) into {out_dir} ({done['failed']} failed{skipped}; "
        f"{state.num_processes} process(es), {done['shards']} shard(s))",
        file=sys.stderr,
    )
    if args.push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        try:
            api.create_repo(args.push_to_hub, repo_type="dataset", exist_ok=True)
            api.upload_folder(repo_id=args.push_to_hub, folder_path=str(out_dir), repo_type="dataset", ignore_patterns=[".colorgan/*", "colorgan-job.json"])
        except Exception as err:  # offline, no token, no rights: the dataset itself is complete on disk
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"error: --push-to-hub {args.push_to_hub}: {reason} (the dataset is complete in {out_dir})", file=sys.stderr)
            return 2
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}", file=sys.stderr)
    return 1 if done["failed"] else 0


def _shared(state, value):
    """The main process's `value`, on every process."""
    if state.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def _expected_rows(job, state) -> int | None:
    """How many rows the progress bar expects: the file count of a local folder, a Hub split's size, or None."""
    path = Path(job.source)
    if path.is_dir() and not any(path.glob("*.parquet")):
        return len(list_images(path)[0])
    return None


def _relaunch(args) -> int:
    """--num-processes N: the same command under `accelerate launch` with N processes."""
    import subprocess

    argv = [a for a in args.argv if not a.startswith("--num-processes")]
    if "--num-processes" in args.argv:
        at = args.argv.index("--num-processes")
        argv = args.argv[:at] + args.argv[at + 2 :]
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(args.num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "colorgan_hub.cli",
        *argv,
    ]
    return subprocess.call(command)


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
    # stopped by SIGTERM (a service manager, `timeout`, `kill`) as by Ctrl-C: the server closes and
    # the command ends with 0, so that `make demo` ends without an error line either way
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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
    model = open_model(args.model)
    generators = [open_model(spec) for spec in args.detector_generators]
    failed = []

    def bad_image(message):
        failed.append(message)
        report(message)

    try:
        result = evaluate(
            model,
            paths,
            protocol=args.protocol,
            size=args.size,
            batch_size=args.batch_size,
            report=bad_image,
            temperature=args.temperature,
            vividness=args.vividness,
            generators=generators,
            detector=args.detector,
            multiscale=args.multiscale,
        )
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
    p.add_argument("--multiscale", action=argparse.BooleanOptionalAction, default=None, help=MULTISCALE_HELP)
    p.add_argument(
        "--hint",
        type=_hint_flag,
        action="append",
        default=[],
        metavar="X,Y,COLOUR",
        help="a colour hint: that region of the photo takes COLOUR (#rrggbb), X and Y in the photo's pixels from the top left "
        "(repeat for more; on every input photo)",
    )
    p.add_argument(
        "--hints", type=Path, metavar="FILE.json", help='hints from a file: a list of {"x":, "y":, "colour":} for one photo, or an object keyed by file name'
    )
    p.add_argument("--reference", metavar="PHOTO", help="a colour photo whose palette the results take (photos and videos)")
    p.add_argument(
        "--stability",
        type=float,
        default=STABILITY,
        help=f"videos: share of the previous frame's colour carried along the motion, 0 (independent frames) to below 1 (default: {STABILITY})",
    )
    p.add_argument(
        "--upscale",
        type=int,
        default=1,
        metavar="N",
        help="first bring the photo to N times its width and height (2 or 4) with the bundled lightness upscaler (default: 1, off)",
    )
    p.add_argument(
        "--variations",
        type=int,
        default=None,
        metavar="N",
        help=f"write N different plausible colorizations of each photo, NAME-1 ... NAME-N (1 to {MAX_VARIATIONS}; photos only)",
    )
    p.add_argument("--seed", type=int, default=0, help="which variations --variations draws: the same seed gives the same ones (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=cmd_colorize, subparser=p)

    p = sub.add_parser("colorize-dataset", help="colorize a whole dataset (Hub id, folder or Parquet files) into a dataset of Parquet shards")
    p.add_argument("source", help="a Hub dataset id, a local folder of photos, or Parquet files (a file, a folder of them, or a quoted pattern)")
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="folder for the colorized dataset (Parquet shards and a card)")
    p.add_argument("--split", default="train", help="the split to colorize (Hub datasets; default: train)")
    p.add_argument("--config", default=None, help="the dataset's configuration (Hub datasets with several)")
    p.add_argument("--image-column", default=None, help="the column of photos (default: the first image column)")
    p.add_argument("--model", default=None, help="Hub model id or local save_pretrained folder (default: the bundled model)")
    p.add_argument("--size", type=int, default=None, help="working resolution, long side in px (default: the model's)")
    p.add_argument("--vividness", type=float, default=None, help=VIVIDNESS_HELP)
    p.add_argument("--temperature", type=float, default=None, help=TEMPERATURE_HELP)
    p.add_argument("--multiscale", action=argparse.BooleanOptionalAction, default=None, help=MULTISCALE_HELP)
    p.add_argument("--upscale", type=int, default=1, metavar="N", help="bring each photo to N times its size first (2 or 4; default: 1, off)")
    p.add_argument("--reference", metavar="PHOTO", help="a colour photo whose palette every result takes")
    p.add_argument("--score", action="store_true", help="also add each result's realness score (a 'realness' column)")
    p.add_argument(
        "--format",
        choices=["auto", "png", "jpeg"],
        default="auto",
        help="how the colorized images are stored: auto (JPEG quality 95 for JPEG sources, PNG otherwise), png or jpeg",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="images per network batch (default 1: the fastest on a CPU, and the same pixels whatever the number of processes; "
        "larger batches may run faster on a GPU, their pixels can differ by a rounding)",
    )
    p.add_argument("--shard-size", type=int, default=500, help="rows per Parquet shard (the unit a killed job redoes)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse images larger than this many pixels (their row gets the error)")
    p.add_argument(
        "--num-processes",
        type=int,
        default=1,
        metavar="N",
        help="run N processes (the same command under `accelerate launch`; each takes its share of the rows)",
    )
    p.add_argument("--resume", action="store_true", help="finish a killed job in --output-dir: its finished shards are kept")
    p.add_argument("--overwrite", action="store_true", help="replace a finished or killed job's output in --output-dir")
    p.add_argument("--push-to-hub", metavar="USER/NAME", help="upload the finished dataset to the Hub")
    p.set_defaults(func=cmd_colorize_dataset, subparser=p)

    p = sub.add_parser("score", help="probability that colour photos were photographed in colour (monochrome: a black-and-white or toned print)")
    common(p)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of lines")
    p.set_defaults(func=cmd_score, subparser=p)

    p = sub.add_parser("demo", help="start the Gradio demo on http://127.0.0.1:7860")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on")
    p.add_argument("--port", type=int, default=7860, help="port to serve on")
    p.set_defaults(func=cmd_demo, subparser=p)

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
    p.add_argument("--multiscale", action=argparse.BooleanOptionalAction, default=None, help=MULTISCALE_HELP)
    p.add_argument(
        "--detector-generators",
        nargs="+",
        default=[],
        metavar="ID_OR_PATH",
        help="other generators (checkpoints, the other head) for the detector's 'checkpoints' family; without them that family is left out",
    )
    p.add_argument(
        "--detector",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the realness detector, most of the time taken (--no-detector: the colour metrics alone)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    p.set_defaults(func=cmd_evaluate, subparser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:  # the options' one check (colorgan_hub.options), as the library makes it; the subcommand's usage on error
        check_options(
            **{
                name: getattr(args, name)
                for name in ("temperature", "vividness", "batch_size", "upscale", "variations", "seed", "size", "stability")
                if getattr(args, name, None) is not None
            }
        )
        if getattr(args, "shard_size", 1) < 1 or getattr(args, "num_processes", 1) < 1:
            raise ValueError(f"{'shard_size' if args.shard_size < 1 else 'num_processes'} must be at least 1")
        if getattr(args, "resume", False) and getattr(args, "overwrite", False):
            raise ValueError("resume and --overwrite: give one of them")
    except ValueError as err:
        name, rest = str(err).split(" ", 1)
        args.subparser.error(f"--{name.replace('_', '-')} {rest}")
    try:
        return args.func(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# Commands that end when their work is done: once every file is closed and the output flushed, the
# console script leaves at once instead of waiting for the interpreter's teardown, which with torch
# and numba loaded takes 0.4-0.8 s (as long as colorizing a photo). Not the demo (its temporary
# folders go at exit), nor colorize-dataset (its process group), nor `main()` called from Python.
QUICK_EXIT = ("colorize", "score", "evaluate")


def run() -> None:
    """The `colorgan` console script."""
    code = main()
    if len(sys.argv) > 1 and sys.argv[1] in QUICK_EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
