"""A function sampled on a grid: the regression sets of universal-approximation and neural-tangent-kernel experiments.

Training inputs are the `side`^dim points of a regular grid of [low, high]^dim; validation and test inputs the
points of a finer grid (`test_side` per axis), so errors on it measure the fit everywhere (the sup norm and the L2
norm of the error on a dense grid) and a 1-D fit can be drawn as a curve. Targets [N, 1]: sin: prod_i sin(x_i);
abs: sum_i |x_i| / dim; step: 1[sum_i x_i > 0]; product: prod_i x_i (x1 * x2 in 2-D); or an expression in x
(or x1, ..., x_dim) such as "sin(3*x) + x**2" (see `parse_expression`: a whitelist, never Python's eval).
Deterministic, no download, full batches by default (batch_size: null is the whole training set, the gradient
descent of the NTK theory).
"""

import ast
import math
import operator

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from dlfound.errors import ConfigError

TARGETS = {
    "sin": lambda x: torch.sin(x).prod(1, keepdim=True),
    "abs": lambda x: x.abs().mean(1, keepdim=True),
    "step": lambda x: (x.sum(1, keepdim=True) > 0).to(x.dtype),
    "product": lambda x: x.prod(1, keepdim=True),
}


def _pairwise(fn):
    return lambda a, b: fn(*torch.broadcast_tensors(torch.as_tensor(a), torch.as_tensor(b)))


# What an expression may call and name: numpy's names for torch's elementwise functions.
FUNCTIONS = {
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "tanh": torch.tanh,
    "sign": torch.sign,
    "floor": torch.floor,
    "arctan": torch.atan,
    "maximum": _pairwise(torch.maximum),
    "minimum": _pairwise(torch.minimum),
}
CONSTANTS = {"pi": math.pi, "e": math.e}
OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load, *OPERATORS)


def parse_expression(text: str, dim: int):
    """The target function [N, dim] -> [N, 1] that `text` writes, e.g. "sin(3*x) + x**2" or "x1 * x2": numbers,
    the variables x (1-D) or x1 ... x_dim, pi, e, + - * / ** and calls of FUNCTIONS. The text is parsed into a
    syntax tree and checked against that whitelist, then evaluated node by node on tensors: no Python code from it
    ever runs. Anything else is a ConfigError naming what is not allowed."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise ConfigError(
            f"data.target={text!r} is not an expression ({err.msg}); write e.g. 'sin(3*x) + x**2'"
        ) from None
    variables = {f"x{i + 1}": i for i in range(dim)} | ({"x": 0} if dim == 1 else {})
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    unknown = sorted(names - set(FUNCTIONS) - set(CONSTANTS) - set(variables))
    syntax = sorted({type(node).__name__ for node in ast.walk(tree) if not isinstance(node, NODES)})
    syntax += [
        repr(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float))
    ]
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords)
    ]
    if unknown or syntax or calls:
        what = [
            f"names {', '.join(unknown)}" if unknown else "",
            f"syntax {', '.join(syntax)}" if syntax else "",
            f"calls of {', '.join(map(str, calls))}" if calls else "",
        ]
        raise ConfigError(
            f"data.target={text!r} uses {'; '.join(w for w in what if w)}, which target expressions do "
            f"not allow. Use the variables {', '.join(variables)}, numbers, pi, e, + - * / ** and the "
            f"functions {', '.join(FUNCTIONS)}"
        )

    def evaluate(node, x: torch.Tensor):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return x[:, variables[node.id]] if node.id in variables else CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            return OPERATORS[type(node.op)](evaluate(node.operand, x))
        if isinstance(node, ast.BinOp):
            return OPERATORS[type(node.op)](evaluate(node.left, x), evaluate(node.right, x))
        return FUNCTIONS[node.func.id](*(torch.as_tensor(evaluate(a, x), dtype=x.dtype) for a in node.args))

    return lambda x: torch.as_tensor(evaluate(tree.body, x), dtype=x.dtype).expand(len(x)).reshape(-1, 1).clone()


def target_function(target: str, dim: int):
    """The function [N, dim] -> [N, 1] that data.target names (TARGETS) or writes (an expression)."""
    return TARGETS.get(target) or parse_expression(str(target), dim)


def grid(side: int, dim: int, low: float, high: float) -> torch.Tensor:
    """[side^dim, dim]: every point of the regular grid with `side` points per axis, ends included."""
    axis = torch.linspace(low, high, side)
    return torch.cartesian_prod(*[axis] * dim).reshape(-1, dim)


class FunctionDataModule(L.LightningDataModule):
    def __init__(
        self,
        target: str = "sin",
        dim: int = 1,
        low: float = -math.pi,
        high: float = math.pi,
        side: int = 16,
        test_side: int = 200,
        noise: float = 0.0,
        seed: int = 0,
        batch_size: int | None = None,
        in_channels: int | None = None,
        num_classes: int = 1,
        image_size: int | None = None,
        **_,
    ):
        super().__init__()
        if dim < 1 or side < 2 or test_side < 2 or not low < high:
            raise ConfigError(
                f"data needs dim >= 1, side >= 2, test_side >= 2 and low < high; got dim={dim}, "
                f"side={side}, test_side={test_side}, low={low}, high={high}"
            )
        if side**dim > 100_000 or test_side**dim > 100_000:
            raise ConfigError(
                f"a grid of side {max(side, test_side)} in {dim} dimensions has more than 100,000 "
                "points; lower data.side or data.test_side"
            )
        self.function = target_function(target, dim)
        self.target, self.dim, self.low, self.high = target, dim, low, high
        self.side, self.test_side, self.noise, self.seed, self.batch_size = side, test_side, noise, seed, batch_size
        self.in_channels, self.num_classes, self.image_size = dim, num_classes, None
        if in_channels not in (None, dim):
            raise ConfigError(f"data.in_channels={in_channels} but the inputs have data.dim={dim} coordinates")

    def setup(self, stage: str | None = None) -> None:
        f = self.function
        x = grid(self.side, self.dim, self.low, self.high)
        y = f(x) + self.noise * torch.randn(len(x), 1, generator=torch.Generator().manual_seed(self.seed))
        x_test = grid(self.test_side, self.dim, self.low, self.high)
        self.train_set, self.test_set = TensorDataset(x, y), TensorDataset(x_test, f(x_test))

    def _loader(self, dataset: TensorDataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size or len(dataset),
            shuffle=shuffle,
            generator=torch.Generator().manual_seed(self.seed) if shuffle else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=bool(self.batch_size) and self.batch_size < len(self.train_set))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
