"""`fit_input`: samplers reach `fit` with the right epoch, on every backend."""

import keras
import numpy as np
import pytest

from siamkit import encoders
from siamkit.data import ClassBalancedBatches, LabelledPairs, PairDataset
from siamkit.data.crossmodal import CrossModalPairs
from siamkit.losses import TripletLoss
from siamkit.training import fit_input, fit_sampler


class Recording(ClassBalancedBatches):
    """Remembers the (epoch, batch) of every batch drawn, and its labels."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drawn, self.labels = [], {}

    def __getitem__(self, i):
        batch = super().__getitem__(i)
        self.drawn.append((self.epoch, i))
        self.labels[(self.epoch, i)] = batch[1]
        return batch


def _data(n=60, classes=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 1), dtype="float32"), np.arange(n) % classes


def _fit(sampler, epochs, initial_epoch=0):
    encoder = encoders.mlp((6, 6, 1), embedding_dim=4, hidden_units=(8,))
    encoder.compile(optimizer="adam", loss=TripletLoss(margin=0.2))
    history = fit_sampler(encoder, sampler, epochs=epochs, initial_epoch=initial_epoch, verbose=0)
    return history.history["loss"]


@pytest.mark.backend
def test_every_epoch_draws_its_own_batches_once():
    x, y = _data()
    sampler = Recording(x, y, classes_per_batch=3, samples_per_class=2, batches_per_epoch=4, seed=1)
    losses = _fit(sampler, epochs=3)
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    # The shape probe may draw batch 0 of epoch 0 once more; nothing else repeats or goes missing.
    trained = sorted(set(sampler.drawn))
    assert trained == [(e, i) for e in range(3) for i in range(4)]
    assert len(sampler.drawn) - len(trained) <= 1


@pytest.mark.backend
def test_a_resumed_fit_draws_the_epochs_it_resumes_at():
    x, y = _data()
    sampler = Recording(x, y, classes_per_batch=3, samples_per_class=2, batches_per_epoch=2, seed=1)
    _fit(sampler, epochs=4, initial_epoch=2)
    assert {e for e, _ in sampler.drawn if e != 0} == {2, 3}
    # The batches fit trained on at epochs 2 and 3 are those an uninterrupted run draws there.
    fresh = Recording(x, y, classes_per_batch=3, samples_per_class=2, batches_per_epoch=2, seed=1)
    _fit(fresh, epochs=4)
    for key in [(e, i) for e in (2, 3) for i in range(2)]:
        np.testing.assert_array_equal(sampler.labels[key], fresh.labels[key])
    assert not all(np.array_equal(fresh.labels[(0, i)], fresh.labels[(2, i)]) for i in range(2))


def test_a_resumed_fit_of_a_model_with_dropout_equals_an_uninterrupted_one(tmp_path):
    x, y = _data()

    def fit(epochs, backup):
        keras.utils.set_random_seed(0)
        encoder = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dropout(0.5),
                                    keras.layers.Dense(4)])
        encoder.compile(optimizer="adam", loss=TripletLoss(margin=0.2))
        sampler = ClassBalancedBatches(x, y, classes_per_batch=3, samples_per_class=2, batches_per_epoch=2, seed=1)
        restore = keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)
        fit_sampler(encoder, sampler, epochs=epochs, callbacks=[restore], verbose=0)
        return encoder.get_weights()

    uninterrupted = fit(4, tmp_path / "a")
    fit(2, tmp_path / "b")  # stopped after epoch 2, then resumed by a new process's model
    for got, want in zip(fit(4, tmp_path / "b"), uninterrupted):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda x, y: PairDataset(x, y, batch_size=16, pairs_per_epoch=40, seed=3),
        # 20 pairs in batches of 8: a short last batch
        lambda x, y: LabelledPairs(x, x, np.arange(20), np.arange(20)[::-1], np.arange(20) % 2, batch_size=8),
        lambda x, y: CrossModalPairs(x, y, x.reshape(len(x), -1), y, batch_size=16, seed=2),
    ],
    ids=["pairs", "labelled", "crossmodal"],
)
def test_the_tensorflow_feed_yields_the_samplers_batches(make):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the tf.data feed is TensorFlow's")
    x, y = _data()
    sampler = make(x, y)
    sampler.set_epoch(1)
    data, _ = fit_input(sampler)
    fed = list(data.as_numpy_iterator())
    assert len(fed) == len(sampler)
    for i, batch in enumerate(fed):
        expected = sampler[i]
        for got, want in zip(keras.tree.flatten(batch), keras.tree.flatten(expected)):
            np.testing.assert_array_equal(got, want)
            assert got.dtype == np.asarray(want).dtype
