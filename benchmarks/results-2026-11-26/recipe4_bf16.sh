#!/bin/bash
# Whole 10+10 recipe on this CPU as it is (bfloat16 for fast): fast, then seed, back to back. Nothing else runs meanwhile.
cd /work/main
PY=/work/venv/bin/python
D=/tmp/cifar50k/cifar-10-batches-py
run() {  # name, then the command
  name=$1; shift
  echo "$name start $(date +%T)" >> /tmp/s4/recipe.log
  /usr/bin/time -v -o /tmp/s4/time_$name.txt env CI=1 "$@" >> /tmp/s4/recipe_$name.out 2>&1
  echo "$name done rc=$? $(date +%T)" >> /tmp/s4/recipe.log
}
run fast_bf16 $PY -m cifar_helpers train --profile fast --data $D --weights none --out /tmp/s4/run_fast_bf16
run seed $PY -m cifar_helpers train --profile seed --data $D --weights none --out /tmp/s4/run_seed
echo "all done $(date +%T)" >> /tmp/s4/recipe.log
