"""sparsecl: sparse neural networks trained on OpenCL, deployed as standalone C/OpenCL bundles."""

__version__ = "0.1.0"


class SparseclError(Exception):
    """An error the user can act on; the CLI prints it as one line, without a traceback."""
