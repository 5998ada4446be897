#!/usr/bin/env bash
# The whole loop on a simulated sample set: generate, train, turn raw recordings into HHT
# matrices, predict a folder, and predict and explain one file.
# Usage: ./example_workflow.sh [OUTPUT_FOLDER]   (default: example_output/ beside this script)
# Uses $PYTHON if set, else python3 (activate the project's virtual environment first).
# TRAIN_FLAGS adds flags to train.py, e.g. TRAIN_FLAGS="--features cnn+hht --epochs 5";
# N_SAMPLES sets the labelled files per class of the sample set (default 30).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/example_output}"
python="${PYTHON:-python3}"
read -r -a train_flags <<< "${TRAIN_FLAGS:-}"
n_samples="${N_SAMPLES:-30}"

echo "== 1. Generating a sample data set in $out/data"
"$python" "$here/generate_sample_data.py" --output_dir "$out/data" --n_samples "$n_samples" --n_test 10 --overwrite

echo "== 2. Training the classifier (checkpoints in $out/checkpoints)"
# labels.csv names each file's simulated subject, so validation holds out whole subjects.
"$python" "$here/train.py" --data_dir "$out/data" --labels "$out/data/labels.csv" \
    --checkpoint_dir "$out/checkpoints" --overwrite "${train_flags[@]}"

echo "== 3. New raw recordings in $out/new_recordings, turned into HHT matrices in $out/new_data"
"$python" "$here/generate_sample_data.py" --output_dir "$out/new_recordings" --n_samples 0 --n_test 20 --seed 7 \
    --save_signals --overwrite
"$python" "$here/compute_hht.py" --input "$out/new_recordings/signals" --output_dir "$out/new_data" --overwrite

echo "== 4. Inference on the folder"
"$python" "$here/inference.py" --checkpoint "$out/checkpoints/final" --input "$out/new_data" \
    --output "$out/predictions.json"

echo "== 5. Inference on one file, with its explanation in $out/explanations"
"$python" "$here/inference.py" --checkpoint "$out/checkpoints/final" --input "$out/new_data/BICEPS_test_001.npz" \
    --explain "$out/explanations"

cat <<DONE

Done. Everything is in $out:
  data/                       the generated training set (labelled and test files)
  checkpoints/final_*         the trained model (latest_* the same; with --epochs N in TRAIN_FLAGS,
                              best_* the best epoch and latest_* the last one)
  checkpoints/test_predictions.json  predictions for the data set's test files
  checkpoints/report.json     the run's report; confusion_matrix.png, training_curves.png,
                              class_examples.png and class_differences.png beside it
  new_recordings/signals/     new raw recordings (mV)
  new_data/                   their HHT matrices, made by compute_hht.py
  predictions.json            predictions for new_data/
  explanations/               what drove the prediction of BICEPS_test_001.npz (occlusion map)
DONE
