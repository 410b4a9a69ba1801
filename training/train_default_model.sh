#!/usr/bin/env bash
# The exact commands that trained the bundled default model (CPU, 2 cores), in two stages.
#   bash training/train_default_model.sh ../shared/data OUTPUT_DIR [extra train.py flags for both stages]
#
# Stage 1 (75 min here): L1 pre-training, a short GAN phase at a low learning rate, the detector.
# It validates at working size 256; the model then runs at 128, the training crop size, where it
# measures better, with its realness calibration fitted again there (calibrate.py).
# Stage 2 (20 min here): from stage 1's model, L1 + colourfulness-matching fine-tuning (EMA,
# BatchNorm statistics recomputed, the checkpoint best under both fidelity and colour on
# validation kept), then the detector again for the new colorizations, and its calibration.
# report.py then measures the final model beside stage 1's L1-only model and writes the card.
#
# The bundled weights come from stage 1 as run at commit 7def17c (before train.py recomputed
# BatchNorm statistics, which it now does) and stage 2 as below.
set -euo pipefail
data=${1:?path to the shared data folder (with train/ and val/)}
out=${2:?output folder}
shift 2
here="$(dirname "$0")"
launch=(accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no)
common=(--train_data_dir "$data/train" --validation_data_dir "$data/val"
        --resolution 128 --crop_scale_min 0.25 --train_batch_size 32 --max_validation_samples 100
        --calibration_samples 256 --save_dtype float16 --seed 0)

# Stage 1
"${launch[@]}" "$here/train.py" "${common[@]}" --output_dir "$out/stage1" \
  --model_config '{"image_size": 256}' \
  --pretrain_steps 3000 --gan_steps 1000 --detector_steps 400 \
  --learning_rate 2e-4 --gan_learning_rate 5e-5 --discriminator_learning_rate 5e-5 --detector_learning_rate 1e-4 \
  --lambda_l1 100 --gan_loss vanilla --use_ema --ema_decay 0.999 \
  --validation_steps 250 --checkpointing_steps 250 --checkpoints_total_limit 2 "$@"
python "$here/calibrate.py" --model "$out/stage1/model" --train_data_dir "$data/train" --image_size 128 --save_dtype float16 --out "$out/stage1/model-128"
# the L1-only model, for the comparison table, with its BatchNorm statistics recomputed likewise
python "$here/calibrate.py" --model "$out/stage1/model-l1" --train_data_dir "$data/train" --image_size 128 \
  --bn_recalibration_batches 20 --resolution 128 --out "$out/stage1/model-l1-128"

# Stage 2: validated on all of val every 50 steps (the checkpoint is picked there: see the card)
"${launch[@]}" "$here/train.py" "${common[@]}" --output_dir "$out/stage2" \
  --pretrained_model "$out/stage1/model-128" \
  --pretrain_steps 400 --gan_steps 0 --detector_steps 400 \
  --learning_rate 1e-4 --lambda_colorfulness 0.5 --detector_learning_rate 1e-4 \
  --use_ema --ema_decay 0.99 --bn_recalibration_batches 20 \
  --validation_steps 50 --max_validation_samples 400 --checkpointing_steps 200 --checkpoints_total_limit 2 "$@"

python "$here/report.py" --run "$out/stage2" --l1_model "$out/stage1/model-l1-128" --curves_from "$out/stage1" "$out/stage2" \
  --val_dir "$data/val" --fullres_dir "$data/val_fullres" --command "bash training/train_default_model.sh $data $out" \
  --procedure "$(cat "$here/default_model_procedure.md")"
