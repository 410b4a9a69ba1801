"""Hugging Face Space entry point: the ColorGAN Hub demo (see colorgan_hub/demo.py)."""

from colorgan_hub.demo import main

if __name__ == "__main__":
    main(host="0.0.0.0")
