"""Inference images/s of the `fast` phase-2 model (bfloat16) at batch 128, 256, 512 and 1,024:
5,120 synthetic images, three rounds in one process. Output in `validation_batch.txt`.

    python benchmarks/results-2026-11-26/validation_batch.py
"""
import time, sys
here = __import__('pathlib').Path(__file__).resolve().parents[1]
sys.path[:0] = [str(here), str(here.parent)]
from benchmark import fast_phase2_model, synthetic
from cifar_helpers.data import make_dataset
model=fast_phase2_model("mixed_bfloat16", True)
x,y=synthetic(5120)
res={}
for rnd in range(3):
  for b in [128,256,512,1024]:
    ds=make_dataset(x,y,b).cache()
    model.evaluate(ds,verbose=0)
    t=time.perf_counter(); model.evaluate(ds,verbose=0); s=time.perf_counter()-t
    res.setdefault(b,[]).append(5120/s)
for b,v in res.items(): print(b, [round(r) for r in v])
