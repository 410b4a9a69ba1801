"""The options every entry point shares (the API, the command line, video, the demo, datasets):
their bounds and defaults, and the one check of them.

Nothing heavy is imported here, so the command line checks its arguments, and answers `--help`,
before torch is loaded. Each message starts with the option's name, which the command line turns
into its flag (temperature -> --temperature, batch_size -> --batch-size).
"""

from __future__ import annotations

MAX_VARIATIONS = 16  # variations of one photo (all from one network pass)
SCALES = (2, 4)  # the bundled lightness upscalers
MULTISCALE_FACTOR = 1.5  # multi-scale: the photo at this many times the working size, and at the working size
STABILITY = 0.85  # video: share of the motion-compensated previous colour kept where it matches (0: independent frames)
MAX_TEMPERATURE = 10.0  # beyond it the annealed mean is the distribution's mean to the eye
MIN_SIZE = 16  # working size, px
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".ogv", ".3gp"})


def check_options(
    temperature=None,
    vividness=None,
    batch_size: int = 1,
    upscale: int = 1,
    variations: int | None = None,
    seed: int = 0,
    size: int | None = None,
    stability: float | None = None,
) -> None:
    """ValueError, one line naming the option, for an option out of its range (the CLI's exit 2)."""
    if temperature is not None and not 0 < temperature <= MAX_TEMPERATURE:
        raise ValueError(f"temperature must be in (0, {MAX_TEMPERATURE:g}], got {temperature}")
    if vividness is not None and not 0 <= vividness <= 1:
        raise ValueError(f"vividness must be in [0, 1], got {vividness}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if upscale not in (1, *SCALES):
        raise ValueError(f"upscale must be 1 (off) or one of {', '.join(map(str, SCALES))}, got {upscale}")
    if variations is not None and not 1 <= variations <= MAX_VARIATIONS:
        raise ValueError(f"variations must be between 1 and {MAX_VARIATIONS}, got {variations}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed}")
    if size is not None and size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}, got {size}")
    if stability is not None and not 0 <= stability < 1:
        raise ValueError(f"stability must be in [0, 1), got {stability}")
