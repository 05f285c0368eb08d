"""The PyTorch examples repository's Siamese network (`siamese_network/main.py` in pytorch/examples).

Re-implemented from its published description, not copied:

- model: torchvision's ResNet-18 with its first convolution replaced by a 1-channel 7x7 stride-2
  convolution (64 filters, no bias) and its final `fc` removed, so each image gives 512 features
  after global average pooling; the two feature vectors are concatenated and fed to
  `Linear(1024, 256) -> ReLU -> Linear(256, 1) -> Sigmoid`. The trunk and the MLP are initialised
  with `init_weights`: Xavier-uniform weights and biases of 0.01 for every `Linear` (convolutions and
  batch norm keep PyTorch's defaults).
- loss and optimiser: `BCELoss` on the sigmoid output (1 = same digit), `Adadelta(lr=1.0)`, and
  `StepLR(step_size=1, gamma=0.7)` stepped once per epoch.
- data: each training image in turn is an anchor; for an even index the partner is a random image
  of the same digit (target 1), for an odd index a random image of a random other digit (target 0);
  images are scaled to [0, 1] and normalised with mean 0.1307 and standard deviation 0.3081;
  shuffled batches of 64 pairs, so one epoch is as many pairs as training images.

Deviations, each with the original's setting:

- ResNet-18 is re-implemented here in `torch.nn` (basic blocks, `[2, 2, 2, 2]`, the same layer
  shapes and PyTorch's default initialisation of convolutions and batch norm), because torchvision
  is not installed; the original imports `torchvision.models.resnet18(weights=None)`.
- Training images: the benchmark's training images (MNIST train less its held-out validation
  images); the original uses all 60,000.
- Evaluation: the benchmark's shared pairs and a threshold chosen on its validation pairs, every
  `eval_every` seconds of training; the original tests once per epoch on its own random test pairs at
  a fixed 0.5 cut-off.
- Stopping: after the benchmark's training-time budget; the original runs 14 epochs.
- Threads: the benchmark's thread settings; the original leaves PyTorch's defaults. No CUDA/MPS
  (the original uses them when present). `--dry-run`, `--save-model` and logging are left out.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MEAN, STD = 0.1307, 0.3081
BATCH_SIZE = 64
LEARNING_RATE = 1.0
GAMMA = 0.7


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv + batch norm, identity or 1x1 stride-2 shortcut."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


def resnet18_trunk():
    """ResNet-18 without its `fc`, first conv taking 1 channel: `(n, 1, h, w)` -> `(n, 512, 1, 1)`."""
    layers = [nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
              nn.MaxPool2d(3, 2, 1)]
    inplanes = 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
        inplanes = planes
    layers.append(nn.AdaptiveAvgPool2d(1))
    trunk = nn.Sequential(*layers)
    for m in trunk.modules():  # torchvision's initialisation of its ResNets
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return trunk


def _init_linear(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        m.bias.data.fill_(0.01)


class SiameseNetwork(nn.Module):
    """ResNet-18 features of both images, concatenated, through an MLP with a sigmoid."""

    def __init__(self):
        super().__init__()
        self.resnet = resnet18_trunk()
        self.fc = nn.Sequential(nn.Linear(512 * 2, 256), nn.ReLU(inplace=True), nn.Linear(256, 1))
        self.resnet.apply(_init_linear)
        self.fc.apply(_init_linear)

    def forward_once(self, x):
        return self.resnet(x).flatten(1)

    def head(self, f1, f2):
        return torch.sigmoid(self.fc(torch.cat((f1, f2), 1)))

    def forward(self, x1, x2):
        return self.head(self.forward_once(x1), self.forward_once(x2))


def to_tensor(images):
    """`(n, 28, 28, 1)` float images in [0, 1] -> normalised `(n, 1, 28, 28)` tensor."""
    return (torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2) - MEAN) / STD


def epoch_pairs(y, rng):
    """One epoch of the original's pairs, shuffled: `(anchor, partner, target)` index arrays."""
    y = np.asarray(y)
    by_class = [np.flatnonzero(y == c) for c in range(10)]
    anchors = np.arange(len(y))
    same = anchors % 2 == 0
    other = (y + rng.integers(1, 10, len(y))) % 10  # a uniformly random other digit
    partner_class = np.where(same, y, other)
    partners = np.array([by_class[c][rng.integers(len(by_class[c]))] for c in partner_class])
    order = rng.permutation(len(y))
    return anchors[order], partners[order], same[order].astype(np.float32)


def train(x, y, tracker, seed=0):
    """Train on images `x` (n, 28, 28, 1) in [0, 1] with labels `y` until `tracker.step(score)` says stop.

    `tracker.start()` is called before the first batch and `tracker.step(score)` after each; when an evaluation is due it pauses the
    training clock and calls `score(images, first, second)`: the pair scores (higher = more alike)
    of index pairs into `images`.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = to_tensor(x)
    model = SiameseNetwork()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=GAMMA)
    criterion = nn.BCELoss()

    def score(images, first, second):
        model.eval()
        with torch.inference_mode():
            t = to_tensor(images)
            feats = torch.cat([model.forward_once(t[i: i + 1000]) for i in range(0, len(t), 1000)])
            out = torch.cat([model.head(feats[first[i: i + 5000]], feats[second[i: i + 5000]])
                             for i in range(0, len(first), 5000)])
        model.train()
        return out.flatten().numpy()

    tracker.start()
    while True:
        anchors, partners, targets = epoch_pairs(y, rng)
        targets = torch.from_numpy(targets)
        for i in range(0, len(anchors), BATCH_SIZE):
            a, p = anchors[i: i + BATCH_SIZE], partners[i: i + BATCH_SIZE]
            optimizer.zero_grad()
            loss = criterion(model(data[a], data[p]).squeeze(1), targets[i: i + BATCH_SIZE])
            loss.backward()
            optimizer.step()
            if tracker.step(score):
                return
        scheduler.step()
