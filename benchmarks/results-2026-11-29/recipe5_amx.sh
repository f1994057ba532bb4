#!/bin/bash
# Whole 10+10 recipe on an Intel VM with AMX (bfloat16 for fast): fast, seed, fast again, back to
# back, nothing else running. Code of 90ac38d.
cd /work/main
PY=/work/venv/bin/python
D=/tmp/cifar50k/cifar-10-batches-py
run() {  # name, then the command
  name=$1; shift
  echo "$name start $(date +%T)" >> /tmp/s5/recipe.log
  /usr/bin/time -v -o /tmp/s5/time_$name.txt env CI=1 "$@" >> /tmp/s5/recipe_$name.out 2>&1
  echo "$name done rc=$? $(date +%T)" >> /tmp/s5/recipe.log
}
run fast_bf16 $PY -m cifar_helpers train --profile fast --data $D --weights none --out /tmp/s5/run_fast_bf16
run seed $PY -m cifar_helpers train --profile seed --data $D --weights none --out /tmp/s5/run_seed
run fast_bf16_after $PY -m cifar_helpers train --profile fast --data $D --weights none --out /tmp/s5/run_fast_bf16_after
echo "all done $(date +%T)" >> /tmp/s5/recipe.log
