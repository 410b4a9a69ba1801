"""How long `colorgan evaluate --protocol 256` takes on a folder, stage by stage.

    python benchmarks/bench_evaluate.py [--data ../shared/data/val] [--model ID_OR_PATH]

Times the same `evaluate` call the CLI makes (model, gray, constant-colour and ground-truth rows,
then the detector clean / JPEG 75 / half size, then the detector against the colorizer family
without the other-generators family), with each stage's share from its progress bar.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from colorgan_hub import DEFAULT_MODEL
from colorgan_hub import evaluate as evaluation
from colorgan_hub.image_io import list_images
from colorgan_hub.model import load_model

HERE = Path(__file__).parent


class StageClock:
    """Wraps evaluate's progress bars to note when each stage starts and ends."""

    def __init__(self):
        self.stages, self._bar = {}, evaluation._bar

    def __enter__(self):
        def timed_bar(total, desc, enabled):
            bar = self._bar(total, desc, False)
            start = time.perf_counter()
            close = bar.close

            def closing():
                self.stages[desc] = time.perf_counter() - start
                close()

            bar.close = closing
            return bar

        evaluation._bar = timed_bar
        return self

    def __exit__(self, *exc):
        evaluation._bar = self._bar


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "val"), help="folder of colour photos")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Hub id or folder (default: the bundled model)")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    paths = list_images(args.data, recursive=False)[0]
    start = time.perf_counter()
    with StageClock() as clock:
        evaluation.evaluate(model, paths, protocol="256")
    result = {"photos": len(paths), "total_s": time.perf_counter() - start, "stages_s": clock.stages}
    print(
        f"colorgan evaluate --protocol 256 on {len(paths)} photos: {result['total_s']:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in clock.stages.items())})"
    )
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
