"""MNIST as a d2l ``DataModule``, loaded from disk without network (see ``provision``)."""
from pathlib import Path
from typing import Optional, Union

import torch
import torchvision
from d2l import torch as d2l
from torchvision import transforms

from mnist_tools.provision import provision_mnist

# The handout's normalisation: MNIST's pixel mean and standard deviation (pixels in [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class MNISTData(d2l.DataModule):
    """The MNIST training set (60,000 images) and test set (10,000), in mini-batches.

    Each batch is ``[images, labels]``: images of shape (batch, 1, 28, 28), float32,
    normalised as ``(pixel - 0.1307) / 0.3081`` with pixels in [0, 1]; labels of shape
    (batch,), int64 digits 0-9. ``train_loader`` is shuffled. ``test_loader`` (used for
    validation, as in the handout) keeps the test set's order, so ``next(iter(test_loader))``
    gives the same images every run.

    ``root`` is where the files are kept (default: ``provision.default_root()``); the first
    use writes them there, later uses only check them.
    """

    def __init__(self, batch_size_train: int = 64, batch_size_test: int = 1000,
                 root: Optional[Union[str, Path]] = None) -> None:
        super().__init__()
        for name, size in (("batch_size_train", batch_size_train),
                           ("batch_size_test", batch_size_test)):
            if not isinstance(size, int) or size < 1:
                raise ValueError(f"{name} must be a positive int, got {size!r}")
        self.root = provision_mnist(root)
        transform = transforms.Compose([transforms.ToTensor(),
                                        transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
        self.train_set = torchvision.datasets.MNIST(str(self.root), train=True, download=False,
                                                    transform=transform)
        self.test_set = torchvision.datasets.MNIST(str(self.root), train=False, download=False,
                                                   transform=transform)
        self.train_loader = torch.utils.data.DataLoader(self.train_set, batch_size_train,
                                                        shuffle=True)
        self.test_loader = torch.utils.data.DataLoader(self.test_set, batch_size_test,
                                                       shuffle=False)

    def get_dataloader(self, train: bool) -> torch.utils.data.DataLoader:
        """``train_loader`` if ``train``, else ``test_loader``."""
        return self.train_loader if train else self.test_loader
