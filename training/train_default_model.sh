#!/usr/bin/env bash
# The commands that trained the bundled default model (CPU, 2 cores, about 2 hours), then its card.
#   bash training/train_default_model.sh ../shared/data OUTPUT_DIR
#
# One run in two launches of the same output folder: pre-training (4,000 steps), then GAN (600)
# and detector (300) steps resumed from the step-4,000 checkpoint with the GAN's flags. The bundled
# weights' pre-training launch ran at commit 2489f0b (same model and losses as here; its flag
# names then: --calibration_samples, colours decoded at vividness 1 for validation); the second
# launch ran this train.py. The decoding defaults (vividness 0.6, temperature 0.5) were then
# chosen on validation (see default_model_procedure.md) and the realness calibration fitted again
# for them; then the detector was trained against the colorizer family (step 4). report.py measures the model beside its pre-training-only self and writes the card.
set -euo pipefail
data=${1:?path to the shared data folder (with train/, val/, val_fullres/, historic/)}
out=${2:?output folder}
launch=(accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no)
common=(--train_data_dir "$data/train" --validation_data_dir "$data/val" --output_dir "$out"
        --resolution 128 --crop_scale_min 0.25 --train_batch_size 32 --min_colorfulness 12
        --pretrain_steps 4000 --gan_steps 600 --detector_steps 300
        --learning_rate 2e-4 --gan_learning_rate 5e-5 --discriminator_learning_rate 5e-5 --detector_learning_rate 1e-4
        --max_validation_samples 100 --checkpoints_total_limit 2 --realness_calibration_photos 256
        --save_dtype float16 --seed 0 --resume_from_checkpoint latest)

# 1. pre-training: the classification head on the colour-class cross-entropy (stopped at the
#    step-4,000 checkpoint: kill the launch once checkpoint-4000 exists)
"${launch[@]}" training/train.py "${common[@]}" --model_config '{"temperature": 0.38, "vividness": 1.0}' \
  --prior_samples 3000 --use_ema --ema_decay 0.999 --validation_steps 500 --checkpointing_steps 250 &
pid=$!
until [ -d "$out/checkpoint-4000" ]; do sleep 10; done
kill "$pid"; wait "$pid" || true

# 2. GAN and detector, resumed: cross-entropy x 5 + decoded-colour L1 x 30 + GAN, EMA 0.99
"${launch[@]}" training/train.py "${common[@]}" --model_config '{"temperature": 0.38, "vividness": 0.75}' \
  --lambda_class 5 --lambda_decoded_l1 30 --gan_loss vanilla --use_ema --ema_decay 0.99 \
  --validation_steps 100 --checkpointing_steps 100 --select_cf_ratio 0.8

# 3. the decoding defaults chosen on validation, the realness calibration fitted for them
python - "$out/model" <<'PY'
import json, sys
path = f"{sys.argv[1]}/config.json"
config = json.load(open(path))
config.update(vividness=0.6, temperature=0.5)
json.dump(config, open(path, "w"), indent=2, sort_keys=True)
PY
python training/calibrate.py --model "$out/model" --train_data_dir "$data/train" --realness_calibration_photos 256 \
  --out "$out/model" --save_dtype float16

# 4. the detector trained again against the colorizer family (generator frozen): the model at
#    random settings and sizes, other generators (the two regression-head models bundled before,
#    from git history, this run's pre-training-only generator and model-l1, a classification-head
#    generator of the same run's experiments), toned prints, hand-tinting, colour transfer; the
#    leave-one-family-out study (500 steps a run, from the model's discriminator), then the
#    full-mix run continued to 2,100 steps for the bundled model, calibrated on the family mix.
gens="$out/family-generators"
for commit in 7def17c 4c32290; do
  mkdir -p "$gens/regression-$commit"
  for f in config.json model.safetensors; do git show "$commit:colorgan_hub/default_model/$f" > "$gens/regression-$commit/$f"; done
  python - "$gens/regression-$commit/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["head"] = "regression"  # saved before the config named its head
json.dump(config, open(sys.argv[1], "w"), indent=2, sort_keys=True)
PY
done
family=(--model "$out/model" --train_data_dir "$data/train" --validation_data_dir "$data/val"
        --generators "$gens/regression-7def17c" "$gens/regression-4c32290" "$out/model-pretrained" "$out/model-l1"
        --train_photos 2500 --init model --learning_rate 1e-4)
python training/detector.py "${family[@]}" --steps 500 --study --study_families checkpoints toned hand-tint transfer --out "$out/detector"
mkdir -p "$out/detector-shipped/runs/full"
ln -sfn "$out/detector/render" "$out/detector-shipped/render"
cp "$out/detector/runs/full/checkpoint.pt" "$out/detector-shipped/runs/full/"  # resumed at step 500
python training/detector.py "${family[@]}" --steps 2100 --out "$out/detector-shipped"
cp "$out/detector-shipped/model/model.safetensors" "$out/model/model.safetensors"
python training/report.py --run "$out" --val_dir "$data/val" --fullres_dir "$data/val_fullres" --historic_dir "$data/historic" \
  --detector_study "$out/detector/study.json" --detector_generators "$gens/regression-7def17c" "$gens/regression-4c32290" "$out/model-pretrained" "$out/model-l1" \
  --command "bash training/train_default_model.sh $data $out" --procedure "$(cat training/default_model_procedure.md)"
