"""Several threads on one freshly loaded model, in many fresh processes: the script of
`tests/test_concurrency.py` (the bundled model called from 4 threads at once through every
inference path, then compared with one thread) run `--runs` times, each in a new process.

    python benchmarks/bench_threads.py [--runs 20] [--json OUT]

Prints each run's exit status and time, then how many finished, how many crashed (killed by a
signal, as the segfault in torch did) and how many failed otherwise. Target: all finish.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_concurrency import SCRIPT  # noqa: E402  (the test's script, run as it is)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="fresh processes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = []
    for i in range(args.runs):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp, env=env)
        seconds = time.perf_counter() - start
        ok = done.returncode == 0 and done.stdout.strip().startswith("ok")
        crashed = done.returncode < 0
        status = "ok" if ok else f"killed by {signal.Signals(-done.returncode).name}" if crashed else f"exit {done.returncode}"
        runs.append({"returncode": done.returncode, "ok": ok, "crashed": crashed, "seconds": seconds})
        print(f"run {i + 1}: {status} ({seconds:.1f} s)" + ("" if ok else f"\n{done.stderr[-2000:]}"), flush=True)
    finished = sum(r["ok"] for r in runs)
    crashed = sum(r["crashed"] for r in runs)
    print(f"{finished} of {len(runs)} fresh processes finished (target: all); {crashed} crashed, {len(runs) - finished - crashed} failed otherwise")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "finished": finished, "crashed": crashed}, indent=2))
    return 0 if finished == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
