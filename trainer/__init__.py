"""The trainer: sparse networks learned from scratch on OpenCL (proximal l1, then debiasing in CSR form)."""
