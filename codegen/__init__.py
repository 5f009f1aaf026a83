"""The code generator: model file -> per-layer plan -> rendered bundle (C host, OpenCL kernels, build files)."""
