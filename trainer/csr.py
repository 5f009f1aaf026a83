"""Host-side CSR index arrays the device kernels need, derived once per support."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class CsrIndex:
    rowptr: np.ndarray   # (n_out + 1,) row pointers
    cols: np.ndarray     # (nnz,) column of each stored weight
    rows: np.ndarray     # (nnz,) row of each stored weight (for the sampled weight gradient)
    colptr: np.ndarray   # (n_in + 1,) the transposed (CSC) pointers
    rows_t: np.ndarray   # (nnz,) rows in CSC order
    perm_t: np.ndarray   # (nnz,) CSC position -> CSR position of the same weight

    @classmethod
    def of(cls, matrix: sp.csr_matrix) -> "CsrIndex":
        n_out, n_in = matrix.shape
        rowptr = matrix.indptr.astype(np.int32)
        cols = matrix.indices.astype(np.int32)
        rows = np.repeat(np.arange(n_out, dtype=np.int32), np.diff(rowptr))
        # A stable sort keeps rows ascending within each column: a fixed summation order.
        perm_t = np.argsort(cols, kind="stable").astype(np.int32)
        colptr = np.zeros(n_in + 1, dtype=np.int32)
        np.cumsum(np.bincount(cols, minlength=n_in), out=colptr[1:])
        return cls(rowptr, cols, rows, colptr, rows[perm_t], perm_t)
