/* The network in plain C: the reference path and the fallback when no OpenCL device can be opened. */
#ifndef SC_CPU_H
#define SC_CPU_H

#include "sc_model.h"

/* Logits (n x classes) for n raw samples. scratch_a and scratch_b hold n * model->max_width floats each.
 * layer_seconds, when not NULL, gets each layer's time added to it (n_layers entries). */
void sc_cpu_forward(const sc_model *model, const float *raw, float *logits, int n,
                    float *scratch_a, float *scratch_b, double *layer_seconds);

#endif
