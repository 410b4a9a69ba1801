#!/usr/bin/env bash
# The exact command that trained the bundled default model (CPU, 2 cores).
#   bash training/train_default_model.sh ../shared/data OUTPUT_DIR [extra train.py flags, e.g. --resume_from_checkpoint latest]
# It validates at working size 256; the bundled model runs at 128, the training crop size, where it
# measures better, with its realness calibration fitted again there:
#   python training/calibrate.py --model OUTPUT_DIR/model --train_data_dir ../shared/data/train --image_size 128 --save_dtype float16 --out MODEL_DIR
#   python training/report.py --run OUTPUT_DIR --out MODEL_DIR --val_dir ../shared/data/val --fullres_dir ../shared/data/val_fullres
set -euo pipefail
data=${1:?path to the shared data folder (with train/ and val/)}
out=${2:?output folder}
shift 2
exec accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  "$(dirname "$0")/train.py" \
  --train_data_dir "$data/train" --validation_data_dir "$data/val" --output_dir "$out" \
  --model_config '{"image_size": 256}' \
  --resolution 128 --crop_scale_min 0.25 --train_batch_size 32 \
  --pretrain_steps 3000 --gan_steps 1000 --detector_steps 400 \
  --learning_rate 2e-4 --gan_learning_rate 5e-5 --discriminator_learning_rate 5e-5 --detector_learning_rate 1e-4 \
  --lambda_l1 100 --gan_loss vanilla --use_ema --ema_decay 0.999 \
  --validation_steps 250 --max_validation_samples 100 \
  --checkpointing_steps 250 --checkpoints_total_limit 2 \
  --calibration_samples 256 --save_dtype float16 --seed 0 "$@"
