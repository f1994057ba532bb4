"""Memory-bound ops of a step over the 1x1 convolutions' outputs (bfloat16, batch 128): the bias
gradient three ways, and other elementwise passes for scale. One graph per op, best of 5.

    python benchmarks/results-2026-11-26/bias_gradient_ops.py
"""
import time, tensorflow as tf
# matmul-conv outputs of ResNet50 at 32x32, batch 128: (rows, channels, count)
spec=[(8192,64,3),(8192,256,4),(2048,128,4),(2048,512,5),(512,256,6),(512,1024,7),(128,512,3),(128,2048,4)]
xs=[tf.cast(tf.random.normal((r,c)),tf.bfloat16) for r,c,n in spec for _ in range(n)]
print('elements', sum(int(tf.size(x)) for x in xs)/1e6, 'M')
def run(op):
    @tf.function
    def f(xs): return [op(x) for x in xs]
    f(xs)
    best=1e9
    for rep in range(5):
        t=time.perf_counter()
        for _ in range(20): r=f(xs)
        _=r[-1].numpy(); best=min(best,(time.perf_counter()-t)/20*1e3)
    return best
ops={
 'biasaddgrad': lambda x: tf.raw_ops.BiasAddGrad(out_backprop=x),
 'reduce_sum': lambda x: tf.reduce_sum(x,0),
 'matmul_ones': lambda x: tf.matmul(tf.ones((1,x.shape[0]),x.dtype),x),
 'mul': lambda x: x*tf.cast(tf.range(x.shape[1]),x.dtype),
 'relugrad': lambda x: tf.raw_ops.ReluGrad(gradients=x,features=x),
 'cast_f32': lambda x: tf.cast(x,tf.float32),
 'identity_add': lambda x: x+x,
}
for k,op in ops.items(): print(k, round(run(op),2), 'ms')
