"""Neural tangent kernels: the empirical NTK of any network (torch.func), the analytic NTK of a one-hidden-layer
ReLU network (arc-cosine kernels), NTK kernel regression and the linearised network (Jacot et al. 2018; Lee et al.
2019). The training callback that logs how far a network moves from its kernel regime is dlfound.runs.ntk_monitor.

    from dlfound.ops.ntk import empirical_ntk, relu_ntk, ntk_regression
    K = empirical_ntk(net, x)                 # [N, N], summed over outputs; refuses what will not fit in memory
"""

from dlfound.ops.ntk.analytic import analytic_ntk, arccos_kernels, relu_ntk
from dlfound.ops.ntk.empirical import empirical_ntk, ntk_bytes
from dlfound.ops.ntk.linearization import linearization_distance, linearized_output, parameters_of
from dlfound.ops.ntk.regression import ntk_regression

__all__ = [
    "analytic_ntk",
    "arccos_kernels",
    "relu_ntk",
    "empirical_ntk",
    "ntk_bytes",
    "linearization_distance",
    "linearized_output",
    "parameters_of",
    "ntk_regression",
]
