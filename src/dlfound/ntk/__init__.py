"""Neural tangent kernels: the empirical NTK of any network (torch.func), the analytic NTK of a one-hidden-layer
ReLU network (arc-cosine kernels), NTK kernel regression, the linearised network, and a training callback that
logs how far a network moves from its kernel regime (Jacot et al. 2018; Lee et al. 2019).

    from dlfound.ntk import empirical_ntk, relu_ntk, ntk_regression
    K = empirical_ntk(net, x)                 # [N, N], summed over outputs; refuses what will not fit in memory
"""

from dlfound.ntk.analytic import analytic_ntk, arccos_kernels, relu_ntk
from dlfound.ntk.empirical import empirical_ntk, ntk_bytes
from dlfound.ntk.linearization import linearization_distance, linearized_output, parameters_of
from dlfound.ntk.regression import ntk_regression

__all__ = ["analytic_ntk", "arccos_kernels", "relu_ntk", "empirical_ntk", "ntk_bytes", "linearization_distance",
           "linearized_output", "parameters_of", "ntk_regression"]
