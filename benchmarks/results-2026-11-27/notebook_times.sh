#!/usr/bin/env bash
# The instructor guide's quick-profile column: the notebooks under nbval in the quick profile, the
# seconds pytest reports (setup + call + teardown of every cell, from --durations=0).
# "in order": 01-07 in one pytest process, so they share its run store as a student's do (each
# pytest process starts from an empty store: conftest.py); "empty store": 04, 05, 07 alone.
set -u
cd "$(dirname "$0")/../.."
per_notebook() {  # sums pytest's durations per notebook
  awk '$1 ~ /s$/ && $3 ~ /ipynb::/ {split($3, id, "::"); t[id[1]] += $1 + 0}
       END {for (n in t) printf "%s %.1f s\n", n, t[n]}' | sort
}
echo "in order, one process:"
pytest -q -p no:cacheprovider --nbval-lax -n 0 --durations=0 --durations-min=0 \
  notebooks/0*.ipynb 2>&1 | tee /dev/stderr | per_notebook
for name in 04_fine_tuning 05_error_analysis 07_deeper_error_analysis; do
  echo "empty store:"
  pytest -q -p no:cacheprovider --nbval-lax -n 0 --durations=0 --durations-min=0 \
    "notebooks/$name.ipynb" 2>&1 | tee /dev/stderr | per_notebook
done
