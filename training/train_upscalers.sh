#!/usr/bin/env bash
# The commands that make the bundled upscalers (colorgan_hub/upscalers/x2 and x4).
#   bash training/train_upscalers.sh ../shared/data OUTPUT_DIR
#
# Run from the repository root with the train extra installed; each run resumes from its last
# checkpoint when started again. On 2 CPU cores: about 25 minutes per run of 5,000 steps at x2
# (13 for the third x2 run's 2,500)
# (batch 32 of 96 px crops) and 15 at x4 (128 px crops). Each run validates every 500 steps on
# val/ (PSNR of L against bicubic) and saves its best validated weights as OUT/upscaler-xN/model.
set -euo pipefail
data=${1:?path to the shared data folder (with train/ and val/)}
out=${2:?output folder}
launch=(accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no training/train_upscaler.py
  --train_data_dir "$data/train" --validation_data_dir "$data/val" --resume_from_checkpoint latest --seed 0)

# x2, in two runs: first with heavier damage (blur 0.3, noise 0.3, JPEG 0.5 of the pairs; the
# bundled one was stopped soon after step 3,500, and its best validated weights, from step 3,500, went on;
# a full rerun may pick a later step), then from those weights with the default, lighter damage, which gained
# more over bicubic on clean photos (docs/upscaling-and-variations.md).
"${launch[@]}" --scale 2 --patch_size 96 --max_train_steps 5000 --p_blur 0.3 --p_noise 0.3 --p_jpeg 0.5 --output_dir "$out/upscaler-x2-heavy"
"${launch[@]}" --scale 2 --patch_size 96 --max_train_steps 5000 --init_from "$out/upscaler-x2-heavy/model" --output_dir "$out/upscaler-x2"
# and a third time from those, with still less damage and more shrinking by area (the best of the
# three on val/: +1.28 dB over bicubic, against +1.13 for the second run and +0.82 for the first)
"${launch[@]}" --scale 2 --patch_size 96 --max_train_steps 2500 --p_blur 0.1 --p_noise 0.1 --p_jpeg 0.2 --p_area 0.7 --learning_rate 5e-4 \
  --seed 1 --init_from "$out/upscaler-x2/model" --output_dir "$out/upscaler-x2b"
# x4 from bicubic, the default damage
"${launch[@]}" --scale 4 --patch_size 128 --max_train_steps 5000 --output_dir "$out/upscaler-x4"

# the package's copies
rm -rf colorgan_hub/upscalers/x2 colorgan_hub/upscalers/x4
cp -r "$out/upscaler-x2b/model" colorgan_hub/upscalers/x2
cp -r "$out/upscaler-x4/model" colorgan_hub/upscalers/x4
