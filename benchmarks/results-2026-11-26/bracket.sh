#!/bin/bash
# Replaces the batch-256 run of recipe3_bf16.sh: after seed, fast again, so that a fast run lies on each side of seed.
cd /work/main
PY=/work/venv/bin/python
D=/tmp/cifar50k/cifar-10-batches-py
while kill -0 9054 2>/dev/null; do sleep 5; done
echo "seed done $(grep 'Exit status' /tmp/m3/time_seed.txt) $(date +%T)" >> /tmp/m3/recipe.log
name=fast_bf16_after
echo "$name start $(date +%T)" >> /tmp/m3/recipe.log
/usr/bin/time -v -o /tmp/m3/time_$name.txt env CI=1 $PY -m cifar_helpers train --profile fast --data $D --weights none --out /tmp/m3/run_$name >> /tmp/m3/recipe_$name.out 2>&1
echo "$name done rc=$? $(date +%T)" >> /tmp/m3/recipe.log
echo "all done $(date +%T)" >> /tmp/m3/recipe.log
