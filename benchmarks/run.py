"""Run every benchmark and write benchmarks/results.json.

python benchmarks/run.py [--data ../shared/data/train] [--model ID_OR_PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bench_evaluate
import bench_inference
import bench_training
import bench_video

HERE = Path(__file__).parent

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "train"), help="training photos for the data-path benchmark")
    parser.add_argument("--model", help="model for the inference benchmark (default: the bundled one)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where to write the figures")
    args = parser.parse_args()
    inference = bench_inference.main(["--model", args.model] if args.model else [])
    print()
    training = bench_training.main(["--data", args.data])
    print()
    evaluation = bench_evaluate.main(["--data", str(Path(args.data).parent / "val")] + (["--model", args.model] if args.model else []))
    print()
    video = bench_video.main(["--data", str(Path(args.data).parent)] + (["--model", args.model] if args.model else []))
    args.json.write_text(json.dumps({"inference": inference, "training": training, "evaluate": evaluation, "video": video}, indent=2))
    print(f"\nwrote {args.json}")
