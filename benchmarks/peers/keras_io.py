"""The keras-io example "Image similarity estimation using a Siamese Network with a contrastive loss".

Re-implemented from its published description (keras.io/examples/vision/siamese_contrastive/),
not copied:

- embedding network: on 28x28x1 input, BatchNormalization, Conv2D(4, 5x5, tanh),
  AveragePooling2D(2), Conv2D(16, 5x5, tanh), AveragePooling2D(2), Flatten, BatchNormalization,
  Dense(10, tanh); shared by both images of a pair.
- head: the Euclidean distance of the two embeddings, `sqrt(max(sum of squares, epsilon))`.
  The current version scores a pair by that distance (`head="distance"`); earlier versions pass
  it through BatchNormalization and Dense(1, sigmoid) (`head="sigmoid"`), and the loss then acts on
  that output. Which head the published page shows today was not verified offline (copies of its
  Keras 3 version still end in the sigmoid head), so the benchmark runs both.
- loss: contrastive with margin 1, `mean((1 - y) * p^2 + y * max(margin - p, 0)^2)` where label
  y = 0 marks a pair of the same digit and 1 a pair of different digits, as the example's
  `make_pairs` labels them.
- optimiser and batches: `RMSprop()` at Keras' defaults, batch 16, `model.fit` shuffling the pairs.
- pairs (`make_pairs`): every training image is paired once with a random image of its own digit
  and once with a random image of a random other digit; the pairs are made once and reused each epoch.
- pixels: float32 in 0..255 (the first BatchNormalization scales them).

Deviations, each with the original's setting:

- Training images: the benchmark's training images (MNIST train less its held-out validation
  images); the original trains on the first 30,000 training images and validates on the other 30,000.
- Evaluation: the benchmark's shared pairs and a threshold chosen on its validation pairs, every
  `eval_every` seconds of training (`fit`'s validation data is left out); the original reports
  `evaluate` accuracy (Keras' `accuracy` metric at a 0.5 cut-off) on its own test pairs.
- Stopping: after the benchmark's training-time budget; the original runs 10 epochs.
- Threads: the benchmark's thread settings; the original leaves TensorFlow's defaults. Plots and
  `summary()` are left out.
"""

import numpy as np

BATCH_SIZE = 16
MARGIN = 1.0
HEADS = ("distance", "sigmoid")


def make_pairs(y, rng):
    """The example's pairs: `(first, second, label)`, label 0 = same digit, 1 = different."""
    y = np.asarray(y)
    by_class = [np.flatnonzero(y == c) for c in range(10)]
    n = len(y)
    same_partner = np.array([by_class[c][rng.integers(len(by_class[c]))] for c in y])
    other = (y + rng.integers(1, 10, n)) % 10  # the example redraws until the digit differs: uniform
    other_partner = np.array([by_class[c][rng.integers(len(by_class[c]))] for c in other])
    first = np.repeat(np.arange(n), 2)
    second = np.stack([same_partner, other_partner], 1).reshape(-1)
    labels = np.tile(np.array([0.0, 1.0], np.float32), n)
    return first, second, labels


def build(head="distance"):
    """`(siamese, embedding_network, score_layers)`; `score_layers` maps a distance to the score."""
    import keras
    from keras import layers, ops

    inputs = keras.Input((28, 28, 1))
    x = layers.BatchNormalization()(inputs)
    x = layers.Conv2D(4, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Conv2D(16, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(10, activation="tanh")(x)
    embedding_network = keras.Model(inputs, x)

    def euclidean_distance(vects):
        a, b = vects
        return ops.sqrt(ops.maximum(ops.sum(ops.square(a - b), axis=1, keepdims=True), keras.backend.epsilon()))

    in_1, in_2 = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    distance = layers.Lambda(euclidean_distance, output_shape=(1,))(
        [embedding_network(in_1), embedding_network(in_2)])
    score_layers = []
    if head == "sigmoid":
        score_layers = [layers.BatchNormalization(), layers.Dense(1, activation="sigmoid")]
    out = distance
    for layer in score_layers:
        out = layer(out)
    return keras.Model([in_1, in_2], out), embedding_network, score_layers


def contrastive_loss(y_true, y_pred):
    from keras import ops

    square_pred = ops.square(y_pred)
    margin_square = ops.square(ops.maximum(MARGIN - y_pred, 0))
    return ops.mean((1 - y_true) * square_pred + y_true * margin_square)


def train(x, y, tracker, head="distance", seed=0):
    """Train on images `x` (n, 28, 28, 1) in [0, 1] with labels `y` until `tracker.step(score)` says stop.

    `tracker.start()` is called before training and `tracker.step(score)` after each batch; when an evaluation is due it pauses the
    training clock and calls `score(images, first, second)`: the pair scores (higher = more alike).
    The output of either head is low for a pair of the same digit, so the score is its negative.
    """
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    pixels = (np.asarray(x, np.float32) * 255.0).round()  # the example's 0..255 floats
    siamese, embedding_network, score_layers = build(head)
    siamese.compile(loss=contrastive_loss, optimizer=keras.optimizers.RMSprop())
    first, second, labels = make_pairs(y, rng)

    def score(images, i, j):
        emb = embedding_network.predict((np.asarray(images, np.float32) * 255.0).round(), batch_size=1000, verbose=0)
        out = np.sqrt(np.maximum(((emb[i] - emb[j]) ** 2).sum(1, keepdims=True), keras.backend.epsilon()))
        for layer in score_layers:
            out = keras.ops.convert_to_numpy(layer(out, training=False))
        return -out.reshape(-1)

    class Tick(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if tracker.step(score):
                self.model.stop_training = True

    x1, x2 = pixels[first], pixels[second]
    tracker.start()
    siamese.fit([x1, x2], labels, batch_size=BATCH_SIZE, epochs=10_000, shuffle=True,
                callbacks=[Tick()], verbose=0)
