"""ColorGAN Hub: automatic colorization of grayscale photos with a conditional GAN.

    from colorgan_hub import ColorGAN, DEFAULT_MODEL
    model = ColorGAN.from_pretrained(DEFAULT_MODEL)   # or a Hub id / local save_pretrained folder
    colored = model.colorize("old.jpg")               # PIL image, full resolution, L kept
    hinted = model.colorize("old.jpg", hints=[(120, 80, "#2a5db0")])   # that region blue
    p_real = model.realness("photo.jpg")              # probability it was photographed in colour

The names below are imported when first used, so that `import colorgan_hub` (and the command
line's --help) does not load torch.
"""

from importlib import import_module
from pathlib import Path

__version__ = "0.1.0"

# The bundled default model: a save_pretrained folder shipped inside the package.
DEFAULT_MODEL = str(Path(__file__).with_name("default_model"))

_LAZY = {
    "ColorGAN": "model",
    "ImageError": "image_io",
    "NoColourError": "image_io",
    "load_image": "image_io",
    "HintError": "guidance",
    "ModelLoadError": "model",
}

__all__ = ["ColorGAN", "DEFAULT_MODEL", "HintError", "ImageError", "ModelLoadError", "NoColourError", "load_image", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
