#!/usr/bin/env bash
# The commands that trained the bundled default model (CPU, 2 cores, about 5 hours in all), then its card.
#   bash training/train_default_model.sh ../shared/data OUTPUT_DIR
#
# Two runs. Steps 1-4 made the model bundled in sessions 3-5 (OUTPUT_DIR/model): pre-training
# (4,000 steps), then GAN (600) and detector (300) steps resumed from the step-4,000 checkpoint with
# the GAN's flags (its pre-training launch ran at commit 2489f0b: same model and losses, older flag
# names, colours validated at vividness 1); decoding defaults (vividness 0.6, temperature 0.5)
# chosen on validation; the detector trained against the colorizer family. Steps 5-7 make today's
# bundled model (OUTPUT_DIR/continued/model): the step-4,000 generator pre-trained 4,500 steps
# more, 300 GAN steps, decoding chosen by training/choose_decoding.py, step 4's detector continued
# against the family with the new generator. report.py measures it beside its pre-training-only
# self and writes the card. See default_model_procedure.md.
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

# 5. continued pre-training (the bundled model since session 6): a second run from step 1's generator
#    after 4,000 steps ($out/model-pretrained) with a fresh optimiser, 4,500 more cross-entropy steps
#    (bf16 autocast on the CPU, seed 1), stopped at its step-4,500 checkpoint; then 300 GAN steps
#    resumed from it with step 2's losses (EMA 0.99, validated every 100 steps, best kept).
out2="$out/continued"
launch2=(accelerate launch --num_processes 1 --num_machines 1 --mixed_precision bf16 --dynamo_backend no)
common2=(--pretrained_model "$out/model-pretrained" --mixed_precision bf16
         --train_data_dir "$data/train" --validation_data_dir "$data/val" --output_dir "$out2"
         --resolution 128 --crop_scale_min 0.25 --train_batch_size 32 --min_colorfulness 12
         --model_config '{"temperature": 0.38, "vividness": 0.75}' --detector_steps 0
         --learning_rate 2e-4 --gan_learning_rate 5e-5 --discriminator_learning_rate 5e-5
         --lambda_class 5 --lambda_decoded_l1 30 --gan_loss vanilla --use_ema --select_cf_ratio 0.8
         --max_validation_samples 100 --checkpoints_total_limit 2 --realness_calibration_photos 256
         --save_dtype float16 --seed 1 --resume_from_checkpoint latest)
"${launch2[@]}" training/train.py "${common2[@]}" --pretrain_steps 6000 --gan_steps 400 --ema_decay 0.999 \
  --validation_steps 1000 --checkpointing_steps 250 &
pid=$!
until [ -d "$out2/checkpoint-4500" ]; do sleep 10; done
kill "$pid"; wait "$pid" || true
"${launch2[@]}" training/train.py "${common2[@]}" --pretrain_steps 4500 --gan_steps 300 --ema_decay 0.99 \
  --validation_steps 100 --checkpointing_steps 100

# 6. the decoding defaults chosen on the same 100 validation photos by the same score
python training/choose_decoding.py --model "$out2/model" --validation_data_dir "$data/val" \
  --vividness 0.6 0.7 0.8 0.9 1.0 --temperature 0.38 0.5 0.6 --json "$out2/decoding.json" --out "$out2/model"

# 7. the detector: step 4's, continued 800 steps (run to 400, then continued) against the family with this generator (the
#    generator of step 4's model joins the other generators), calibrated again on the family mix
carry_detector() {  # MODEL FROM [OUT]: MODEL with FROM's discriminator and realness calibration, saved to OUT (default MODEL)
  python - "$1" "$2" "${3:-$1}" <<'PY'
import sys
from colorgan_hub import ColorGAN
model, previous = ColorGAN.from_pretrained(sys.argv[1]), ColorGAN.from_pretrained(sys.argv[2])
model.discriminator.load_state_dict(previous.discriminator.state_dict())
model.realness_calibration.copy_(previous.realness_calibration)
model.save_pretrained(sys.argv[3])
PY
}
continue_detector() {  # RUN PREVIOUS_MODEL GENERATOR...: PREVIOUS_MODEL's detector and calibration carried into
                      # RUN/model, continued 800 steps in RUN/detector against the family, weights copied back
  local run="$1" previous="$2"
  shift 2
  carry_detector "$run/model" "$previous"
  python training/detector.py --model "$run/model" --train_data_dir "$data/train" --validation_data_dir "$data/val" \
    --generators "$@" --train_photos 2500 --init model --learning_rate 1e-4 --steps 800 --checkpointing_steps 100 --out "$run/detector"
  cp "$run/detector/model/model.safetensors" "$run/model/model.safetensors"
}
earlier=("$gens/regression-7def17c" "$gens/regression-4c32290" "$out/model-pretrained" "$out/model-l1" "$out/model")  # the other generators of steps 7 and 10
continue_detector "$out2" "$out/model" "${earlier[@]}"

# 8. pre-training continued again (the bundled model since session 7): a third run from step 5's
#    step-4,500 generator ($out2/model-pretrained), 4,500 more cross-entropy steps with a 100-step
#    warm-up and cosine decay of the learning rate to 5% (13,000 pre-training steps in all), seed 2;
#    then 300 GAN steps with step 6's losses (EMA 0.999, validated at the end, best kept)
out3="$out/continued-2"
#    (flags given after common2's override them: argparse keeps the last)
"${launch2[@]}" training/train.py "${common2[@]}" --pretrained_model "$out2/model-pretrained" --output_dir "$out3" --seed 2 \
  --pretrain_steps 4500 --gan_steps 300 --ema_decay 0.999 --lr_schedule cosine --lr_warmup_steps 100 --min_lr_ratio 0.05 \
  --validation_steps 1500 --checkpointing_steps 250
cp -r "$out3/model" "$out3/model-gan-only"  # its GAN-phase discriminator, before step 10 replaces it (step 11's study starts there)

# 9. the decoding defaults chosen on 200 validation photos spread over the whole folder
python training/choose_decoding.py --model "$out3/model" --validation_data_dir "$data/val" --max_validation_samples 200 \
  --vividness 0.3 0.4 0.5 0.6 0.7 --temperature 0.38 0.5 --json "$out3/decoding.json" --out "$out3/model"

# 10. the detector: step 7's, continued 800 steps against the family with this generator (step 7's
#     model joins the other generators), calibrated again on the family mix
continue_detector "$out3" "$out2/model" "${earlier[@]}" "$out2/model"

# 11. the leave-one-family-out study with this generator (measurement only): detectors from the discriminator
#     of step 8's GAN phase ($out3/model-gan-only), with this model's generator and decoding
carry_detector "$out3/model" "$out3/model-gan-only" "$out3/study-base"
python training/detector.py --model "$out3/study-base" --train_data_dir "$data/train" --validation_data_dir "$data/val" \
  --generators "${earlier[@]}" "$out2/model" --study --study_families checkpoints toned hand-tint transfer --train_photos 2500 --init model \
  --learning_rate 1e-4 --steps 500 --checkpointing_steps 100 --out "$out3/study"

# 12. step 10's detector calibrated again with the colour-structure cue read-out (no training; the same
#     held-out photos, family mix and rendered fakes), the weights copied back
cues_run() {  # FROM TO DETECTOR_ARGS...: detector.py with --cues, out to TO, reusing FROM's rendered photos and fakes and its runs' checkpoints
  local from="$1" to="$2"
  shift 2
  mkdir -p "$to/render"
  ln -f "$from"/render/*.pkl "$to/render/"
  for run in "$from"/runs/*; do mkdir -p "$to/runs/$(basename "$run")"; cp "$run/checkpoint.pt" "$to/runs/$(basename "$run")/"; done
  python training/detector.py "$@" --cues --out "$to"
}
cues_run "$out3/detector" "$out3/detector-cues" --model "$out3/model" --train_data_dir "$data/train" --validation_data_dir "$data/val" \
  --generators "${earlier[@]}" "$out2/model" --train_photos 2500 --init model --learning_rate 1e-4 --steps 0
cp "$out3/detector-cues/model/model.safetensors" "$out3/model/model.safetensors"

# 13. step 11's study calibrated again with the cues (each run resumes at its step-500 checkpoint: calibration only)
cues_run "$out3/study" "$out3/study-cues" --model "$out3/study-base" --train_data_dir "$data/train" --validation_data_dir "$data/val" \
  --generators "${earlier[@]}" "$out2/model" --study --study_families checkpoints toned hand-tint transfer --train_photos 2500 --init model \
  --learning_rate 1e-4 --steps 500 --checkpointing_steps 100

# 14. the detector's working size: step 12's model calibrated again, cues and all, at long side 160 (no training;
#     160 chosen among 128/160/192/256 on the calibration photos alone: default_model_procedure.md, step 16)
cues_run "$out3/detector-cues" "$out3/detector-160" --model "$out3/model" --train_data_dir "$data/train" --validation_data_dir "$data/val" \
  --generators "${earlier[@]}" "$out2/model" --train_photos 2500 --init model --learning_rate 1e-4 --steps 0 --realness_size 160
cp "$out3/detector-160/model/model.safetensors" "$out3/detector-160/model/config.json" "$out3/model/"

# 15. step 13's study calibrated again at the same size (measurement only; each run from its step-500 checkpoint)
cues_run "$out3/study-cues" "$out3/study-160" --model "$out3/study-base" --train_data_dir "$data/train" --validation_data_dir "$data/val" \
  --generators "${earlier[@]}" "$out2/model" --study --study_families checkpoints toned hand-tint transfer --train_photos 2500 --init model \
  --learning_rate 1e-4 --steps 500 --checkpointing_steps 100 --realness_size 160
python training/report.py --run "$out3" --val_dir "$data/val" --fullres_dir "$data/val_fullres" --historic_dir "$data/historic" \
  --curves_from "$out" "$out2" "$out3" --detector_study "$out3/study-160/study.json" \
  --detector_generators "${earlier[@]}" "$out2/model" \
  --command "bash training/train_default_model.sh $data $out" --procedure "$(cat training/default_model_procedure.md)"
