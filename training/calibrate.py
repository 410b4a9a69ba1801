"""Re-fit a saved model's realness calibration, optionally at a new working size, and optionally
recompute its generator's BatchNorm statistics first; or finish a run whose calibration failed.

    python training/calibrate.py --model runs/small/model --train_data_dir ../shared/data/train \
        --image_size 128 --out runs/small/model-128 [--batchnorm_statistics_batches 20 --resolution 128]

The calibration (Platt scaling of the discriminator's mean patch logit) depends on the working
size the pipeline runs at; this fits it again on the same hash-held-out training photos that
training used (same --realness_calibration_fraction), never on validation photos. Models saved
before train.py recomputed BatchNorm statistics (EMA weights with averaged statistics) gain from
--batchnorm_statistics_batches, on training crops like those it was trained on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from colorgan_hub import ColorGAN
from training.calibration import batchnorm_batches, fit_realness_calibration, recompute_batchnorm_statistics, with_config
from training.data import DataConfig, add_source_arguments, check_source_arguments, usable_photos
from training.saving import halve_weights


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="save_pretrained folder or Hub id")
    add_source_arguments(parser)
    parser.add_argument(
        "--realness_calibration_fraction", dest="calibration_fraction", type=float, default=0.05, help="as in training: which photos were held out"
    )
    parser.add_argument("--realness_calibration_photos", dest="calibration_photos", type=int, default=256, help="held-out photos to fit on")
    parser.add_argument("--image_size", type=int, help="new working size for the saved config")
    parser.add_argument(
        "--batchnorm_statistics_batches", type=int, default=0, help="recompute the generator's BatchNorm statistics on this many training batches first"
    )
    parser.add_argument("--resolution", type=int, default=128, help="training crop size, for those batches")
    parser.add_argument("--crop_scale_min", type=float, default=0.25, help="smallest random crop, for those batches")
    parser.add_argument("--train_batch_size", type=int, default=32, help="batch size, for those batches")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training run")
    parser.add_argument("--out", type=Path, required=True, help="folder to save the re-calibrated model in (may be --model's own)")
    parser.add_argument("--save_dtype", choices=["float32", "float16"], default="float32", help="dtype of the saved model.safetensors")
    args = parser.parse_args(argv)
    check_source_arguments(parser, args)
    data_config = DataConfig.from_args(args)
    source = ColorGAN.from_pretrained(args.model)
    model = with_config(source, **({"image_size": args.image_size} if args.image_size else {}))
    if args.batchnorm_statistics_batches:
        recompute_batchnorm_statistics(model.generator, batchnorm_batches(data_config, args.train_batch_size, args.batchnorm_statistics_batches))
    model.eval()
    photos = usable_photos(data_config, args.calibration_photos, held_out=True)
    if len(photos) < 8:
        parser.error(f"only {len(photos)} held-out photos: raise --realness_calibration_fraction")
    result = fit_realness_calibration(model, photos, "cpu")
    model.save_pretrained(args.out)
    if args.save_dtype == "float16":
        halve_weights(args.out)
    print(json.dumps({"image_size": model.image_size, **result}))
    return result


if __name__ == "__main__":
    main()
