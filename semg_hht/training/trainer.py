"""Training the CNN encoder: a temporary linear head, cross-entropy, AdamW and a one-cycle schedule.

The encoder (fixed architecture, :mod:`semg_hht.model.encoder`) is trained end to end
with a linear head 256 -> 6 on the training split. After every epoch one
evaluation pass encodes every labelled file with the current weights: the head
gives the training and validation loss and accuracy, and the classifier's
scaler and SVM are refitted on the training features, so the classifier is
complete after every epoch and can be checkpointed. Early stopping watches the
head's validation loss; the best epoch's classifier is kept.

Everything random in an epoch (the order of the files, the augmentation) is
drawn from a generator seeded by ``(seed, epoch)``, so an epoch re-run after a
resume repeats the interrupted one exactly; with the optimizer, scheduler and
head state restored, a resumed run ends with the same weights as an
uninterrupted one (on the same device and thread count).
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from semg_hht.classes import N_CLASSES
from semg_hht.data.dataset import extract_file_features
from semg_hht.io.matrices import iter_matrix_batches
from semg_hht.logs import TO_STDERR
from semg_hht.memory import keep_freed_memory
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.encoder import FEATURE_DIM
from semg_hht.training.encoder_options import EncoderTrainingOptions, LabelledFiles, TrainingDataError

logger = logging.getLogger(__name__)

POSTFIX_EVERY = 10  # batches between updates of the progress bar's loss and accuracy
MAX_SHIFT_FRACTION = 0.125
AMPLITUDE_RANGE = (0.8, 1.25)
HISTORY_KEYS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "svm_train_accuracy",
    "svm_val_accuracy",
    "lr",
    "seconds",
)


class Standardize(nn.Module):
    """(x - mean) / scale per feature, with ``mean`` and ``scale`` set from data, not learned.

    Works on any batch size, one sample included, and is the same in training and evaluation.
    """

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))

    def fit(self, features: np.ndarray) -> None:
        """Set the statistics from features (n, d), as scikit-learn's StandardScaler does."""
        values = torch.from_numpy(np.asarray(features, dtype=np.float32)).to(self.mean.device)
        self.mean.copy_(values.mean(0))
        std = values.std(0, correction=0)
        self.scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


def build_linear_head(seed: int) -> nn.Sequential:
    """The temporary head: feature standardisation, then a linear map 256 -> 6.

    The encoder's features (global averages of instance-normalised maps) vary
    little around channel-specific constants; standardising them with the
    untrained encoder's statistics over the training files (set at epoch 0, as
    the SVM's scaler does) lets the linear layer learn at the encoder's pace.
    The head is one affine map. Initialised from ``seed`` without touching the
    global RNG.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return nn.Sequential(Standardize(FEATURE_DIM), nn.Linear(FEATURE_DIM, N_CLASSES))


def augment_batch(matrices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomly shift each matrix in time and scale its amplitude.

    Parameters
    ----------
    matrices : ndarray, shape (b, 256, 256), float32
        Rows frequency, columns time.
    rng : numpy Generator

    Returns
    -------
    ndarray, shape (b, 256, 256), float32
        Each matrix rolled along the time axis by up to 12.5 % of its width
        (circularly) and multiplied by a log-uniform factor in [0.8, 1.25].
    """
    out = np.empty_like(matrices)
    max_shift = int(matrices.shape[2] * MAX_SHIFT_FRACTION)
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(matrices))
    low, high = np.log(AMPLITUDE_RANGE)
    factors = np.exp(rng.uniform(low, high, size=len(matrices))).astype(np.float32)
    for i, (shift, factor) in enumerate(zip(shifts, factors, strict=True)):
        np.multiply(np.roll(matrices[i], shift, axis=1), factor, out=out[i])
    return out


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Cross-entropy weights n / (k * count) for the k classes present, so each class counts equally."""
    present = np.unique(labels)
    weights = np.zeros(N_CLASSES)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return torch.tensor(weights, dtype=torch.float32)


def _rng_states() -> dict[str, Any]:
    # The legacy generator's state is always this tuple (the dict form needs legacy=False).
    kind, keys, position, has_gauss, cached = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _epoch_line(record: dict[str, Any], epochs: int, improved: bool) -> str:
    """An epoch's log line from its history record (see :data:`HISTORY_KEYS`)."""
    val_loss = record["val_loss"]
    return (
        f"Epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.4f} / val {_figure(val_loss, '.4f')}, "
        f"accuracy {record['train_accuracy']:.3f} / val {_figure(record['val_accuracy'], '.3f')}, "
        f"SVM val accuracy {_figure(record['svm_val_accuracy'], '.3f')}, lr {record['lr']:.2e}, "
        f"{record['seconds']:.1f} s" + (" (best so far)" if improved and val_loss is not None else "")
    )


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu() for key, value in module.state_dict().items()}


class EncoderTrainer:
    """Train ``classifier.active_encoder()`` and refit ``classifier``'s SVM after every epoch.

    Parameters
    ----------
    classifier : HHTClassifier
        Its encoder is trained in place; its device, batch size, seed and
        ``bf16`` setting are used.
    options : EncoderTrainingOptions
    train, val : LabelledFiles
        The training and validation split; every file must be loadable. With no
        validation files (a final fit on all data), every epoch counts as the best
        and training runs all ``options.epochs`` epochs.
    progress : bool
        Show a tqdm bar per epoch (on stderr, when it is a terminal).

    Attributes
    ----------
    epoch : int
        The last completed epoch; -1 before the initial evaluation (epoch 0,
        the untrained encoder).
    history : dict of lists
        Per epoch (:data:`HISTORY_KEYS`): training and validation loss and
        accuracy of the linear head (evaluation mode, end of the epoch), the
        SVM's training and validation accuracy, learning rate, seconds.
    best : HHTClassifier or None
        A copy of the classifier at the epoch with the lowest validation loss.
    best_head : nn.Module or None
        The linear head at that epoch.
    finished : bool
        All epochs ran, or early stopping ended training.
    """

    def __init__(
        self,
        classifier: HHTClassifier,
        options: EncoderTrainingOptions,
        train: LabelledFiles,
        val: LabelledFiles,
        progress: bool = True,
    ):
        options.validate()
        self.classifier, self.options, self.train, self.val = classifier, options, train, val
        self.progress = progress
        self.device = classifier.torch_device
        # The encoder trained in place is also the classifier's `encoder` parameter, so that a refit or a
        # clone of the classifier starts from the trained weights, not from the seed's.
        encoder = classifier.active_encoder().to(self.device)
        classifier.set_params(encoder=encoder)
        self.head = build_linear_head(classifier.seed).to(self.device)
        parameters = [*encoder.parameters(), *self.head.parameters()]
        self.optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
        self.steps_per_epoch = math.ceil(len(train.paths) / classifier.batch_size)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=options.lr, total_steps=max(1, options.epochs * self.steps_per_epoch)
        )
        self.weights = class_weights(train.labels).to(self.device)
        # A class absent from training still counts when scoring (with weight 0 a validation set
        # of such files would have the loss 0/0).
        self.evaluation_weights = torch.where(self.weights > 0, self.weights, torch.ones_like(self.weights))
        self.epoch = -1
        self.history: dict[str, list] = {key: [] for key in HISTORY_KEYS}
        self.best: HHTClassifier | None = None
        self.best_head: nn.Module | None = None
        self.best_epoch = -1
        self.best_val_loss = math.inf
        self.stale_epochs = 0
        self.finished = False

    def run(
        self, on_epoch_end: Callable[[bool], None] | None = None, initial_features: np.ndarray | None = None
    ) -> None:
        """Evaluate the untrained encoder (epoch 0) if not done yet, then train until finished.

        ``on_epoch_end(improved)`` is called after each epoch, ``improved`` telling
        whether it is the new best; that is where checkpoints are saved.
        ``initial_features`` (n_train + n_val, n_features), the untrained encoder's features
        of the training then validation files, spare epoch 0 its encoding pass.
        """
        while not self.finished:
            started = time.perf_counter()
            features = initial_features if self.epoch < 0 else None
            if self.epoch >= 0:
                self.train_epoch(self.epoch + 1)
            self.epoch += 1
            improved = self._evaluate(started, features)
            if on_epoch_end is not None:
                on_epoch_end(improved)

    def train_epoch(self, epoch: int) -> None:
        """One pass of optimisation over the training files, in the order and with the augmentation of ``epoch``."""
        keep_freed_memory()
        encoder, batch_size = self.classifier.active_encoder(), self.classifier.batch_size
        rng = np.random.default_rng([self.classifier.seed, epoch])
        order = rng.permutation(len(self.train.paths))
        paths = [self.train.paths[i] for i in order]
        label_of = dict(zip(self.train.paths, self.train.labels.tolist(), strict=True))
        encoder.to(self.device).train()
        self.head.train()
        # Running sums stay on the device: reading them back every step would wait for the GPU.
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        bar = tqdm(
            total=len(paths),
            desc=f"Epoch {epoch}/{self.options.epochs}",
            unit="file",
            disable=None if self.progress else True,
        )
        with bar:
            for batch in iter_matrix_batches(paths, batch_size):
                for error in batch.errors:
                    raise TrainingDataError(f"{error}: the file changed or vanished while training")
                matrices = augment_batch(batch.matrices, rng) if self.options.augment else batch.matrices
                inputs = torch.from_numpy(np.ascontiguousarray(matrices)).unsqueeze(1).to(self.device)
                targets = torch.tensor([label_of[path] for path in batch.paths], device=self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.classifier.bf16):
                    logits = self.head(encoder(inputs))
                loss = F.cross_entropy(logits.float(), targets, weight=self.weights)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.scheduler.step()
                total_loss += loss.detach() * len(targets)
                correct += (logits.argmax(1) == targets).sum()
                seen += len(targets)
                bar.update(len(targets))
                if seen == len(paths) or bar.n % (POSTFIX_EVERY * batch_size) < len(targets):
                    bar.set_postfix(loss=f"{float(total_loss) / seen:.4f}", acc=f"{int(correct) / seen:.3f}")

    def _head_scores(self, features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        self.head.eval()
        with torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            logits = self.head(inputs.to(self.device)).float()
            targets = torch.from_numpy(labels).to(self.device)
            loss = F.cross_entropy(logits, targets, weight=self.evaluation_weights)
            accuracy = (logits.argmax(1) == targets).float().mean()
        return float(loss), float(accuracy)

    def _evaluate(self, started: float, features: np.ndarray | None) -> bool:
        """Score the epoch just completed, refit the SVM, keep the classifier if it is the best; log the epoch.

        ``features`` (n_train + n_val, n_features) are the epoch's features when known (epoch 0's first
        pass), else the files are encoded here. Returns whether the epoch is the new best.
        """
        record = self._score_epoch(self._epoch_features(features))
        record["seconds"] = time.perf_counter() - started
        for key in HISTORY_KEYS:
            self.history[key].append(record[key])
        improved = self._keep_if_best(record["val_loss"])
        stopped_early = self.options.patience > 0 and self.stale_epochs >= self.options.patience
        self.finished = self.epoch >= self.options.epochs or stopped_early
        logger.info(_epoch_line(record, self.options.epochs, improved), extra=TO_STDERR)
        if stopped_early and self.epoch < self.options.epochs:
            logger.info(
                f"Early stopping: no lower validation loss for {self.stale_epochs} epochs; "
                f"best epoch {self.best_epoch}",
                extra=TO_STDERR,
            )
        return improved

    def _epoch_features(self, features: np.ndarray | None) -> np.ndarray:
        """``features``, or the current classifier's features of the training then the validation files."""
        if features is not None:
            return features
        paths = self.train.paths + self.val.paths
        encoded = extract_file_features(
            self.classifier, paths, self.classifier.batch_size, f"Evaluating epoch {self.epoch}"
        )
        if encoded.errors:
            raise TrainingDataError(f"{encoded.errors[0]}: the file changed or vanished while training")
        return encoded.features

    def _score_epoch(self, features: np.ndarray) -> dict[str, Any]:
        """The epoch's history record (all but ``seconds``): the head's loss and accuracy, and the SVM's
        accuracy once refitted on the training features; validation figures None without validation files."""
        train, val = self.train, self.val
        train_features, val_features = features[: len(train.paths)], features[len(train.paths) :]
        cnn = self.classifier.cnn_columns
        if self.epoch == 0:
            cast(Standardize, self.head[0]).fit(train_features[:, cnn])
        train_loss, train_accuracy = self._head_scores(train_features[:, cnn], train.labels)
        self.classifier.fit_features(train_features, train.labels, train.groups)
        svm_train = float(np.mean(self.classifier.predict_features(train_features, train.groups) == train.labels))
        val_loss = val_accuracy = svm_val = None
        if val.paths:
            val_loss, val_accuracy = self._head_scores(val_features[:, cnn], val.labels)
            svm_val = float(np.mean(self.classifier.predict_features(val_features, val.groups) == val.labels))
        return {
            "epoch": self.epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "svm_train_accuracy": svm_train,
            "svm_val_accuracy": svm_val,
            "lr": float(self.scheduler.get_last_lr()[0]),
        }

    def _keep_if_best(self, val_loss: float | None) -> bool:
        """Keep a copy of the classifier and head if this epoch has the lowest validation loss; count stale epochs."""
        # Without validation files (a final fit on all data) every epoch is the best so far.
        improved = self.best is None or val_loss is None or val_loss < self.best_val_loss
        if improved:
            self.best_val_loss = math.inf if val_loss is None else val_loss
            self.best_epoch, self.stale_epochs = self.epoch, 0
            self.best = copy.deepcopy(self.classifier)
            self.best_head = copy.deepcopy(self.head)
        else:
            self.stale_epochs += 1
        return improved

    @property
    def best_fitted(self) -> HHTClassifier:
        """The best epoch's classifier (``best``), once :meth:`run` has run an epoch."""
        if self.best is None:
            raise RuntimeError("no epoch has run yet: there is no best classifier")
        return self.best

    def head_predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 6) of the best epoch's linear head from feature vectors (n, n_features)."""
        assert self.best_head is not None, "run() first"
        self.best_head.eval()
        cnn = np.asarray(features, dtype=np.float32)[:, self.classifier.cnn_columns]
        with torch.inference_mode():
            logits = self.best_head(torch.from_numpy(np.ascontiguousarray(cnn)).to(self.device))
            return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to go on exactly, except the encoder and the best classifier.

        Only tensors and builtin types: it loads with ``torch.load(weights_only=True)``.
        """
        if self.best_head is None:
            raise RuntimeError("no epoch has run yet: there is no trainer state to save")
        return {
            "epoch": self.epoch,
            "head": _cpu_state(self.head),
            "best_head": _cpu_state(self.best_head),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": _rng_states(),
            "early_stopping": {
                "best_epoch": self.best_epoch,
                "best_val_loss": self.best_val_loss,
                "stale_epochs": self.stale_epochs,
            },
            "finished": self.finished,
            "history": copy.deepcopy(self.history),
        }

    def load_state_dict(self, state: dict[str, Any], best: HHTClassifier) -> None:
        """Continue from ``state`` (of :meth:`state_dict`); ``classifier`` must hold that epoch's
        encoder and SVM, ``best`` the best epoch's classifier."""
        self.epoch = int(state["epoch"])
        self.head.load_state_dict(state["head"])
        self.best_head = copy.deepcopy(self.head)
        self.best_head.load_state_dict(state["best_head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        _set_rng_states(state["rng"])
        stopping = state["early_stopping"]
        self.best_epoch = int(stopping["best_epoch"])
        self.best_val_loss = float(stopping["best_val_loss"])
        self.stale_epochs = int(stopping["stale_epochs"])
        self.finished = bool(state["finished"])
        self.history = {key: list(state["history"].get(key, [])) for key in HISTORY_KEYS}
        self.best = best
