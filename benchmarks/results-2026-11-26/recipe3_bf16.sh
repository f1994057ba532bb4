#!/bin/bash
# Whole 10+10 recipe on this CPU as it is (bfloat16 for fast), fast, seed, then fast at batch 256, back to back.
# Nothing else runs meanwhile.
cd /work/main
PY=/work/venv/bin/python
D=/tmp/cifar50k/cifar-10-batches-py
run() {  # name, then the command
  name=$1; shift
  echo "$name start $(date +%T)" >> /tmp/m3/recipe.log
  /usr/bin/time -v -o /tmp/m3/time_$name.txt env CI=1 "$@" >> /tmp/m3/recipe_$name.out 2>&1
  echo "$name done rc=$? $(date +%T)" >> /tmp/m3/recipe.log
}
run fast_bf16 $PY -m cifar_helpers train --profile fast --data $D --weights none --out /tmp/m3/run_fast_bf16
run seed $PY -m cifar_helpers train --profile seed --data $D --weights none --out /tmp/m3/run_seed
run fast_bf16_batch256 $PY -m cifar_helpers train --profile fast --batch-size 256 --data $D --weights none --out /tmp/m3/run_fast_bf16_batch256
echo "all done $(date +%T)" >> /tmp/m3/recipe.log
