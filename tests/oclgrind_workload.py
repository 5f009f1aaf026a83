"""Run under Oclgrind by test_oclgrind.py: every training kernel template on small shapes, once, in
dense and CSR form (convolution with same and valid padding, pooling, dense with a mask), as an epoch
and an evaluation use them."""
import numpy as np
from sparsecl.geometry import Conv2d, Dense, MaxPool2d
from sparsecl.trainer.device import create_context
from sparsecl.trainer.epochs import EpochRunner
from sparsecl.trainer.network import Network

rng = np.random.default_rng(0)
c1 = Conv2d((1, 6, 6), 2, 3, "same"); p1 = MaxPool2d(c1.out_shape); c2 = Conv2d(p1.out_shape, 3, 2, "valid")
fc = Dense(c2.n_out, 4)
def w(g): return (rng.standard_normal(g.weight_shape) * 0.5).astype(np.float32)
layers = [("c1", c1, w(c1), np.zeros(2, np.float32), True), ("p1", p1, None, None, False),
          ("c2", c2, w(c2), np.zeros(3, np.float32), True), ("f1", fc, w(fc), np.zeros(4, np.float32), False)]
context, queue, info = create_context()
print(info.platform)
masks = [None, None, None, (rng.random(fc.weight_shape) < 0.5).astype(np.float32)]
net = Network(context, queue, layers, 4, {"mean": 1.0, "scale": 0.5}, 21, masks=masks, input_shape=(6, 6))
x = rng.integers(0, 4, (21, 6, 6)).astype(np.float32); y = rng.integers(0, 4, 21).astype(np.int32)
runner = EpochRunner(net, x, y, (6, 6), 21, augment=1)  # a block of 16 samples and a tail
print(runner.run(0, 0, 0.1, 0.9, 0.01))
net.to_csr(); net.compact()
print(runner.run(1, 0, 0.1, 0.9, 0.0))
print(net.predict(x[:3]).shape)
queue.finish()
