"""Real data for the cascade and the quantised variants: scikit-learn's handwritten digits.

The dataset ships inside scikit-learn (1797 8x8 images, 10 classes), so nothing is downloaded.
At suite time, in seconds, a small and a large classifier are trained with fixed seeds on a
stratified train split and exported to ONNX (probabilities as a plain tensor, no ZipMap), then
run through the same backends as any other model. Two workloads over the test split:
``uniform`` (the test split as is) and ``skewed`` (most inputs from a few common classes; the
small model is specialised on them plus an "other" class that is always offloaded).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import filecache
from ..errors import EdgeAIError
from ..models.model import Model, model_from_file
from .cascade import OTHER

WORKLOADS = ("uniform", "skewed")
N_FEATURES = 64
N_CLASSES = 10


@dataclass(frozen=True)
class DigitsConfig:
    """Everything that decides the data and the models (part of the cache key)."""

    seed: int = 0
    test_size: float = 0.3
    small_components: int = 8  # PCA components before the small model's logistic regression
    large_hidden: int = 256
    large_max_iter: int = 40
    common_classes: tuple[int, ...] = (0, 1, 2)
    common_share: float = 0.9
    skewed_size: int = 600


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class DigitsCascade:
    """The models and inputs of one workload, ready for the backends and cascade.evaluate."""

    workload: str
    small: Model
    large: Model
    small_classes: np.ndarray
    large_classes: np.ndarray
    inputs: np.ndarray  # (N, 64) float32, pixel values / 16
    labels: np.ndarray  # (N,) ground truth


def _sklearn() -> None:
    try:
        import skl2onnx  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise EdgeAIError(f"the digits workloads need scikit-learn and skl2onnx ({exc}): "
                          f"pip install 'pytest-edgeai[compress]'") from None


def load_split(cfg: DigitsConfig) -> Split:
    _sklearn()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=cfg.test_size, random_state=cfg.seed, stratify=y)
    return Split(x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64))


def small_targets(y: np.ndarray, workload: str, cfg: DigitsConfig) -> np.ndarray:
    """The labels the small model learns: the digits, or common digits plus OTHER."""
    _check_workload(workload)
    if workload == "uniform":
        return y
    return np.where(np.isin(y, cfg.common_classes), y, OTHER)


def workload_inputs(split: Split, workload: str, cfg: DigitsConfig) -> tuple[np.ndarray, np.ndarray]:
    """The inputs a workload sends and their labels (deterministic)."""
    _check_workload(workload)
    if workload == "uniform":
        return split.x_test, split.y_test
    rng = np.random.default_rng(cfg.seed)
    common = np.flatnonzero(np.isin(split.y_test, cfg.common_classes))
    rare = np.flatnonzero(~np.isin(split.y_test, cfg.common_classes))
    n_common = round(cfg.skewed_size * cfg.common_share)
    rows = np.concatenate([rng.choice(common, n_common), rng.choice(rare, cfg.skewed_size - n_common)])
    rng.shuffle(rows)
    return split.x_test[rows], split.y_test[rows]


def train_small(split: Split, workload: str, cfg: DigitsConfig) -> Any:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(PCA(cfg.small_components, random_state=cfg.seed),
                          LogisticRegression(max_iter=300, random_state=cfg.seed))
    return _fit(model, split.x_train, small_targets(split.y_train, workload, cfg))


def train_large(split: Split, cfg: DigitsConfig) -> Any:
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier((cfg.large_hidden,), solver="adam", batch_size=32, max_iter=cfg.large_max_iter,
                          random_state=cfg.seed)
    return _fit(model, split.x_train, split.y_train)


def _fit(model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """Fit on one BLAS thread: the matrices are tiny, and a thread pool on a busy 2-core host spins against
    the other work (the large MLP took 107 s with OpenBLAS's default threads there, 4.4 s on one)."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    with warnings.catch_warnings(), threadpool_limits(limits=1):  # a fixed iteration budget: seconds, not convergence
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def export_onnx(classifier: Any, path: Path) -> None:
    """skl2onnx export with ``probabilities`` as a float tensor (no ZipMap)."""
    from skl2onnx import to_onnx

    final = classifier.steps[-1][1] if hasattr(classifier, "steps") else classifier
    onx = to_onnx(classifier, np.zeros((1, N_FEATURES), np.float32), options={id(final): {"zipmap": False}})
    path.write_bytes(onx.SerializeToString())


def build(workload: str, cache_dir: Path, cfg: DigitsConfig | None = None) -> DigitsCascade:
    """Train (once per config and library versions) and export both models; the workload's inputs."""
    _sklearn()
    import skl2onnx
    import sklearn

    cfg = cfg or DigitsConfig()
    _check_workload(workload)
    split = load_split(cfg)
    digest = filecache.key(asdict(cfg), sklearn.__version__, skl2onnx.__version__)[:16]
    small_path = filecache.build_once(cache_dir / f"digits_small_{workload}-{digest}.onnx",
                                   lambda p: export_onnx(train_small(split, workload, cfg), p))
    large_path = filecache.build_once(cache_dir / f"digits_large-{digest}.onnx",
                                   lambda p: export_onnx(train_large(split, cfg), p))
    x, y = workload_inputs(split, workload, cfg)
    params: dict[str, Any] = {"dataset": "sklearn digits", "workload": workload, "config": asdict(cfg)}
    return DigitsCascade(
        workload=workload,
        small=_model(small_path, f"digits_small_{workload}", params),
        large=_model(large_path, "digits_large", params),
        small_classes=np.unique(small_targets(split.y_train, workload, cfg)),
        large_classes=np.arange(N_CLASSES),
        inputs=x, labels=y)


def _model(path: Path, name: str, params: dict[str, Any]) -> Model:
    model = model_from_file(path, name=name)
    return Model(**{**model.__dict__, "params": params, "task": "classification", "input_kind": "digits_8x8"})


def _check_workload(workload: str) -> None:
    if workload not in WORKLOADS:
        raise EdgeAIError(f"unknown digits workload {workload!r}; known: {', '.join(WORKLOADS)}")
