"""Several threads on one model: the bundled model, freshly loaded, called from 4 threads at once
through every inference path (hints, a reference and suggestions included) gives the same pictures
as one thread, and the process survives.

The threads run in a child process: a crash inside torch (what per-call conversions of a shared
model caused) kills the process, and a test in the pytest process itself would take the whole run
down instead of failing."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a child process with the bundled model

SCRIPT = textwrap.dedent(
    """
    import faulthandler, threading
    import numpy as np
    from PIL import Image
    from colorgan_hub import ColorGAN, DEFAULT_MODEL
    from tests.conftest import make_photo

    faulthandler.enable()
    model = ColorGAN.from_pretrained(DEFAULT_MODEL)  # fresh: never run before the threads start
    photos = [make_photo(160 + 32 * i, 120 + 16 * i, seed=i).convert("L") for i in range(4)]
    frames = [np.asarray(make_photo(96, 64, seed=10 + i).convert("L")) for i in range(3)]
    reference = make_photo(120, 90, seed=99)  # a colour photo: its palette

    def jobs(i):
        photo = photos[i]
        return {
            "default": lambda: model.colorize(photo),
            "one scale": lambda: model.colorize(photo, multiscale=False),
            "variations": lambda: model.colorize(photo, variations=2, seed=i),
            "upscale": lambda: model.colorize(photo.resize((64, 48)), upscale=2),
            "realness": lambda: model.realness(model.colorize(photo, multiscale=False)),
            "frames": lambda: list(model.colorize_frames(iter(frames), size=96)),
            "hints": lambda: model.colorize(photo, hints=[(20, 30, "#2a5db0"), (60.5, 40, (200, 40, 40))]),
            "reference": lambda: model.colorize(photo, reference=reference, multiscale=False),
            "suggestions": lambda: [s.rgb for s in model.suggest_colours(photo, 40, 30, k=4, hints=[(20, 30, "#2a5db0")])],
        }

    def as_arrays(result):
        if isinstance(result, float):
            return [np.array(result)]
        if isinstance(result, list):
            return [a for r in result for a in as_arrays(r)]
        return [np.asarray(result, dtype=np.float32)]

    barrier = threading.Barrier(4)
    concurrent, failures = {}, []

    def work(i):
        barrier.wait()  # all four start together, before any call has settled the model
        try:
            for name, job in jobs(i).items():
                concurrent[i, name] = as_arrays(job())
        except BaseException as err:
            failures.append(f"thread {i}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    for i in range(4):
        for name, job in jobs(i).items():
            alone = as_arrays(job())
            together = concurrent[i, name]
            assert len(alone) == len(together), name
            for a, b in zip(alone, together):
                assert a.shape == b.shape and np.abs(a - b).max() <= 1.0, (i, name, np.abs(a - b).max())
    print("ok", len(concurrent))
    """
)


def test_threads_share_a_freshly_loaded_model(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}  # tests.conftest's photos
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stderr[-3000:]}"
    assert done.stdout.strip() == "ok 36"  # 4 threads x 9 paths
