#!/usr/bin/env bash
# The commands that make the bundled default model (EfficientNet-Lite2 U-Net), then its card.
#   bash training/train_default_model.sh ../shared/data OUTPUT_DIR
#   ENCODER=efficientnet-lite0 bash training/train_default_model.sh ../shared/data OUTPUT_DIR   # the smaller, faster encoder
#
# Run from the repository root with the train extra installed. Every step resumes or skips when
# started again (train.py and detector.py resume from their last checkpoints), so a killed run is
# continued by running the script again. default_model_procedure.md says what each step does and
# how long it took on 2 CPU cores.
set -euo pipefail
data=${1:?path to the shared data folder (with train/, val/, val_fullres/, historic/)}
out=${2:?output folder}
encoder=${ENCODER:-efficientnet-lite2}  # the bundled model's (the train extra installs the Lite0 and Lite2 weights)
variant=${encoder#efficientnet-}  # lite2: the card's title says EfficientNet-Lite2
mkdir -p "$out"

# 1. the generator, first run: pre-training of the classification head on the frozen-to-stride-8
#    ImageNet encoder, 6,000 steps
train=(accelerate launch --num_processes 1 --num_machines 1 --mixed_precision bf16 --dynamo_backend no training/train.py
  --train_data_dir "$data/train" --validation_data_dir "$data/val" --max_validation_samples 100
  --resolution 128 --crop_scale_min 0.25 --train_batch_size 16 --min_colorfulness 12
  --lr_schedule cosine --min_lr_ratio 0.05 --encoder_lr_scale 0.1
  --gan_learning_rate 5e-5 --discriminator_learning_rate 5e-5 --lambda_class 5 --lambda_decoded_l1 30 --gan_loss vanilla
  --use_ema --ema_decay 0.999 --select_cf_ratio 0.8 --checkpoints_total_limit 2 --save_dtype float16 --resume_from_checkpoint latest)
"${train[@]}" --output_dir "$out/run" --model_config '{"encoder": "'"$encoder"'", "temperature": 0.38, "vividness": 0.75}' \
  --prior_samples 3000 --pretrain_steps 6000 --gan_steps 0 --learning_rate 2e-4 --lr_warmup_steps 200 --freeze_encoder_stride 8 \
  --seed 0 --validation_steps 1000 --checkpointing_steps 250

# 2. second run, from the first one's model: 4,000 more pre-training steps with old-film inputs on
#    half the crops and the stride-8 stage fine-tuned too
film=("${train[@]}" --output_dir "$out/film" --pretrained_model "$out/run/model" --film_probability 0.5
  --pretrain_steps 4000 --learning_rate 1e-4 --lr_warmup_steps 100 --freeze_encoder_stride 4 --seed 1)
"${film[@]}" --gan_steps 0 --validation_steps 500 --checkpointing_steps 250

# 3. third run, from the second one's model: 4,000 more pre-training steps with the whole encoder
#    fine-tuned and every encoder BatchNorm frozen (launch 1), then the GAN phase validated every
#    100 steps, the best validated generator kept (launch 2)
full=("${train[@]}" --output_dir "$out/full" --pretrained_model "$out/film/model" --film_probability 0.5
  --pretrain_steps 4000 --learning_rate 1e-4 --lr_warmup_steps 100 --freeze_encoder_stride 0 --freeze_encoder_batchnorm --seed 2)
"${full[@]}" --gan_steps 0 --validation_steps 250 --checkpointing_steps 250
"${full[@]}" --gan_steps 600 --validation_steps 100 --checkpointing_steps 100

# 4. the decoding defaults, chosen on 200 validation photos spread over val/ against the colour
#    targets (+0.3 dB over gray, colourfulness 80% of the truth's, hue hits 0.5), at working size 128
python training/choose_decoding.py --model "$out/full/model" --validation_data_dir "$data/val" --max_validation_samples 200 \
  --select_psnr_gain 0.3 --select_cf_ratio 0.8 --select_hue_macro 0.5 --out "$out/full/model" \
  --vividness 0.6 0.7 0.8 0.9 1.0 --temperature 0.5 0.6 0.7 --image_size 128 --json "$out/decoding.json"

# 5. the colorizer family's other generators: the models bundled before, from git history
#    (the last one is the model this one replaces)
gens="$out/family-generators"
commits=(7def17c 4c32290 8e1cb3b b362435 b3de2da dfb356d 99d1394 05759ec)
family=("${commits[@]/#/$gens/}")
previous=${family[-1]}
for commit in "${commits[@]}"; do
  if [ ! -f "$gens/$commit/model.safetensors" ]; then
    mkdir -p "$gens/$commit"
    for f in config.json model.safetensors; do git show "$commit:colorgan_hub/default_model/$f" > "$gens/$commit/$f"; done
  fi
done

# 6. the detector: the previous bundled model's (discriminator, cue read-out, calibration, size 160)
#    carried over, trained 1,000 steps against the family made with this generator (a third of that
#    family's fakes at the model's own settings), then its cue read-out, a read-out of ImageNet
#    EfficientNet-Lite0 features of the photo (the network saved with the model) and the Platt scaling
#    fitted together
python - "$out/full/model" "$previous" "$out/start" <<'PY'
import sys
from colorgan_hub import ColorGAN
from training.calibration import with_config
model, previous = ColorGAN.from_pretrained(sys.argv[1]), ColorGAN.from_pretrained(sys.argv[2])
model = with_config(model, realness_size=previous.realness_size)
for name in ("realness_calibration", "realness_cues"):
    getattr(model, name).copy_(getattr(previous, name))
model.discriminator.load_state_dict(previous.discriminator.state_dict())
model.save_pretrained(sys.argv[3])
PY
python training/detector.py --model "$out/start" --train_data_dir "$data/train" --validation_data_dir "$data/val" \
  --generators "${family[@]}" \
  --train_photos 2500 --init model --learning_rate 1e-4 --steps 1000 --own_default_share 0.33 --cues --features efficientnet-lite0 \
  --calibration_smoothing 0.01 \
  --realness_size 160 --out "$out/detector"
cp "$out/detector/model/model.safetensors" "$out/detector/model/config.json" "$out/full/model/"

# 7. the card: measured beside its pre-training-only self (the third run's, before its GAN phase), the
#    previous bundled model, gray and the constant colour; the curves of the three runs
python training/report.py --run "$out/full" --curves_from "$out/run@6000" "$out/film@4000" "$out/full" --val_dir "$data/val" --fullres_dir "$data/val_fullres" \
  --historic_dir "$data/historic" --previous_model "$previous" --detector_generators "${family[@]}" \
  --title "EfficientNet-${variant^} U-Net" --command "bash training/train_default_model.sh $data $out" \
  --procedure "$(cat training/default_model_procedure.md)"

# 8. point hints and a reference photo: the guidance network trained beside the frozen colorizer
#    (its output without guidance stays the colorizer's, so the detector is kept), the hint sweep
#    on 80 val photos every 400 steps, the best validated step kept (2,000 of 3,200 for the
#    bundled model; docs/guidance.md)
accelerate launch --num_processes 1 --num_machines 1 --dynamo_backend no training/train_guidance.py \
  --pretrained_model "$out/full/model" --train_data_dir "$data/train" --validation_data_dir "$data/val" \
  --output_dir "$out/guide" --guidance attention --max_train_steps 3200 --validation_steps 400 --checkpointing_steps 200 \
  --resume_from_checkpoint latest
cp "$out/guide/model/model.safetensors" "$out/guide/model/config.json" "$out/full/model/"

# 9. the card's guidance and multi-scale sections: the hint sweep on val and val_fullres, the colour
#    at one scale and multi-scale (the default) on both
python benchmarks/bench_hints.py --model "$out/full/model" --data "$data/val" "$data/val_fullres" --json "$out/hints.json"
for scale in multiscale no-multiscale; do
  colorgan evaluate --model "$out/full/model" --data "$data/val" --protocol 256 --no-detector --"$scale" --json "$out/val-$scale.json"
  colorgan evaluate --model "$out/full/model" --data "$data/val_fullres" --protocol full --no-detector --"$scale" --json "$out/full-$scale.json"
done
python training/card_guidance.py --model "$out/full/model" --hints "$out/hints.json" \
  --single "$out/val-no-multiscale.json" --multi "$out/val-multiscale.json" \
  --fullres_single "$out/full-no-multiscale.json" --fullres_multi "$out/full-multiscale.json" \
  --procedure "The guidance network (attention over the hints at strides 8 and 2, the reference's palette at the bottleneck and on the logits; 235k parameters) was trained beside the frozen colorizer with Zhang et al.'s simulated hints and the truth's palette as the reference on 40% of the crops: batch 16 of 128-px crops, AdamW 1e-3, 3,200 steps with a cosine schedule, the best of the hint sweeps every 400 steps on 80 val photos kept (step 2,000). A reference also gives its saturation: after decoding, the result's chroma takes the reference's distribution, region by region (colorgan_hub.guidance.match_chroma, not trained). Design, training and every figure: docs/guidance.md in the repository."
