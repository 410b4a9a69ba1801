"""Where a model's hue hits come from: the hue hit rates of `colorgan evaluate`, split by the
photos' source (the file name's prefix before the first "_", e.g. catsdogs_0001.jpg).

    python benchmarks/hue_by_source.py [--model ID_OR_PATH] [--data ../shared/data/val] [--json out.json]

For each hue family: how its chromatic truth pixels are spread over the sources, and each
source's hit rate, so that a pooled rate can be read (a family whose pixels are mostly pet
blankets is a different task from one that is mostly sky). Same protocol and definitions as
`colorgan evaluate --protocol 256` (colorgan_hub.metrics.hue_hits).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from colorgan_hub import DEFAULT_MODEL, metrics
from colorgan_hub.evaluate import load_truths
from colorgan_hub.image_io import list_images
from colorgan_hub.model import load_model

HERE = Path(__file__).parent


def source_of(name: str) -> str:
    return Path(name).name.split("_")[0]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="Hub id or save_pretrained folder (default: the bundled model)")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "val")
    parser.add_argument("--protocol", choices=["256", "full"], default="256")
    parser.add_argument("--vividness", type=float)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    model = load_model(args.model).eval()
    paths, _ = list_images(args.data, recursive=False)
    counts: dict[str, dict[str, np.ndarray]] = {}
    batch = 16
    for start in range(0, len(paths), batch):
        truths = load_truths(paths[start : start + batch], args.protocol)
        outputs = model.colorize([t for _, t in truths], vividness=args.vividness, temperature=args.temperature)
        for (name, truth), out in zip(truths, outputs):
            per = counts.setdefault(source_of(name), {f: np.zeros(2, np.int64) for f in metrics.HUE_FAMILIES})
            for family, c in metrics.hue_hits(np.asarray(out), np.asarray(truth)).items():
                per[family] += c
    pooled = metrics.hue_rates({f: sum(per[f] for per in counts.values()) for f in metrics.HUE_FAMILIES})
    by_source = {src: metrics.hue_rates(per) for src, per in counts.items()}
    result = {}
    for family in metrics.HUE_FAMILIES:
        total = sum(int(per[family][1]) for per in counts.values())
        rows = {src: {"share": int(per[family][1]) / total, "rate": by_source[src][family]} for src, per in counts.items() if per[family][1]}
        result[family] = {"pixels": total, "rate": pooled[family], "sources": dict(sorted(rows.items(), key=lambda kv: -kv[1]["share"]))}
        print(f"{family}: rate {pooled[family]:.3f} over {total} chromatic pixels")
        for src, row in result[family]["sources"].items():
            print(f"  {src:12s} {row['share']:6.1%} of the pixels, hit rate {row['rate']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "data": str(args.data), "protocol": args.protocol, "families": result}, indent=2))
    return result


if __name__ == "__main__":
    main()
