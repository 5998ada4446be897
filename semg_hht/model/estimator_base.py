"""scikit-learn's estimator protocol without importing scikit-learn: what the classifier and its steps rest on.

A checkpoint predicts with numpy and torch alone (tested: loading and predicting import neither
scikit-learn nor joblib nor scipy), so the classes on that path cannot derive from
``sklearn.base.BaseEstimator``, whose import pulls in scipy. They derive from these instead, which
keep the same contract, so scikit-learn treats them as its own (``clone``, ``get_params`` /
``set_params``, ``GridSearchCV``, ``cross_val_predict``, ``Pipeline``, ``check_estimator``):

* every ``__init__`` parameter is stored as given under its own name, and nothing else is set there;
* ``get_params(deep=True)`` also lists the parameters of parameters that are estimators (``a__b``);
* ``set_params`` takes the same names and refuses unknown ones with scikit-learn's ``ValueError``;
* ``__sklearn_tags__`` says what kind of estimator it is; it imports scikit-learn, which is loaded
  whenever scikit-learn asks.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


class Estimator:
    """The parameter half of ``sklearn.base.BaseEstimator``."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return list(_init_parameters(cls))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` parameters by name (with ``deep``, those of estimator parameters as ``name__param``)."""
        params: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update({f"{name}__{key}": item for key, item in value.get_params().items()})
            params[name] = value
        return params

    def set_params(self, **params: Any) -> Estimator:
        """Set parameters by name (``name__param`` for a parameter's own); returns the estimator."""
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, delimiter, sub_key = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self}. "
                    f"Valid parameters are: {self._get_param_names()!r}."
                )
            if delimiter:
                nested.setdefault(name, {})[sub_key] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: parameter.default for name, parameter in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if not _same(value, defaults.get(name, inspect.Parameter.empty))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value is default or value == default)
    except (TypeError, ValueError):  # an array compares element-wise
        return False


_INIT_PARAMETERS: dict[type, tuple[str, ...]] = {}


def _init_parameters(cls: type) -> tuple[str, ...]:
    """The names of ``cls.__init__``'s parameters, sorted; read once per class (``clone`` asks at every fit
    of a model selection: reading the signature each time cost a small grid search about a sixth of its time)."""
    if cls not in _INIT_PARAMETERS:
        signature = inspect.signature(cls.__init__)  # type: ignore[misc]
        _INIT_PARAMETERS[cls] = tuple(
            sorted(
                name
                for name, parameter in signature.parameters.items()
                if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
            )
        )
    return _INIT_PARAMETERS[cls]


class GroupsConsumer:
    """Metadata routing of ``groups`` (scikit-learn's ``set_{method}_request``) for an estimator whose
    ``fit``, ``predict``, ``predict_proba`` and ``score`` take the subjects (and muscles) of the files.

    The requests are kept in ``_metadata_request``, where scikit-learn's own estimators keep them
    (``clone`` copies it); scikit-learn is imported only when routing is asked for, which is fitting.
    """

    def set_fit_request(self, *, groups: bool | str | None = None) -> Any:
        """Ask scikit-learn's metadata routing for ``groups`` in ``fit`` (True, False, None or an alias)."""
        return self._request("fit", groups=groups)

    def set_predict_proba_request(self, *, groups: bool | str | None = None) -> Any:
        """Ask for ``groups`` in ``predict_proba`` (as :meth:`set_fit_request`)."""
        return self._request("predict_proba", groups=groups)

    def set_predict_request(self, *, groups: bool | str | None = None) -> Any:
        """Ask for ``groups`` in ``predict`` (as :meth:`set_fit_request`)."""
        return self._request("predict", groups=groups)

    def set_score_request(self, *, groups: bool | str | None = None, sample_weight: bool | str | None = None) -> Any:
        """Ask for ``groups`` and ``sample_weight`` in ``score`` (as :meth:`set_fit_request`)."""
        return self._request("score", groups=groups, sample_weight=sample_weight)

    def _request(self, method: str, **requests: bool | str | None) -> Any:
        from sklearn.utils.metadata_routing import MetadataRequest

        request = getattr(self, "_metadata_request", None) or MetadataRequest(owner=type(self).__name__)
        for param, alias in requests.items():
            getattr(request, method).add_request(param=param, alias=alias)
        self._metadata_request = request
        return self

    def get_metadata_routing(self) -> Any:
        """The metadata each method asks for (:meth:`set_fit_request` and its siblings); nothing by default."""
        from sklearn.utils.metadata_routing import MetadataRequest

        return getattr(self, "_metadata_request", None) or MetadataRequest(owner=type(self).__name__)


def balanced_accuracy_score(truth: Any, predicted: np.ndarray, sample_weight: Any = None) -> float:
    """Mean recall over the classes present in ``truth`` (n,), weighted by ``sample_weight`` (n,) if given:
    scikit-learn's ``balanced_accuracy_score``, computed here so that scoring imports no scikit-learn."""
    truth = np.asarray(truth)
    weights = np.ones(len(truth)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    correct = weights * (truth == predicted)
    totals = {label: weights[truth == label].sum() for label in np.unique(truth)}
    return float(np.mean([correct[truth == label].sum() / total for label, total in totals.items() if total > 0]))


class Transformer(Estimator):
    """``fit_transform`` and the tags of a scikit-learn transformer (``TransformerMixin``)."""

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        return self.fit(X, y, **fit_params).transform(X)  # type: ignore[attr-defined]

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False), transformer_tags=TransformerTags())


def classifier_tags(three_d_input: bool) -> Any:
    """The tags of a classifier (``ClassifierMixin``), whose input is 3-D arrays when ``three_d_input``."""
    from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

    return Tags(
        estimator_type="classifier",
        target_tags=TargetTags(required=True),
        classifier_tags=ClassifierTags(),
        input_tags=InputTags(two_d_array=not three_d_input, three_d_array=three_d_input),
    )
