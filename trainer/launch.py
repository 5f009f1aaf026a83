"""Kernel launches, enqueued at once or recorded to be replayed.

Setting a kernel's arguments from Python costs more than running a small kernel, so a training step is
recorded once per epoch (each launch gets its own kernel object with its arguments bound) and replayed
for every batch: only the few arguments that change per batch are set again.
"""

from contextlib import contextmanager

import pyopencl as cl


class Launcher:
    def __init__(self, queue):
        self.queue = queue
        self._recording = None

    def __call__(self, kernel, shape, *args, local=None):
        if self._recording is None:
            kernel(self.queue, shape, local, *args)
        else:
            bound = cl.Kernel(kernel.program, kernel.function_name)
            bound.set_args(*args)
            self._recording.append((bound, shape, local, args))   # args kept: buffers must outlive the kernel

    @contextmanager
    def record(self):
        """Within the block, launches are recorded into the yielded list instead of enqueued."""
        self._recording = launches = []
        try:
            yield launches
        finally:
            self._recording = None

    def replay(self, launches):
        for kernel, shape, local, _args in launches:
            cl.enqueue_nd_range_kernel(self.queue, kernel, shape, local)
