"""Collections: `colorgan colorize-dataset` against the folder command on the same photos, with 1
and 2 processes, and a large streamed collection's memory.

    python benchmarks/bench_dataset.py [--data ../shared/data/val ../shared/data/val_fullres] [--rows 20000] [--json OUT]

For each folder: wall-clock images per second of `colorgan colorize FOLDER -o OUT` (the folder
CLI) and of `colorgan colorize-dataset FOLDER -o OUT` with 1 and 2 processes (whole commands,
start-up included, as a user runs them), each command's peak resident memory (its processes
summed, sampled every 0.2 s) and the memory at a tenth and at the end of the run (flat when the
collection is streamed), and whether the 2-process dataset has the 1-process dataset's rows and
pixels (on a CPU the two differ in a few pixels by a level or two: each of 2 processes computes
with 1 thread, 1 process with 2, and PyTorch's CPU kernels round differently by thread count).
Then the large run: the first folder's photos repeated to `--rows` rows in a Parquet file,
streamed through one process, with its peak and its memory over the run. The folder CLI runs
with one photo per network batch, as colorize-dataset does by default.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from colorgan_hub.image_io import list_images


def tree_rss_mb(pid: int) -> float:
    """Resident memory (MB) of a process and its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(next(line for line in Path(f"/proc/{p}/status").read_text().splitlines() if line.startswith("VmRSS:")).split()[1])
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def timed(command: list[str]) -> dict:
    """Run a command: wall seconds, exit status, memory samples (MB) over the run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    while process.poll() is None:
        samples.append(tree_rss_mb(process.pid))
        time.sleep(0.2)
    err = process.stderr.read().strip()
    last = err.splitlines()[-1] if err else ""
    return {"seconds": time.perf_counter() - start, "status": process.returncode, "rss": samples, "last_line": last}


def memory(samples: list[float]) -> dict:
    if not samples:
        return {"peak_mb": float("nan"), "at_10pct_mb": float("nan"), "at_end_mb": float("nan")}
    return {"peak_mb": max(samples), "at_10pct_mb": samples[len(samples) // 10], "at_end_mb": samples[-1]}


def compare(a: Path, b: Path) -> dict:
    """Two output datasets: whether they hold the same rows (keyed by source file), how many
    colorized images are pixel for pixel the same, and the largest difference (8-bit levels)."""
    import datasets
    from PIL import Image

    def rows(path):
        ds = (
            datasets.load_dataset(str(path), split="train")
            .cast_column("image", datasets.Image(decode=False))
            .cast_column("colorized", datasets.Image(decode=False))
        )
        return {r["image"]["path"]: (r["colorized"] or {}).get("bytes") for r in ds}

    ra, rb = rows(a), rows(b)
    decode = lambda data: None if data is None else np.asarray(Image.open(io.BytesIO(data)), dtype=np.int16)
    differences = [0 if ra[k] is None and rb[k] is None else int(np.abs(decode(ra[k]) - decode(rb[k])).max()) for k in ra.keys() & rb.keys()]
    return {"same_rows": ra.keys() == rb.keys(), "rows": len(ra), "identical": sum(d == 0 for d in differences), "max_difference": max(differences, default=0)}


def colorgan(*args) -> list[str]:
    return [sys.executable, "-m", "colorgan_hub.cli", *map(str, args)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["../shared/data/val", "../shared/data/val_fullres"], help="photo folders")
    parser.add_argument("--rows", type=int, default=20000, help="rows of the large streamed collection (0: skip it)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for folder in args.data:
            photos = len(list_images(folder)[0])
            row = {"photos": photos}
            runs = {
                "folder CLI": colorgan("colorize", folder, "-o", tmp / "cli", "--overwrite", "--batch-size", "1"),  # the dataset's batch
                "dataset, 1 process": colorgan("colorize-dataset", folder, "-o", tmp / "one", "--overwrite"),
                "dataset, 2 processes": colorgan("colorize-dataset", folder, "-o", tmp / "two", "--overwrite", "--num-processes", "2"),
            }
            for name, command in runs.items():
                run = timed(command)
                row[name] = {
                    "images_per_s": photos / run["seconds"],
                    "seconds": run["seconds"],
                    "status": run["status"],
                    **memory(run["rss"]),
                    "last_line": run["last_line"],
                }
                print(
                    f"{folder}, {name}: {photos / run['seconds']:.1f} images/s ({run['seconds']:.0f} s), "
                    f"peak {row[name]['peak_mb']:.0f} MB; {run['last_line']}",
                    flush=True,
                )
            row["one_process_share_of_cli"] = row["dataset, 1 process"]["images_per_s"] / row["folder CLI"]["images_per_s"]
            row["two_against_one"] = c = compare(tmp / "one", tmp / "two")
            print(
                f"{folder}: 1 process at {row['one_process_share_of_cli']:.0%} of the folder CLI's rate (target 90%); 2-process output "
                f"against 1-process: same rows {c['same_rows']}, {c['identical']} of {c['rows']} images identical, largest difference "
                f"{c['max_difference']} level(s) of 255",
                flush=True,
            )
            results[folder] = row
        if args.rows:
            import datasets

            paths = list_images(args.data[0])[0]
            features = datasets.Features({"image": datasets.Image(), "index": datasets.Value("int64")})

            def rows():
                for i in range(args.rows):
                    path = paths[i % len(paths)]
                    yield {"image": {"bytes": path.read_bytes(), "path": f"{i:06d}-{path.name}"}, "index": i}

            source = tmp / "large.parquet"
            datasets.Dataset.from_generator(rows, features=features, cache_dir=str(tmp / "cache")).to_parquet(str(source))
            run = timed(colorgan("colorize-dataset", source, "-o", tmp / "large", "--no-multiscale"))
            results["large"] = {
                "rows": args.rows,
                "seconds": run["seconds"],
                "images_per_s": args.rows / run["seconds"],
                **memory(run["rss"]),
                "last_line": run["last_line"],
            }
            r = results["large"]
            print(
                f"large: {args.rows} rows streamed in {r['seconds']:.0f} s ({r['images_per_s']:.1f} images/s, one scale); memory peak "
                f"{r['peak_mb']:.0f} MB, at a tenth {r['at_10pct_mb']:.0f} MB, at the end {r['at_end_mb']:.0f} MB; {run['last_line']}"
            )
    if args.json:
        for row in results.values():
            for value in row.values() if isinstance(row, dict) else []:
                if isinstance(value, dict):
                    value.pop("rss", None)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
