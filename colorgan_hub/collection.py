"""Colorize a whole collection: a dataset in, a colorized dataset out, on one process or many.

    colorgan colorize-dataset SOURCE -o OUT_DIR [--score] [--push-to-hub USER/NAME]
    accelerate launch -m colorgan_hub.cli colorize-dataset SOURCE -o OUT_DIR   # one share per process

SOURCE is a Hub dataset id, a local folder of photos (the `imagefolder` builder) or Parquet files;
it is streamed with `datasets`, its images left undecoded until their turn, so the collection is
never in memory, nor on disk a second time. Each process takes its share with
`datasets.distributed.split_dataset_by_node` (whole source shards when their number divides among
the processes, else every n-th row) and colorizes it on its own device (`accelerate`'s
PartialState: its GPU under `accelerate launch` on a GPU machine).

OUT_DIR is a dataset in the Hub's layout: `data/*.parquet` shards and a dataset card (README.md)
that `datasets.load_dataset(OUT_DIR)` reads. Every column of the source is kept; added are
`colorized` (an image the size of the source's, its lightness the source's), `error` (None, or why
that row's image could not be colorized: the row is kept, the job goes on) and, with `score`,
`realness`. Rows are grouped by process (process 0's share first, each share in source order),
which with one process is the source order; any number of processes gives the same rows, and
with one photo per network batch (`--batch-size 1`, the default) the same pixels: a convolution's
rounding can depend on its batch's size, and the shares' batches differ.

Nothing is lost when a job is killed: each shard is written under a temporary name and renamed,
then recorded in OUT_DIR/.colorgan/process-P.json; the same command with `resume` skips the
recorded shards (without decoding their images) and ends with the same dataset as an uninterrupted
run. `colorize_batch` is the same work for `dataset.map(..., batched=True)`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .image_io import ImageError, load_image

JOB_FILE = "colorgan-job.json"
STATE_DIR = ".colorgan"
DATA_DIR = "data"
OUR_COLUMNS = ("colorized", "error", "realness")
JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
ROWS_PER_STEP = 8  # rows read and decoded before the network runs on them


class CollectionError(ValueError):
    """A job that cannot start, in one line (the CLI's exit 2)."""


@dataclass
class Job:
    """What a job colorizes and how: recorded in OUT_DIR/colorgan-job.json, so that a resumed job
    is the same job."""

    source: str
    split: str = "train"
    config: str | None = None
    image_column: str | None = None
    model: str = ""
    options: dict = field(default_factory=dict)  # colorize options (size, vividness, multiscale, ...)
    score: bool = False
    image_format: str = "auto"  # "png", "jpeg", or "auto": JPEG for JPEG sources, PNG otherwise
    shard_size: int = 500
    processes: int = 1
    id: str = ""  # given when the job starts: in its shards' names


# ---------------------------------------------------------------------------------------------
# The source.


def open_source(job: Job):
    """The source as a streamed `datasets.IterableDataset` with its images undecoded, and the name
    of its image column. CollectionError for a source that cannot be opened."""
    import datasets

    path = Path(job.source).expanduser()
    try:
        if path.is_dir() and not any(path.glob("*.parquet")) and not (path / "README.md").exists():
            stream = datasets.load_dataset("imagefolder", data_files={"train": str(path / "**")}, split="train", streaming=True)
        elif path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet"))):
            files = str(path) if path.is_file() else str(path / "*.parquet")
            stream = datasets.load_dataset("parquet", data_files={"train": files}, split="train", streaming=True)
        elif "*" in job.source:
            stream = datasets.load_dataset("parquet", data_files={"train": job.source}, split="train", streaming=True)
        else:
            stream = datasets.load_dataset(job.source, job.config, split=job.split, streaming=True)
    except Exception as err:  # the datasets library raises many kinds for a source it cannot open
        raise CollectionError(f"{job.source}: cannot open this dataset ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    features = stream.features
    if features is None:
        raise CollectionError(f"{job.source}: its columns are not known before reading it (no dataset features)")
    image_columns = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
    column = job.image_column or (image_columns[0] if image_columns else None)
    if column is None:
        raise CollectionError(f"{job.source}: no image column (columns: {', '.join(features)}); name one with --image-column")
    if column not in features:
        raise CollectionError(f"{job.source}: no column {column!r} (columns: {', '.join(features)})")
    if not isinstance(features[column], datasets.Image):
        raise CollectionError(f"{job.source}: column {column!r} holds {type(features[column]).__name__}, not images")
    clash = [name for name in OUR_COLUMNS if name in features]
    if clash:
        raise CollectionError(f"{job.source}: already has a column {clash[0]!r}, which the output adds")
    return stream.cast_column(column, datasets.Image(decode=False)), column


def output_features(source_features, column: str, score: bool):
    """The output's columns: the source's, then colorized, error and (with `score`) realness."""
    import datasets

    features = dict(source_features)
    features[column] = datasets.Image()
    features["colorized"] = datasets.Image()
    features["error"] = datasets.Value("string")
    if score:
        features["realness"] = datasets.Value("float32")
    return datasets.Features(features)


# ---------------------------------------------------------------------------------------------
# One batch of rows: what both the job and `colorize_batch` do.


def _row_name(image: dict | None, index: int) -> str:
    path = (image or {}).get("path")
    return str(path) if path else f"row {index}"


def _encoded(image, fmt: str) -> dict:
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=95, subsampling=0)
    else:
        image.save(buffer, format="PNG", compress_level=1)  # lossless; level 1: fast, most of the size gain
    return {"bytes": buffer.getvalue(), "path": None}


def colorize_rows(
    model, images: list[dict | None], first_index: int, options: dict, score: bool, image_format: str, max_pixels: int, device=None, batch_size: int = 1
) -> tuple[list[dict | None], list[str | None], list[float | None]]:
    """Undecoded images ({"bytes", "path"}, as `datasets.Image(decode=False)` gives them) ->
    (colorized images as {"bytes", "path"}, errors, realness scores), `batch_size` photos per
    network batch. A row that fails keeps None and its reason."""
    loaded, errors = [], [None] * len(images)
    for k, image in enumerate(images):
        name = _row_name(image, first_index + k)
        try:
            if not image or (image.get("bytes") is None and not image.get("path")):
                raise ImageError(name, "no image in this row")
            encoded = image["path"] if image.get("bytes") is None else image["bytes"]  # a local folder's rows hold a path
            loaded.append(load_image(encoded, max_pixels=max_pixels, source=name))
        except ImageError as err:
            loaded.append(None)
            errors[k] = err.reason
    todo = [k for k, img in enumerate(loaded) if img is not None]
    outputs = (
        model.colorize([loaded[k] for k in todo], batch_size=batch_size, return_exceptions=True, max_pixels=max_pixels, device=device, **options)
        if todo
        else []
    )
    colorized, scores = [None] * len(images), [None] * len(images)
    for k, out in zip(todo, outputs):
        if isinstance(out, Exception):
            errors[k] = getattr(out, "reason", str(out))
            continue
        path = (images[k] or {}).get("path") or ""
        fmt = image_format if image_format != "auto" else "jpeg" if path.lower().endswith(JPEG_SUFFIXES) else "png"
        colorized[k] = _encoded(out, fmt)
        if score:
            scores[k] = float(model.realness(out, allow_grayscale=True, device=device))
    return colorized, errors, scores


def colorize_batch(model, column: str = "image", output_column: str = "colorized", **options):
    """A function for `dataset.map(fn, batched=True)`: it takes a batch (a dict of columns) with
    decoded images in `column` (PIL images, as `datasets` gives them) and returns it with
    `output_column` (the colorized PIL images; None where an image failed) and "error" (None, or
    why) added. `options` go to `colorize` (size, vividness, multiscale, hints are per photo and
    not taken here, reference, ...).

        ds = load_dataset("imagefolder", data_dir="scans", split="train", streaming=True)
        ds = ds.map(colorize_batch(model), batched=True, batch_size=8)
    """

    def fn(batch: dict) -> dict:
        outputs = model.colorize(list(batch[column]), return_exceptions=True, **options) if batch[column] else []
        errors = [getattr(out, "reason", str(out)) if isinstance(out, Exception) else None for out in outputs]
        return {**batch, output_column: [None if isinstance(out, Exception) else out for out in outputs], "error": errors}

    return fn


# ---------------------------------------------------------------------------------------------
# The job: records, shards, the card.


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _progress_file(out_dir: Path, process: int) -> Path:
    return out_dir / STATE_DIR / f"process-{process}.json"


def read_progress(out_dir: Path, process: int) -> dict:
    path = _progress_file(out_dir, process)
    return json.loads(path.read_text()) if path.exists() else {"shards": 0, "rows": 0, "colorized": 0, "failed": 0, "finished": False}


def prepare_output(out_dir: Path, job: Job, resume: bool, overwrite: bool) -> bool:
    """Check OUT_DIR before anything is done (main process). Returns whether this is a resumed
    job. CollectionError for a folder that holds something else, or another job's output without
    --resume / --overwrite. A new job gets an id of its own, in its shards' names and the card's
    file pattern: `datasets` caches a local dataset by its card's configuration, so a job done
    again into the same folder must not look like the one before."""
    record = out_dir / JOB_FILE
    if out_dir.exists() and not out_dir.is_dir():
        raise CollectionError(f"-o {out_dir}: exists and is not a folder")
    if record.exists():
        if overwrite:
            for name in (DATA_DIR, STATE_DIR):
                shutil.rmtree(out_dir / name, ignore_errors=True)
            for name in (JOB_FILE, "README.md"):
                (out_dir / name).unlink(missing_ok=True)
        elif resume:
            before = json.loads(record.read_text())
            job_id = before.pop("id", "")
            now = {k: v for k, v in asdict(job).items() if k != "id"}
            if before != now:
                changed = [k for k in now if before.get(k) != now[k]]
                raise CollectionError(
                    f"-o {out_dir}: holds a job with other settings ({', '.join(changed)}); give the same settings to resume it, or --overwrite"
                )
            job.id = job_id
            return True
        else:
            raise CollectionError(f"-o {out_dir}: holds another colorize-dataset job's output: --resume to finish it, --overwrite to start again")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise CollectionError(f"-o {out_dir}: the folder is not empty and holds no colorize-dataset job: choose a new or empty folder")
    (out_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
    (out_dir / STATE_DIR).mkdir(exist_ok=True)
    job.id = uuid.uuid4().hex[:8]
    _write_json(record, asdict(job))
    return False


def read_job(out_dir: Path) -> Job:
    """The job recorded in OUT_DIR (its id included)."""
    return Job(**json.loads((out_dir / JOB_FILE).read_text()))


@dataclass
class Counts:
    rows: int = 0
    colorized: int = 0
    failed: int = 0
    skipped: int = 0  # rows of shards a resumed job found done
    seconds: float = 0.0


def run_share(
    model, job: Job, out_dir: Path, process: int, processes: int, device=None, max_pixels: int = 50_000_000, batch_size: int = 1, progress=None
) -> Counts:
    """Colorize this process's share of the source into its shards, skipping those already done,
    `batch_size` photos per network batch (rows are read 8 at a time, or `batch_size` if larger).
    `progress(rows)` is called as rows are finished."""
    import datasets
    import pyarrow.parquet as pq
    from datasets.distributed import split_dataset_by_node
    from datasets.table import embed_table_storage

    datasets.disable_progress_bars()  # one bar for the job, not one per shard written
    stream, column = open_source(job)
    features = output_features(stream.features, column, job.score)
    share = split_dataset_by_node(stream, rank=process, world_size=processes)
    state = read_progress(out_dir, process)
    counts = Counts(skipped=state["rows"])
    if state["finished"]:
        return counts
    if state["rows"]:
        share = share.skip(state["rows"])  # rows of recorded shards: not decoded again
        if progress:
            progress(state["rows"])
    started = time.perf_counter()
    rows, shard = [], state["shards"]

    def write_shard():
        nonlocal rows, shard
        name = out_dir / DATA_DIR / f"{job.split}-{job.id}-{process:05d}-of-{processes:05d}-{shard:06d}.parquet"
        tmp = name.with_name(f".{name.name}.tmp")
        table = embed_table_storage(datasets.Dataset.from_list(rows, features=features).data.table)  # local files' bytes go into the shard
        pq.write_table(table, str(tmp))
        os.replace(tmp, name)
        state["shards"], state["rows"] = shard + 1, state["rows"] + len(rows)
        state["colorized"] += sum(r["colorized"] is not None for r in rows)
        state["failed"] += sum(r["colorized"] is None for r in rows)
        _write_json(_progress_file(out_dir, process), state)
        shard += 1
        rows = []

    batch = []

    def flush():
        colorized, errors, scores = colorize_rows(
            model, [r[column] for r in batch], state["rows"] + len(rows), job.options, job.score, job.image_format, max_pixels, device, batch_size
        )
        for row, image, error, value in zip(batch, colorized, errors, scores):
            out = {**row, "colorized": image, "error": error}
            if job.score:
                out["realness"] = value
            rows.append(out)
            counts.rows += 1
            counts.colorized += image is not None
            counts.failed += image is None
        if progress:
            progress(len(batch))
        batch.clear()

    for row in share:
        batch.append(row)
        if len(batch) == max(batch_size, ROWS_PER_STEP) or len(rows) + len(batch) >= job.shard_size:
            flush()
            if len(rows) >= job.shard_size:
                write_shard()
    if batch:
        flush()
    if rows:
        write_shard()
    state["finished"] = True
    _write_json(_progress_file(out_dir, process), state)
    counts.seconds = time.perf_counter() - started
    return counts


def totals(out_dir: Path, processes: int) -> dict:
    """The whole job's counts from every process's record."""
    records = [read_progress(out_dir, p) for p in range(processes)]
    return {key: sum(r[key] for r in records) for key in ("rows", "colorized", "failed", "shards")} | {"finished": all(r["finished"] for r in records)}


def write_card(out_dir: Path, job: Job, counts: dict) -> None:
    """README.md: the Hub's dataset card, whose YAML points `load_dataset` at the shards."""
    options = ", ".join(f"{k}={v}" for k, v in job.options.items() if v is not None) or "the model's defaults"
    card = f"""---
configs:
- config_name: default
  data_files:
  - split: {job.split}
    path: {DATA_DIR}/{job.split}-{job.id}-*.parquet
tags:
- colorization
- colorgan-hub
---

# {Path(job.source).name or job.source}, colorized

Every photo of `{job.source}` (split `{job.split}`{f", configuration `{job.config}`" if job.config else ""}) colorized by
[ColorGAN Hub](https://github.com/colorgan-hub/colorgan-hub) with the model `{job.model}` ({options}).

- Rows: {counts["rows"]}; colorized: {counts["colorized"]}; failed: {counts["failed"]} (their `error` column says why).
- Columns: every column of the source; `colorized`, the photo colorized at its own size with its own lightness;
  `error`{"; `realness`, the model's probability that the result was photographed in colour" if job.score else ""}.
- Made with {job.processes} process(es); rows are grouped by process (process 0's share first), each share in the
  source's order.

```python
from datasets import load_dataset
ds = load_dataset("{out_dir.name}")  # or the Hub id it was pushed to
```
"""
    (out_dir / "README.md").write_text(card, encoding="utf-8")
