"""Inputs for a measurement, generated once, outside the timed region."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError

if TYPE_CHECKING:
    from ..backends.base import TensorSpec

def batch_problem(specs: list[TensorSpec], batch: int, overrides: dict[str, list[int]] | None = None) -> str | None:
    """Why the model cannot be fed at ``batch`` (an input with a static batch of another size, or nothing that
    carries a batch), else None: what a batch sweep skips a batch for, and what feeding it would raise."""
    if batch != 1 and not any(spec.shape for spec in specs):  # nothing carries a batch: a query is one inference
        return (f"the model takes {'no inputs' if not specs else 'only scalar inputs'}: it cannot be fed "
                f"at batch {batch} (a query would count as {batch} inferences); measure it at batch 1")
    for spec in specs:
        dim = spec.shape[0] if spec.shape else None
        if not (overrides and spec.name in overrides) and isinstance(dim, int) and dim > 0 and dim != batch:
            return (f"input '{spec.name}' has a static batch of {dim} (shape {list(spec.shape)}): "
                    f"it cannot be fed at batch {batch}")
    return None


def concrete_shape(spec: TensorSpec, batch: int, overrides: dict[str, list[int]] | None = None) -> tuple[int, ...]:
    """The shape to feed: the batch dim set to ``batch``, every other dim known or overridden."""
    if overrides and spec.name in overrides:
        shape = list(overrides[spec.name])
        if shape:
            shape[0] = batch
        return tuple(int(d) for d in shape)
    if spec.shape and (problem := batch_problem([spec], batch)):
        raise ModelError(problem)
    shape = []
    for i, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim > 0:
            shape.append(dim)
        elif i == 0:
            shape.append(batch)
        else:
            raise ModelError(
                f"input '{spec.name}' has an unknown dimension {i} ({dim!r}) in shape {list(spec.shape)}: "
                f"give its shape with input_shapes = {{ {spec.name} = [...] }} in the model's params"
            )
    return tuple(shape)


def make_feeds(specs: list[TensorSpec], batch: int, seed: int = 0,
               overrides: dict[str, list[int]] | None = None) -> dict[str, np.ndarray]:
    """Deterministic random inputs matching the model's specs."""
    if not any(spec.shape for spec in specs) and (problem := batch_problem(specs, batch)):
        raise ModelError(problem)
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = concrete_shape(spec, batch, overrides)
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            feeds[spec.name] = rng.integers(0, 255 if dtype.kind == "u" else 100, shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec.name] = rng.integers(0, 2, shape).astype(dtype)
        else:
            raise ModelError(f"input '{spec.name}' has dtype {dtype} that the harness cannot generate")
    return feeds
