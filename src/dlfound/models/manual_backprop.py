"""Backpropagation by hand: the layers of the MLP and LeNet-5 with their backward pass written out.

Each layer is a `torch.autograd.Function` whose `backward` applies the chain rule for that layer alone: given
dL/dy (`grad_out`, the gradient of the loss with respect to the layer's output), it returns dL/dx and the gradient
of every parameter, with the formula beside each line. Autograd only chains them; no line of a backward pass is
differentiated by PyTorch. The modules below subclass the usual `torch.nn` layers, so they hold the same
parameters, draw the same initial weights and have the same state_dict keys: `model.backprop=manual` builds the MLP
and LeNet-5 from them (dlfound.models.mlp, dlfound.models.lenet), and a network trained either way loads into the
other. tests/test_manual_backprop.py gradchecks every function in float64 and trains both ways to the same weights.

Notation: N samples, x [N, in] or [N, C, H, W]; a convolution or pooling window of k = kh x kw pixels slides over
L = Ho x Wo positions. `unfold` copies each window into a column (im2col), `fold` adds columns back into an image
(its adjoint: overlapping windows sum), so a convolution is one matrix product and its backward two more.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models.layers import make_activation

BACKPROPS = ("autograd", "manual")


class LinearFunction(torch.autograd.Function):
    """y = x W^T + b, x [N, in], W [out, in], b [out]."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        y = x @ weight.T  # y_nj = sum_i x_ni W_ji
        return y + bias if bias is not None else y  # + b_j

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_out @ weight  # dL/dx_ni = sum_j dL/dy_nj W_ji
        grad_weight = grad_out.T @ x  # dL/dW_ji = sum_n dL/dy_nj x_ni
        grad_bias = grad_out.sum(0) if ctx.has_bias else None  # dL/db_j = sum_n dL/dy_nj
        return grad_x, grad_weight, grad_bias


class ReLUFunction(torch.autograd.Function):
    """y = max(x, 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * (x > 0).to(grad_out.dtype)  # dy/dx = 1[x > 0] (0 at the kink, as torch.relu)


class SigmoidFunction(torch.autograd.Function):
    """y = 1 / (1 + exp(-x))."""

    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * y * (1 - y)  # dy/dx = sigma(x) (1 - sigma(x)) = y (1 - y)


class TanhFunction(torch.autograd.Function):
    """y = tanh(x)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (1 - y * y)  # dy/dx = 1 - tanh(x)^2 = 1 - y^2


class SoftmaxCrossEntropyFunction(torch.autograd.Function):
    """L = -(1/N) sum_n sum_c q_nc log p_nc with p_n = softmax(z_n) and q_n the target distribution: one-hot at
    the label y_n, or (1 - eps) one-hot + eps / C with label smoothing eps. z [N, C], y [N] class ids."""

    @staticmethod
    def forward(ctx, logits, target, label_smoothing):
        n, classes = logits.shape
        shifted = logits - logits.max(1, keepdim=True).values  # softmax(z) = softmax(z - max z): no overflow
        log_p = shifted - shifted.exp().sum(1, keepdim=True).log()  # log p_c = z_c - log sum_c' exp z_c'
        q = torch.full_like(logits, label_smoothing / classes)
        q.scatter_(1, target[:, None], 1 - label_smoothing + label_smoothing / classes)
        ctx.save_for_backward(log_p.exp(), q)
        return -(q * log_p).sum() / n

    @staticmethod
    def backward(ctx, grad_out):
        p, q = ctx.saved_tensors
        # dL/dz_nc = (p_nc - q_nc) / N: d(-sum_c q_c log p_c)/dz_k = -q_k + p_k sum_c q_c, and sum_c q_c = 1.
        return grad_out * (p - q) / p.shape[0], None, None


class Conv2dFunction(torch.autograd.Function):
    """y = W * x + b (cross-correlation, as nn.Conv2d): x [N, C, H, W], W [O, C, kh, kw], b [O], computed as
    one matrix product on the unfolded input: Y [N, O, L] = W_mat [O, C k] @ X_col [N, C k, L] + b."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        kernel = weight.shape[2:]
        cols = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)  # X_col [N, C k, L]
        out = weight.flatten(1) @ cols  # Y_n = W_mat X_col_n, [N, O, L]
        if bias is not None:
            out = out + bias[:, None]  # + b_o at every position
        ctx.save_for_backward(cols, weight)
        ctx.geometry = (x.shape[2:], kernel, stride, padding, dilation)
        ctx.has_bias = bias is not None
        h_out = (x.shape[2] + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
        return out.view(x.shape[0], weight.shape[0], h_out, -1)

    @staticmethod
    def backward(ctx, grad_out):
        cols, weight = ctx.saved_tensors
        size, kernel, stride, padding, dilation = ctx.geometry
        grad_y = grad_out.flatten(2)  # dL/dY [N, O, L]
        grad_weight = (grad_y @ cols.transpose(1, 2)).sum(0).view_as(weight)  # dL/dW_mat = sum_n dL/dY_n X_col_n^T
        grad_bias = grad_y.sum((0, 2)) if ctx.has_bias else None  # dL/db_o = sum_n sum_l dL/dY_nol
        grad_cols = weight.flatten(1).T @ grad_y  # dL/dX_col_n = W_mat^T dL/dY_n, [N, C k, L]
        # Each input pixel appears in every window that covers it: fold adds the columns' gradients back into it.
        grad_x = F.fold(grad_cols, size, kernel, dilation=dilation, padding=padding, stride=stride)
        return grad_x, grad_weight, grad_bias, None, None, None


def pool_columns(x, kernel, stride):
    """The pooling windows of each channel as columns: [N, C, k, L]."""
    n, c = x.shape[:2]
    return F.unfold(x, kernel, stride=stride).view(n, c, kernel[0] * kernel[1], -1)


def pool_output(values, x, kernel, stride):
    """[N, C, L] back to the pooled image [N, C, Ho, Wo]."""
    h_out = (x.shape[2] - kernel[0]) // stride[0] + 1
    return values.view(*x.shape[:2], h_out, -1)


def unpool(grad_cols, shape, kernel, stride):
    """The adjoint of pool_columns: each window's gradient [N, C, k, L] added back into its pixels."""
    n, c = shape[:2]
    return F.fold(grad_cols.reshape(n, c * kernel[0] * kernel[1], -1), shape[2:], kernel, stride=stride)


class MaxPool2dFunction(torch.autograd.Function):
    """y_l = max_{i in window l} x_i (no padding)."""

    @staticmethod
    def forward(ctx, x, kernel, stride):
        values, where = pool_columns(x, kernel, stride).max(2)  # the maximum of each window and its place
        ctx.save_for_backward(where)
        ctx.geometry = (x.shape, kernel, stride)
        return pool_output(values, x, kernel, stride)

    @staticmethod
    def backward(ctx, grad_out):
        (where,) = ctx.saved_tensors
        shape, kernel, stride = ctx.geometry
        n, c = shape[:2]
        grad_cols = grad_out.new_zeros(n, c, kernel[0] * kernel[1], where.shape[-1])
        # dy_l/dx_i = 1 for the window's maximum i = argmax, 0 for the others: the gradient goes to the winner.
        grad_cols.scatter_(2, where[:, :, None], grad_out.reshape(n, c, 1, -1))
        return unpool(grad_cols, shape, kernel, stride), None, None


class AvgPool2dFunction(torch.autograd.Function):
    """y_l = (1/k) sum_{i in window l} x_i (no padding)."""

    @staticmethod
    def forward(ctx, x, kernel, stride):
        ctx.geometry = (x.shape, kernel, stride)
        return pool_output(pool_columns(x, kernel, stride).mean(2), x, kernel, stride)

    @staticmethod
    def backward(ctx, grad_out):
        shape, kernel, stride = ctx.geometry
        n, c = shape[:2]
        size = kernel[0] * kernel[1]
        grad_cols = (grad_out.reshape(n, c, 1, -1) / size).expand(n, c, size, -1)  # dy_l/dx_i = 1/k in window l
        return unpool(grad_cols, shape, kernel, stride), None, None


class FlattenFunction(torch.autograd.Function):
    """y [N, C H W] = x [N, C, H, W] read row by row: no arithmetic, so the gradient is only reshaped back."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.reshape(x.shape[0], -1)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out.reshape(ctx.shape)  # dL/dx = dL/dy, in x's shape


def softmax_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """F.cross_entropy's mean over the batch (with its label smoothing), differentiated by hand."""
    return SoftmaxCrossEntropyFunction.apply(logits, target, label_smoothing)


def pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


class Linear(nn.Linear):
    def forward(self, x):
        return LinearFunction.apply(x, self.weight, self.bias)


class Conv2d(nn.Conv2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("the hand-written convolution has groups=1, zero padding given as numbers")

    def forward(self, x):
        return Conv2dFunction.apply(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class MaxPool2d(nn.MaxPool2d):
    def forward(self, x):
        return MaxPool2dFunction.apply(x, pair(self.kernel_size), pair(self.stride))


class AvgPool2d(nn.AvgPool2d):
    def forward(self, x):
        return AvgPool2dFunction.apply(x, pair(self.kernel_size), pair(self.stride))


class Flatten(nn.Flatten):
    def forward(self, x):
        return FlattenFunction.apply(x)


class ReLU(nn.ReLU):
    def forward(self, x):
        return ReLUFunction.apply(x)


class Sigmoid(nn.Sigmoid):
    def forward(self, x):
        return SigmoidFunction.apply(x)


class Tanh(nn.Tanh):
    def forward(self, x):
        return TanhFunction.apply(x)


class Layers:
    """The layer classes a network builds itself from: torch.nn's (`autograd`) or the hand-written ones above
    (`manual`), for the MLP and LeNet-5. `cross_entropy` is the loss that goes with them; a network built
    `manual` carries it as its `cross_entropy` attribute, which the classification task then trains with."""

    def __init__(self, backprop: str):
        if backprop not in BACKPROPS:
            raise ValueError(f"backprop must be autograd or manual (backward passes written by hand), got {backprop!r}")
        self.manual = backprop == "manual"
        manual = (Linear, Conv2d, Flatten, AvgPool2d, MaxPool2d)
        usual = (nn.Linear, nn.Conv2d, nn.Flatten, nn.AvgPool2d, nn.MaxPool2d)
        self.Linear, self.Conv2d, self.Flatten, avg, max_ = manual if self.manual else usual
        self.pools = {"avg": avg, "max": max_}
        self.activations = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}
        self.cross_entropy = softmax_cross_entropy if self.manual else F.cross_entropy

    def activation(self, name: str) -> nn.Module:
        """torch.nn's activation `name` (make_activation) or its hand-written twin."""
        if not self.manual:
            return make_activation(name)
        if name not in self.activations:
            raise ValueError(
                f"backprop=manual has the activations {', '.join(self.activations)} written by hand, not {name!r}"
            )
        return self.activations[name]()

    def refuse(self, what: str, present: bool) -> None:
        """A layer with no hand-written backward (batch norm, dropout) is refused rather than silently mixed in."""
        if self.manual and present:
            raise ValueError(f"backprop=manual has no hand-written {what}; turn it off or use backprop=autograd")
