"""A checkpoint's metadata, typed and versioned: made, written (:meth:`CheckpointMetadata.to_plain`) and read
(:meth:`CheckpointMetadata.from_plain`) in this module only.

``P_metadata.pkl`` holds it as plain data: one flat dict of builtin types (read with an unpickler that
refuses anything else), the layout every release has written, so that older releases still read the
fields they know. Schema versions: 1, the original project (settings not recorded, a LabelEncoder);
2, the feature set, its feature names, the population statistics and the model; 3, the schema version
itself, the descriptors' frequency axis and the head (asked for, fitted, and why); 4, the columns of the
factorised model's gender head (``gender_features``; "all" before). Fields an older
checkpoint lacks take the values its release used (:data:`~semg_hht.model.checkpoint.migration.LEGACY_SETTINGS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

import numpy as np

from semg_hht.classes import CLASS_NAMES
from semg_hht.defaults import DEFAULT_BATCH_SIZE
from semg_hht.model.checkpoint.format import FORMAT_VERSION, package_versions
from semg_hht.model.checkpoint.migration import LEGACY_SETTINGS
from semg_hht.model.classifier import HHTClassifier, parse_gamma

SCHEMA_VERSION = 4


@dataclass(frozen=True)
class TrainingRun:
    """What train.py records of its run: the split, the settings a resume must share, the data's fingerprints.

    Fields that release 0.1 did not record are None (or empty): a resume then compares what there is.
    """

    train_files: list[str]
    val_files: list[str]
    test_size: float | None = None
    training: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    svm_request: dict[str, Any] | None = None
    model_settings: dict[str, Any] | None = None
    tuning: dict[str, Any] | None = None
    n_train: int | None = None
    n_val: int | None = None
    data_fingerprints: dict[str, str] = field(default_factory=dict)
    cv: dict[str, Any] | None = None
    resumed: bool = False


@dataclass(frozen=True)
class CheckpointMetadata:
    """Everything a checkpoint records besides its arrays and weights.

    ``frequency_hz`` is the frequency axis (Hz per matrix row) the descriptors were computed on;
    ``channels`` the channels of a window sample, in order (None: one matrix a sample, as every
    checkpoint before window samples); ``run`` is None for a classifier saved outside train.py.
    """

    seed: int
    batch_size: int
    svm: dict[str, Any]
    features: str
    feature_names: list[str] | None
    frequency_hz: list[float] | None
    normalisation: str
    model: str
    head: str
    head_kind: str | None
    head_reason: str | None
    population: dict[str, list[float]] | None
    versions: dict[str, str]
    created: str | None
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    is_fitted: bool = True
    epoch: int = 0
    best_epoch: int | None = None
    history: dict[str, list[Any]] = field(default_factory=dict)
    run: TrainingRun | None = None
    channels: list[str] | None = None
    gender_features: str = "all"
    schema_version: int = SCHEMA_VERSION
    format_version: int = FORMAT_VERSION

    @classmethod
    def of(
        cls,
        classifier: HHTClassifier,
        run: TrainingRun | None = None,
        epoch: int = 0,
        best_epoch: int | None = None,
        history: dict[str, list[Any]] | None = None,
    ) -> CheckpointMetadata:
        """The metadata of ``classifier`` now: its settings, package versions and the time."""
        population = getattr(classifier, "population_", None)
        return cls(
            seed=int(classifier.seed),
            batch_size=int(classifier.batch_size),
            svm={
                "C": float(classifier.svm_C),
                "kernel": classifier.svm_kernel,
                "gamma": parse_gamma(classifier.svm_gamma),
            },
            features=classifier.feature_set,
            feature_names=classifier.feature_names,
            frequency_hz=[float(f) for f in classifier.frequency_axis],
            normalisation=classifier.normalisation,
            model=classifier.model,
            head=classifier.head,
            head_kind=getattr(classifier, "head_kind_", None),
            head_reason=getattr(classifier, "head_reason_", None),
            population=None if population is None else {"mean": list(population.mean), "std": list(population.std)},
            versions=package_versions(),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            is_fitted=classifier.is_fitted,
            epoch=int(epoch),
            best_epoch=None if best_epoch is None else int(best_epoch),
            history=dict(history or {}),
            run=run,
            channels=None if classifier.channel_names is None else list(classifier.channel_names),
            gender_features=classifier.gender_features,
        )

    def to_plain(self) -> dict[str, Any]:
        """The flat dict ``P_metadata.pkl`` stores (the run's fields at the top level, as older releases read them)."""
        plain = asdict(self)
        run = plain.pop("run")
        return {**plain, **(run or {})}

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> CheckpointMetadata:
        """The metadata of a stored dict of any schema; ``KeyError``/``TypeError``/``ValueError`` for one unusable."""
        svm = dict(data.get("svm") or {})
        run = None
        if "train_files" in data:  # written by train.py
            run = TrainingRun(**{f.name: data[f.name] for f in fields(TrainingRun) if data.get(f.name) is not None})
        population = data.get("population")
        frequency = data.get("frequency_hz")
        return cls(
            seed=int(data.get("seed", LEGACY_SETTINGS["seed"])),
            batch_size=int(data.get("batch_size", DEFAULT_BATCH_SIZE)),
            svm={
                "C": float(svm.get("C", LEGACY_SETTINGS["C"])),
                "kernel": str(svm.get("kernel", LEGACY_SETTINGS["kernel"])),
                "gamma": parse_gamma(svm.get("gamma", LEGACY_SETTINGS["gamma"])),
            },
            features=str(data.get("features", LEGACY_SETTINGS["features"])),
            feature_names=None if data.get("feature_names") is None else [str(n) for n in data["feature_names"]],
            frequency_hz=None if frequency is None else [float(f) for f in frequency],
            normalisation=str(data.get("normalisation", "none")),
            model=str(data.get("model", LEGACY_SETTINGS["model"])),
            head=str(data.get("head", LEGACY_SETTINGS["head"])),
            head_kind=data.get("head_kind"),
            head_reason=data.get("head_reason"),
            population=None
            if population is None
            else {"mean": list(np.asarray(population["mean"])), "std": list(np.asarray(population["std"]))},
            versions=dict(data.get("versions") or {}),
            created=data.get("created"),
            class_names=[str(n) for n in data.get("class_names", CLASS_NAMES)],
            is_fitted=bool(data.get("is_fitted", True)),
            epoch=int(data.get("epoch") or 0),
            best_epoch=data.get("best_epoch"),
            history=dict(data.get("history") or {}),
            run=run,
            channels=None if data.get("channels") is None else [str(name) for name in data["channels"]],
            # Before the option, the gender head saw every column.
            gender_features=str(data.get("gender_features", "all")),
            schema_version=int(data.get("schema_version", 2 if "features" in data else 1)),
            format_version=int(data.get("format_version", 1)),
        )
