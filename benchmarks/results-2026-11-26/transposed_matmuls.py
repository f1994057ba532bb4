"""The 1x1 convolutions' three matmuls at batch 128 in bfloat16, with the transposed operand as
oneDNN reads it and materialised first. One graph per variant, best of 7.

    python benchmarks/results-2026-11-26/transposed_matmuls.py
"""
import time, tensorflow as tf
bf=tf.bfloat16
# (M rows, Cin, Cout, count): 1x1 convs forward X[M,Cin] @ W[Cin,Cout]
spec=[(8192,64,256,4),(8192,256,64,2),(2048,512,128,3),(2048,128,512,4),(512,1024,256,5),(512,256,1024,6),(128,2048,512,2),(128,512,2048,3),(128,1024,1024,6)]
Xs=[tf.cast(tf.random.normal((M,ci)),bf) for M,ci,co,n in spec for _ in range(n)]
Ws32=[tf.random.normal((ci,co)) for M,ci,co,n in spec for _ in range(n)]
Ws=[tf.cast(w,bf) for w in Ws32]
dYs=[tf.cast(tf.random.normal((M,co)),bf) for M,ci,co,n in spec for _ in range(n)]
flop=sum(2*M*ci*co*n for M,ci,co,n in spec)/1e9
def timeit(f,n=10):
    f(); best=1e9
    for r in range(7):
        t=time.perf_counter()
        for _ in range(n): out=f()
        _=out[-1].numpy(); best=min(best,(time.perf_counter()-t)/n*1e3)
    return best
cases={
 'fwd X@W': lambda: [tf.matmul(x,w) for x,w in zip(Xs,Ws)],
 'dX = dY@W^T (transpose_b)': lambda: [tf.matmul(d,w,transpose_b=True) for d,w in zip(dYs,Ws)],
 'dX = dY@cast(transpose(W32))': lambda: [tf.matmul(d,tf.cast(tf.transpose(w),bf)) for d,w in zip(dYs,Ws32)],
 'cast(W32) only': lambda: [tf.cast(w,bf) for w in Ws32],
 'cast(transpose(W32)) only': lambda: [tf.cast(tf.transpose(w),bf) for w in Ws32],
 'dW = X^T@dY (transpose_a)': lambda: [tf.matmul(x,d,transpose_a=True) for x,d in zip(Xs,dYs)],
 'dW = transpose(X)@dY': lambda: [tf.matmul(tf.transpose(x),d) for x,d in zip(Xs,dYs)],
 'dW^T = dY^T@X': lambda: [tf.matmul(d,x,transpose_a=True) for x,d in zip(Xs,dYs)],
 'transpose(X) only': lambda: [tf.transpose(x) for x in Xs],
}
for name,f in cases.items():
    ms=timeit(tf.function(f)); print(f"{name:32s} {ms:7.2f} ms {flop/ms*1e3:6.0f} GFLOP/s")
