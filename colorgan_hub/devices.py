"""Where the networks run: the device (cuda > mps > cpu), autocast, and `settled`, which puts a
module on its device once and lets many threads run it at once.

Device and dtype are decided here for inference and in the `Accelerator` for training, nowhere
else. A model shared by a web service's threads is never changed while one of them computes with
it: converting it per call (device, memory format, eval mode) let one thread replace the weights
another was reading, which crashed the process.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import torch


def pick_device() -> torch.device:
    """The fastest device present: cuda, then Apple's mps, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _autocast(device: torch.device):
    """bf16 (or fp16 where bf16 is missing) on accelerators; plain fp32 on the CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "mps":
        return torch.autocast("mps", dtype=torch.float16)
    return contextlib.nullcontext()


class _Guard:
    """Who is running one module now, and the device it was settled on for them."""

    def __init__(self):
        self.condition = threading.Condition()
        self.active = 0  # callers inside `settled`
        self.device = None  # the device it was settled on (eval mode, channels-last); None: not settled
        self.restore_training = False  # it was in train mode (validation during training): put it back after


_GUARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GUARDS_LOCK = threading.Lock()


def _guard(module) -> _Guard:
    with _GUARDS_LOCK:
        guard = _GUARDS.get(module)
        if guard is None:
            guard = _GUARDS[module] = _Guard()
        return guard


@contextlib.contextmanager
def settled(module, device: torch.device):
    """`module` on `device`, channels-last and in eval mode while the block runs, safe to share
    between threads: the module is changed (moved, converted, switched to eval) only when no caller
    is running it, and a caller asking for another device waits for the others to finish. Calls
    after the first change nothing (a web service's threads share one model without locking each
    other out); a module in train mode (validation during training) is put back in train mode when
    the last caller leaves."""
    guard = _guard(module)
    with guard.condition:
        while guard.active and guard.device != device:
            guard.condition.wait()
        if not guard.active:
            if next(module.parameters()).device != device or guard.device != device:
                module.to(device)
                module.to(memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
                guard.device = device
            if module.training:
                guard.restore_training = True
                module.eval()
        guard.active += 1
    try:
        yield module
    finally:
        with guard.condition:
            guard.active -= 1
            if not guard.active:
                if guard.restore_training:
                    module.train(True)
                    guard.restore_training = False
                guard.condition.notify_all()


@contextlib.contextmanager
def inference(model, device):
    """The model settled on `device` (`settled`: thread-safe), under inference_mode and autocast."""
    with settled(model, device), torch.inference_mode(), _autocast(device):
        yield
