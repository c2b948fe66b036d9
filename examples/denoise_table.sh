#!/bin/sh
# The per-noise table of example 9 (NOTES.md §11.5): the denoise example once per noise (each
# BART noise alone at BART's rate, BART-large's mix, T5's span corruption), then every run's
# table rows gathered into one table. Extra arguments go to every run, for example
#
#   sh examples/denoise_table.sh                      (7 runs of about 6 minutes each at one thread)
#   JOBS=2 MICROLM_THREADS=1 sh examples/denoise_table.sh --beam 4,1
#
# Each run writes to runs/denoise-NOISE/ (its output in runs/denoise-NOISE/output.txt).
set -eu
cargo build --release --example denoise
JOBS=${JOBS:-1}
running=0
for noise in mask delete infill permute rotate bart t5; do
    mkdir -p "runs/denoise-$noise"
    echo "training with --noise $noise (runs/denoise-$noise/output.txt)"
    target/release/examples/denoise --noise "$noise" --out "runs/denoise-$noise" --show 0 "$@" \
        > "runs/denoise-$noise/output.txt" 2>&1 &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait
        running=0
    fi
done
wait
echo
echo "| noise | decoding | CER | identity CER | exact | identity exact | fits the noise |"
echo "|---|---|---|---|---|---|---|"
for noise in mask delete infill permute rotate bart t5; do
    out="runs/denoise-$noise/output.txt"
    if grep -q '^| [a-z0-9]* | ' "$out"; then
        grep '^| [a-z0-9]* | ' "$out" | grep -v '^| noise |'
    else
        echo "| $noise | failed: see $out | | | | | |"
    fi
done
