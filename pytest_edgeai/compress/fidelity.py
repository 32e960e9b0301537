"""How close a compressed model's outputs are to the fp32 model's on the same inputs.

Per sample: whether the variant's top-1 is fp32's (top-1 agreement), whether fp32's top-1 is in
the variant's top 5 (top-5 agreement), how far the probability of fp32's top-1 class moved, the
cosine similarity of the flattened output, and the largest absolute difference. Outputs are
compared sample by sample along the first (batch) axis, so a (N, classes) tensor gives N.

Why the degenerate check: a reference that names one class for every input (a seeded network
does) lets any variant that keeps the bias score agreement 1.0, so such a reference yields no
agreement figures, only the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MeasurementError

if TYPE_CHECKING:
    from ..backends.base import Session, TensorSpec
    from ..devices import Device
    from ..models.model import Model


@dataclass(frozen=True)
class Fidelity:
    samples: int
    top1_agreement: float | None  # None when top-1 does not apply (one score per sample) or is degenerate
    mean_cosine: float
    max_abs_error: float
    top5_agreement: float | None = None
    top1_prob_change: float | None = None      # mean |p_variant - p_fp32| of fp32's top-1 class
    top1_prob_change_max: float | None = None
    degenerate: str | None = None              # why agreement means nothing on this reference

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_sample(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(a.shape[0], -1)


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of samples whose argmax over the last axis agrees (every position must agree)."""
    ref, cand = np.asarray(reference), np.asarray(candidate)
    same = np.argmax(ref, axis=-1) == np.argmax(cand, axis=-1)
    return float(same.reshape(ref.shape[0], -1).all(axis=1).mean())


def top5_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of samples whose fp32 top-1 is among the candidate's five best (2-d scores)."""
    ref, cand = np.asarray(reference), np.asarray(candidate)
    k = min(5, cand.shape[-1])
    best = np.argsort(-cand, axis=-1, kind="stable")[:, :k]
    return float((best == np.argmax(ref, axis=-1)[:, None]).any(axis=1).mean())


def is_probabilities(scores: np.ndarray) -> bool:
    """Whether rows already are probabilities (>= 0, summing to 1)."""
    x = np.asarray(scores, np.float64)
    return bool(x.min() >= 0 and np.allclose(x.sum(axis=-1), 1.0, atol=1e-3))


def probabilities(scores: np.ndarray, already: bool | None = None) -> np.ndarray:
    """Rows as probabilities: kept when they already are (``already``; None: judged on these rows), else a
    softmax."""
    x = np.asarray(scores, np.float64)
    if is_probabilities(x) if already is None else already:
        return x
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def top1_probability_change(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per sample: |p_candidate - p_reference| of the reference's top-1 class (2-d scores). Both are read
    alike, as the reference's output is (the same tensor of the same graph): a quantised softmax whose rows
    sum to 1 +- a few codes is still probabilities, and a softmax over probabilities would flatten them."""
    already = is_probabilities(reference)
    ref, cand = probabilities(reference, already), probabilities(candidate, already)
    top = np.argmax(ref, axis=-1)[:, None]
    change: np.ndarray = np.abs(np.take_along_axis(cand, top, -1) - np.take_along_axis(ref, top, -1))[:, 0]
    return change


def degenerate(reference: np.ndarray) -> str | None:
    """Why top-k agreement against this reference is meaningless (one class for every input), else None."""
    top = np.argmax(np.asarray(reference), axis=-1).reshape(np.shape(reference)[0], -1)
    if top.shape[0] > 1 and (top == top[0]).all():
        return (f"degenerate reference: fp32 names the same top-1 for all {top.shape[0]} inputs "
                f"(class {int(top[0, 0])}{' at every position' if top.shape[1] > 1 else ''}), so agreement "
                "would score any variant that keeps that bias 1.0")
    return None


def cosine_similarity(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-sample cosine; two all-zero vectors count as identical (1), one zero vector as 0."""
    ref, cand = _per_sample(reference), _per_sample(candidate)
    dot = (ref * cand).sum(axis=1)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    both_zero = (np.linalg.norm(ref, axis=1) == 0) & (np.linalg.norm(cand, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, cos)


def max_abs_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(reference, np.float64) - np.asarray(candidate, np.float64))))


def compare(reference: np.ndarray, candidate: np.ndarray, top1: bool = True) -> Fidelity:
    """All three measures; shapes must match. ``top1=False`` where an argmax means nothing (boxes)."""
    if np.shape(reference) != np.shape(candidate):
        raise MeasurementError(f"outputs differ in shape: reference {list(np.shape(reference))}, "
                               f"candidate {list(np.shape(candidate))}")
    if np.shape(reference)[0] == 0:
        raise MeasurementError("no samples to compare")
    has_classes = top1 and np.ndim(reference) >= 2 and np.shape(reference)[-1] > 1
    common: dict[str, Any] = {"samples": int(np.shape(reference)[0]),
                              "mean_cosine": float(cosine_similarity(reference, candidate).mean()),
                              "max_abs_error": max_abs_error(reference, candidate)}
    why = degenerate(reference) if has_classes else None
    if not has_classes or why:
        return Fidelity(top1_agreement=None, degenerate=why, **common)
    flat = np.ndim(reference) == 2  # one class vector per sample: top-5 and probabilities apply
    change = top1_probability_change(reference, candidate) if flat else None
    return Fidelity(top1_agreement=top1_agreement(reference, candidate),
                    top5_agreement=top5_agreement(reference, candidate) if flat else None,
                    top1_prob_change=float(change.mean()) if change is not None else None,
                    top1_prob_change_max=float(change.max()) if change is not None else None, **common)


def score_output(session: Session, preferred: str = "probabilities") -> int:
    """Which output holds the scores: one named ``preferred`` (skl2onnx), else the first float one."""
    names = [o.name for o in session.outputs]
    if preferred in names:
        return names.index(preferred)
    for i, spec in enumerate(session.outputs):
        if str(spec.dtype).startswith("float"):
            return i
    raise MeasurementError(f"the model has no float output to compare (outputs: {', '.join(names)})")


def run_over(session: Session, feeds: dict[str, np.ndarray], output: int, chunk: int = 32) -> np.ndarray:
    """One output over a set of inputs, fed ``chunk`` samples at a time (the batch axis is 0)."""
    total = next(iter(feeds.values())).shape[0]
    parts: Sequence[np.ndarray] = [
        np.asarray(session.run({k: v[i:i + chunk] for k, v in feeds.items()})[output])
        for i in range(0, total, chunk)]
    return np.concatenate(parts, axis=0)


def static_batch(specs: Sequence[TensorSpec]) -> int | None:
    """The first input's batch size when the model fixes it, else None."""
    first = specs[0].shape[0] if specs and specs[0].shape else None
    return first if isinstance(first, int) and first > 0 else None


def model_scores(model: Model, device: Device, feeds: dict[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """The model's score output over ``feeds`` (an array: its first input), on a session loaded for this
    alone and closed after: a study the bench runs in the device's isolated worker."""
    from ..backends.base import get_backend

    session = get_backend(device.backend).load(model, device)
    try:
        if not isinstance(feeds, dict):
            feeds = {session.inputs[0].name: feeds}
        return run_over(session, feeds, score_output(session), static_batch(session.inputs) or 32)
    finally:
        session.close()
