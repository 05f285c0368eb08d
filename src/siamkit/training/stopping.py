"""Early stopping that keeps the best epoch's weights on disk, so an interrupted run resumes with them.

Keras' `EarlyStopping(restore_best_weights=True)` holds the best weights and
its patience count in memory: a run resumed by `BackupAndRestore` would
forget both. `BestEpoch` writes them to a folder at the end of every epoch.
"""

import json
import math
import os
import warnings

import keras

from .. import _io
from ..errors import ConfigError, check_choice


class BestEpoch(keras.callbacks.Callback):
    """Stop when `monitor` has not improved for `patience` epochs; end with the best epoch's weights.

    An epoch improves when its value `v` beats the best so far `b`
    (`v < b` in mode `"min"`, `v > b` in mode `"max"`); after `patience`
    epochs in a row without improvement, training stops. When training ends
    (stopped or not), the model gets the weights of the best epoch back.

    Place it before `BackupAndRestore` in the callback list, so that its
    state is written first: a run interrupted between the two replays the
    epoch, which this callback then recognises and does not count twice.

    Args:
        directory: folder of the state (`state.json`: best value and epoch,
            epochs waited, whether training stopped) and of the best weights
            (`best.weights.h5`); a callback made on the same folder resumes
            from them.
        monitor: the key of the epoch logs to watch, e.g. `"val_loss"`.
        patience: epochs without improvement before stopping.
        mode: `"min"` or `"max"`.

    Example:

    >>> best = BestEpoch("runs/x/best", monitor="val_loss", patience=5)  # doctest: +SKIP
    >>> model.fit(x, y, validation_data=(xv, yv), epochs=50, callbacks=[best])  # doctest: +SKIP
    >>> best.state["best_epoch"]  # doctest: +SKIP
    7
    """

    STATE_FILE = "state.json"
    WEIGHTS_FILE = "best.weights.h5"

    def __init__(self, directory, monitor="val_loss", patience=5, mode="min"):
        super().__init__()
        check_choice("mode", mode, ("min", "max"))
        self.directory, self.monitor, self.patience, self.mode = os.fspath(directory), monitor, int(patience), mode
        path = os.path.join(self.directory, self.STATE_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                self.state = json.load(f)
        else:
            self.state = {"monitor": monitor, "best": None, "best_epoch": None, "last_epoch": -1, "wait": 0,
                          "stopped": False}

    @property
    def weights_path(self):
        return os.path.join(self.directory, self.WEIGHTS_FILE)

    @property
    def stopped(self):
        """True once training has stopped early (a resumed run then has nothing left to train)."""
        return self.state["stopped"]

    def _better(self, value):
        best = self.state["best"]
        return math.isfinite(value) and (best is None or (value < best if self.mode == "min" else value > best))

    def on_epoch_end(self, epoch, logs=None):
        state = self.state
        if epoch <= state["last_epoch"]:  # replayed after an interruption: counted already
            return
        if self.monitor not in (logs or {}):
            raise ConfigError(
                f"early stopping watches {self.monitor!r}, which the epoch logs lack: {sorted(logs or {})}"
            )
        value = float(logs[self.monitor])
        if self._better(value):
            os.makedirs(self.directory, exist_ok=True)
            with _io.atomic_path(self.weights_path, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
            state.update(best=value, best_epoch=epoch, wait=0)
        else:
            state["wait"] += 1
        state["last_epoch"] = epoch
        if state["wait"] >= self.patience:
            state["stopped"] = True
            self.model.stop_training = True
        _io.write_json(os.path.join(self.directory, self.STATE_FILE), state)

    def on_train_end(self, logs=None):
        if self.state["best_epoch"] not in (None, self.state["last_epoch"]):
            self.restore()

    def restore(self, model=None):
        """Load the best epoch's weights into `model` (default: the model being trained)."""
        with warnings.catch_warnings():
            # A best epoch of a frozen-backbone phase was saved with an optimizer of fewer variables;
            # only the model's weights are restored here.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            (model or self.model).load_weights(self.weights_path)


class PairAUC(keras.callbacks.Callback):
    """Adds `val_roc_auc` to the epoch logs: the ROC AUC of fixed validation pairs.

    `AUC = P(a same-class pair scores as more similar than a
    different-class pair)`, ties counting one half, as
    `siamkit.evaluation.roc_auc` computes it on the network's scores of the
    pairs `(first[i], second[i])`. Place it before the callbacks that read
    the value (`BestEpoch`, `CSVLogger`).

    Args:
        network: the `SiameseNetwork` being trained (or whose encoder is),
            or a `TwoTowerNetwork`.
        first, second: the pairs' inputs, one pair per row (sides a and b).
        same: 1 where a pair is of one class, else 0.

    Example:

    >>> auc = PairAUC(network, x1_val, x2_val, same_val)  # doctest: +SKIP
    >>> encoder.fit(data, epochs=20, callbacks=[auc, BestEpoch(folder, "val_roc_auc", mode="max")])  # doctest: +SKIP
    """

    def __init__(self, network, first, second, same):
        super().__init__()
        self.network, self.first, self.second, self.same = network, first, second, same

    def on_epoch_end(self, epoch, logs=None):
        from ..evaluation.verification import roc_auc

        from .distribute import paused

        net = self.network
        # first against second: side a against side b (both one encoder in a Siamese network)
        with paused():  # batches of any size, in a data-parallel fit too
            scores = net.score_embeddings(net.embed(self.first, "a"), net.embed(self.second, "b"))
        if logs is not None:
            logs["val_roc_auc"] = roc_auc(self.same, scores, net.higher_is_similar)
