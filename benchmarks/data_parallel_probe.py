"""Data-parallel training against one device, on virtual CPU devices (run by `scale.py` and the tests).

The device count is fixed when a backend starts, so each measurement runs in a fresh process:

    python benchmarks/data_parallel_probe.py jax --replicas 2            # step and run equivalence
    python benchmarks/data_parallel_probe.py tensorflow --replicas 2
    python benchmarks/data_parallel_probe.py jax --replicas 1 --throughput 40   # images/s only

JAX gets `--replicas` host devices (`XLA_FLAGS=--xla_force_host_platform_device_count`), TensorFlow
`--replicas` logical CPU devices. It prints one JSON object:

- `steps`: per loss (batch-hard triplet, prototypical, contrastive pairs, CLIP and the cross-modal
  contrastive loss of a two-tower network), one `fit` step of SGD at learning rate 1 from the same
  weights, once on one device and once with `distribute = "data-parallel"`: the two losses, their
  largest absolute difference, the largest absolute difference of the gradients (read as the
  weights' change) and the largest gradient; and `slices_loss`, the mean of the loss on each
  replica's slice alone, which differs from the global loss wherever the loss compares the items of a
  batch, so the equivalence is not an accident of the data.
- `run`: `siamkit.training.train` on scikit-learn's digits (2 epochs of P x K batches, triplet loss,
  early stopping on 301 validation pairs) on one device and data-parallel: the largest weight
  difference of the saved models, both runs' training losses, best epochs and held-out metrics.
- `throughput`: with `--throughput N`, images/s of N P x K batches of 64 through a small CNN on
  triplet loss (after one warm-up epoch), data-parallel over `--replicas` devices (one device: plain).
"""

import argparse
import json
import os
import sys
import tempfile
import time


def start_backend(backend, replicas):
    """Set the Keras backend and give it `replicas` CPU devices; before Keras is imported."""
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        flag = f"--xla_force_host_platform_device_count={replicas}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images[..., None] / 16.0).astype("float32"), data.target


def _case(name, x, y):
    """`(model, loss, sampler)` of one loss, built in the current scope."""
    from siamkit import encoders, losses, models
    from siamkit.data import ClassBalancedBatches, PairDataset
    from siamkit.data.crossmodal import CrossModalPairs

    if name in ("triplet", "prototypical"):
        loss = losses.TripletLoss(mining="hard") if name == "triplet" else losses.PrototypicalLoss()
        return encoders.build("mlp", x.shape[1:], embedding_dim=8), loss, ClassBalancedBatches(
            x, y, 8, 4, batches_per_epoch=1, seed=0)
    if name == "contrastive":
        model = models.SiameseNetwork(encoders.build("mlp", x.shape[1:], embedding_dim=8),
                                      models.DistanceHead("euclidean"))
        return model, losses.ContrastiveLoss(), PairDataset(x, y, batch_size=32, pairs_per_epoch=32, seed=0)
    flat = x.reshape(len(x), -1)
    mirrored = flat.reshape(x.shape)[:, :, ::-1].reshape(len(x), -1)  # side b: the digits mirrored
    network = models.TwoTowerNetwork(
        encoders.build("mlp", flat.shape[1:], embedding_dim=8, name="tower_a"),
        encoders.build("mlp", flat.shape[1:], embedding_dim=8, name="tower_b"),
        head=models.DistanceHead("cosine"), learn_temperature=name == "clip",
    )
    batches = CrossModalPairs(flat, y, mirrored, y, batch_size=32, pairs_per_epoch=32, seed=0)
    if name == "clip":
        return models.CrossModalScores(network, "logits"), losses.ClipLoss(), batches
    return models.CrossModalScores(network, "distance"), losses.CrossModalContrastiveLoss(0.5), batches


CASES = ("triplet", "prototypical", "contrastive", "clip", "crossmodal-contrastive")


def one_step(name, x, y, distribution, initial=None):
    """One SGD step (learning rate 1) of case `name`: `(loss, weights before, weights after, model, loss fn, batch)`."""
    import keras
    import numpy as np

    from siamkit.training import distribute, fit_sampler

    keras.utils.set_random_seed(0)
    with distribute.scope(distribution):
        model, loss, sampler = _case(name, x, y)
        batch = sampler[0]
        model(batch[0])  # built, so that the weights can be set
        if initial is not None:
            model.set_weights(initial)
        before = [np.array(w) for w in model.get_weights()]
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
        history = fit_sampler(model, sampler, epochs=1, verbose=0)
    after = [np.array(w) for w in model.get_weights()]
    return history.history["loss"][0], before, after, model, loss, batch


def step_figures(name, x, y, replicas):
    import keras
    import numpy as np

    loss_1, before, after_1, model, loss_fn, (inputs, labels) = one_step(name, x, y, None)
    loss_r, _, after_r, _, _, _ = one_step(name, x, y, "data-parallel", initial=before)
    grad_1 = [b - a for b, a in zip(before, after_1)]
    grad_r = [b - a for b, a in zip(before, after_r)]
    model.set_weights(before)
    n = len(labels) // replicas
    part = lambda tree, k: keras.tree.map_structure(lambda v: v[k * n:(k + 1) * n], tree)  # noqa: E731
    slices = [float(loss_fn(part(labels, k), model(part(inputs, k)))) for k in range(replicas)]
    return {
        "loss_single": loss_1, "loss_data_parallel": loss_r, "max_abs_loss_diff": abs(loss_1 - loss_r),
        "max_abs_grad_diff": float(max(np.abs(a - b).max() for a, b in zip(grad_1, grad_r))),
        "max_abs_grad": float(max(np.abs(g).max() for g in grad_1)),
        "slices_loss": float(np.mean(slices)), "batch": int(len(labels)),
    }


def run_figures():
    """`siamkit.training.train` on digits, one device against data-parallel."""
    import keras
    import numpy as np

    from siamkit.training import train

    # Early stopping scores 301 validation pairs after each epoch, inside the fit: an odd count, which no
    # number of devices splits evenly.
    config = {"encoder": "mlp", "embedding_dim": 16, "epochs": 2, "classes_per_batch": 4, "samples_per_class": 4,
              "batches_per_epoch": 5, "eval_pairs": 301}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for distribution in ("none", "data-parallel"):
            run, metrics = train({**config, "out": os.path.join(tmp, distribution)}, verbose=0,
                                 distribution=distribution)
            with open(os.path.join(run.path, "history.csv"), encoding="utf-8") as f:
                rows = f.read().splitlines()
            column = rows[0].split(",").index("loss")
            out[distribution] = {
                "weights": [np.array(w) for w in keras.saving.load_model(
                    os.path.join(run.path, "model.keras"), safe_mode=True, compile=False).get_weights()],
                "loss": [float(r.split(",")[column]) for r in rows[1:]],
                "metrics": {k: v for k, v in metrics.items()
                            if k.startswith("test_") or k in ("map_at_r", "best_epoch")},
            }
    one, many = out["none"], out["data-parallel"]
    return {
        "max_abs_weight_diff": float(max(np.abs(a - b).max() for a, b in zip(one["weights"], many["weights"]))),
        "loss_single": one["loss"], "loss_data_parallel": many["loss"],
        "metrics_single": one["metrics"], "metrics_data_parallel": many["metrics"],
    }


def throughput(x, y, steps, replicas):
    """Images/s of `steps` P x K batches (16 x 4) through a small CNN on triplet loss, after a warm-up epoch."""
    import keras

    from siamkit import encoders, losses
    from siamkit.data import ClassBalancedBatches
    from siamkit.training import distribute, fit_sampler

    keras.utils.set_random_seed(0)
    with distribute.scope("data-parallel" if replicas > 1 else None):
        model = encoders.build("cnn", x.shape[1:], embedding_dim=32)
        model.compile(optimizer="adam", loss=losses.TripletLoss())
        sampler = ClassBalancedBatches(x, y, 10, 4, batches_per_epoch=steps, seed=0)
        fit_sampler(model, sampler, epochs=1, verbose=0)
        start = time.perf_counter()
        fit_sampler(model, sampler, initial_epoch=1, epochs=2, verbose=0)
        seconds = time.perf_counter() - start
    images = steps * 40
    return {"replicas": replicas, "steps": steps, "batch": 40, "seconds": seconds, "images_per_s": images / seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backend", choices=("jax", "tensorflow"))
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--cases", nargs="*", choices=CASES, default=list(CASES), help="step checks (default: all)")
    parser.add_argument("--no-run", action="store_true", help="leave out the short training run")
    parser.add_argument("--throughput", type=int, metavar="STEPS", help="measure images/s only, over STEPS batches")
    args = parser.parse_args(argv)
    start_backend(args.backend, args.replicas)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import keras

    keras.config.disable_interactive_logging()
    x, y = digits()
    result = {"backend": args.backend, "replicas": args.replicas}
    if args.throughput:
        result["throughput"] = throughput(x, y, args.throughput, args.replicas)
    else:
        result["steps"] = {name: step_figures(name, x, y, args.replicas) for name in args.cases}
        if not args.no_run:
            result["run"] = run_figures()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
