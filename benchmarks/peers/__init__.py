"""Re-implementations of the Siamese networks people copy, for `benchmarks/time_to_accuracy.py`.

- `pytorch_examples`: the PyTorch examples repository's `siamese_network` (ResNet-18, BCE).
- `keras_io`: the keras-io example "Image similarity estimation using a Siamese Network with a
  contrastive loss" (small tanh CNN, contrastive loss), current head and the earlier one.

Each is written from its published description, not copied; each module's docstring lists
every deviation from the original with the original's setting beside it.
"""
