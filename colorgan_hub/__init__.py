"""ColorGAN Hub: automatic colorization of grayscale photos with a conditional GAN.

    from colorgan_hub import ColorGAN, DEFAULT_MODEL
    model = ColorGAN.from_pretrained(DEFAULT_MODEL)   # or a Hub id / local save_pretrained folder
    colored = model.colorize("old.jpg")               # PIL image, full resolution, L kept
    p_real = model.realness("photo.jpg")              # probability it was photographed in colour
"""

from pathlib import Path

from .image_io import ImageError, load_image
from .model import ColorGAN

__version__ = "0.1.0"

# The bundled default model: a save_pretrained folder shipped inside the package.
DEFAULT_MODEL = str(Path(__file__).with_name("default_model"))

__all__ = ["ColorGAN", "DEFAULT_MODEL", "ImageError", "load_image", "__version__"]
