"""Where a phase-2 epoch's wall time goes: training steps, validation, the gap between epochs.

    cd /work/main && CI=1 PYTHONPATH=. python benchmarks/results-2026-11-26/epoch_timeline.py \
        /tmp/cifar50k/cifar-10-batches-py 2 /tmp/s4/run
(`fast`, weights none, 1 head epoch on cached features then 2 phase-2 epochs; seconds since the
first epoch began.)
"""
import time, sys, keras
from cifar_helpers.config import load_config
from cifar_helpers.pipeline import Pipeline
T=[]
class TL(keras.callbacks.Callback):
    def _m(self, what, **kw): T.append((what, time.perf_counter(), kw))
    def on_epoch_begin(self, e, logs=None): self._m('epoch_begin', e=e)
    def on_epoch_end(self, e, logs=None): self._m('epoch_end', e=e)
    def on_train_batch_end(self, b, logs=None):
        if b in (0, 1): self._m('batch_end', b=b)
        self.last=time.perf_counter()
    def on_test_begin(self, logs=None): self._m('test_begin', last_train=getattr(self,'last',0))
    def on_test_end(self, logs=None): self._m('test_end')
cfg=load_config("fast", data=sys.argv[1], weights="none", epochs_head=1, epochs_finetune=int(sys.argv[2]), out=sys.argv[3])
p=Pipeline(cfg, callbacks=[TL()])
p.run("finetune")
t0=T[0][1]
for w,t,kw in T: print(f"{t-t0:9.2f} {w} {kw.get('e','')}{kw.get('b','')} " + (f"last_train={kw['last_train']-t0:.2f}" if 'last_train' in kw else ''))
