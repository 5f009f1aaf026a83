"""The trained model's own inference on OpenCL: the CSR forward kernels, as bundles run them."""

from sparsecl.trainer.device import create_context
from sparsecl.trainer.network import Network


def model_logits(model, raw, device=None, batch=256):
    """(n, classes) logits of a loaded model file for raw inputs (n, ...), computed on OpenCL."""
    context, queue, _info = create_context(device)
    net = Network(context, queue, [(l.name, l.geometry, l.weights, l.bias, l.relu) for l in model.layers],
                  model.classes, model.preprocess, capacity=batch, input_shape=model.input_shape)
    return net.predict(raw)
