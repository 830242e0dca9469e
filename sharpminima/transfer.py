"""A transfer probe of the paper's closing claim: do gradually pruned features transfer better?

The paper ends on "less class-specific" features (a higher second-order PSP entropy),
"potentially making these models a better fit in transfer learning", and leaves the study to
future work. The probe (docs/methods.md §7):

- the solution is frozen (eval mode); its **features** are the activations (``relu(z)``, as
  ``similarity.layer_activations``) of its penultimate layer, the last hidden layer
  (``layers: penultimate``), or of every hidden layer concatenated (``layers: all``; a conv
  layer contributes the spatial mean of each channel), on images of a second data set,
  normalised by that data set's own statistics;
- a **linear probe** is fitted on the features of the second data set's first
  ``train_samples`` training images: multinomial logistic regression (scikit-learn's
  ``LogisticRegression``, L-BFGS, ``C`` and ``max_iter`` fixed for every solution) on
  standardised features (``StandardScaler`` fitted on the same images);
- the **probe error** (%) is its error on the first ``test_samples`` test images of the
  second data set. The same probe on the solution's own data set is the control.

The probe is deterministic: L-BFGS from zero on fixed data.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .similarity import layer_activations

__all__ = ["FEATURE_LAYERS", "features", "probe_error"]

FEATURE_LAYERS = ("penultimate", "all")


def features(model: nn.Module, x: torch.Tensor, layers: str = "penultimate",
             batch_size: int = 500) -> np.ndarray:
    """The frozen features of ``x`` (module docstring), as a float64 array (n, features)."""
    if layers not in FEATURE_LAYERS:
        raise ValueError(f"transfer.layers: found {layers!r}; expected one of {FEATURE_LAYERS}")
    acts = layer_activations(model, x, batch_size=batch_size)
    names = list(acts)[-1:] if layers == "penultimate" else list(acts)
    parts = [acts[n].mean(dim=(2, 3)) if acts[n].dim() == 4 else acts[n].flatten(1) for n in names]
    return torch.cat(parts, dim=1).double().numpy()


def probe_error(train_features: np.ndarray, train_labels, test_features: np.ndarray, test_labels,
                C: float = 1.0, max_iter: int = 200) -> dict:
    """Fit the linear probe on (train_features, train_labels), return its test error (%),
    its training error (%) and whether L-BFGS converged within ``max_iter``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        probe.fit(train_features, np.asarray(train_labels))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    test = 100.0 * float(np.mean(probe.predict(test_features) != np.asarray(test_labels)))
    train = 100.0 * float(np.mean(probe.predict(train_features) != np.asarray(train_labels)))
    return {"probe_error": test, "probe_train_error": train, "converged": converged}
