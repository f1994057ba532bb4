#!/bin/bash
# Whole 10+10 recipe under ONEDNN_MAX_CPU_ISA=AVX2 (a CPU without bf16), fast then seed, back to back. Nothing else runs meanwhile.
cd /work/main
PY=/work/venv/bin/python
D=/tmp/cifar50k/cifar-10-batches-py
run() {  # name, then env/flags
  name=$1; shift
  echo "$name start $(date +%T)" >> /tmp/m2/recipe.log
  /usr/bin/time -v -o /tmp/m2/time_$name.txt env CI=1 ONEDNN_MAX_CPU_ISA=AVX2 "$@" >> /tmp/m2/recipe_$name.out 2>&1
  echo "$name done rc=$? $(date +%T)" >> /tmp/m2/recipe.log
}
run fast_f32_avx2 $PY -m cifar_helpers train --profile fast --data $D --weights none --out /tmp/m2/run_fast_f32_avx2
run seed_avx2 $PY -m cifar_helpers train --profile seed --data $D --weights none --out /tmp/m2/run_seed_avx2
echo "all done $(date +%T)" >> /tmp/m2/recipe.log
