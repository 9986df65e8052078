"""rayneas.data against small files written in the datasets' real formats (pickles with the distributed keys,
IDX files)."""
from __future__ import annotations

import gzip
import pickle
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits, load_sample_images

from rayneas.data import (
    DataError,
    ImageArrays,
    digits_split,
    image_batch,
    load_cifar,
    load_fashion_mnist,
    load_imagenet16,
    read_idx,
    sample_image_crops,
    to_tensor,
)
from rayneas.data.tensors import MEAN_STD


def _rows(images: np.ndarray) -> np.ndarray:
    """HWC images -> the distributed flat rows: the R plane, then G, then B, each row-major."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _dump(path: Path, entry: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(entry, f)


def _images(rng: np.random.Generator, n: int, side: int) -> np.ndarray:
    return rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def _write_cifar10(root: Path, per_batch: int = 3) -> dict[str, ImageArrays]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written: dict[str, list] = {"train": [], "test": []}
    for split, name in [("train", f"data_batch_{i}") for i in range(1, 6)] + [("test", "test_batch")]:
        images, labels = _images(rng, per_batch, 32), rng.integers(0, 10, per_batch).tolist()
        _dump(folder / name, {b"batch_label": name.encode(), b"labels": labels, b"data": _rows(images),
                              b"filenames": [b"x.png"] * per_batch})
        written[split].append(ImageArrays(images, np.array(labels)))
    _dump(folder / "batches.meta", {b"label_names": [b"airplane"] * 10, b"num_vis": 3072})
    return {s: ImageArrays(np.concatenate([a.images for a in v]), np.concatenate([a.labels for a in v]))
            for s, v in written.items()}


def _write_imagenet16(folder: Path, labels_per_batch: list[list[int]], names: list[str], npz: bool = False) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    all_images = []
    for name, labels in zip(names, labels_per_batch):
        images = _images(rng, len(labels), 16)
        if npz:
            np.savez(folder / f"{name}.npz", data=_rows(images), labels=np.array(labels))
        else:
            _dump(folder / name, {"data": _rows(images), "labels": labels, "mean": np.zeros(768)})
        all_images.append(images)
    return np.concatenate(all_images)


def test_cifar10_loads_hwc_images_and_labels_from_either_root(tmp_path):
    written = _write_cifar10(tmp_path)
    for root in (tmp_path, tmp_path / "cifar-10-batches-py"):
        for split in ("train", "test"):
            got = load_cifar(root, "cifar10", split)
            assert got.images.shape == (len(written[split].images), 32, 32, 3) and got.images.dtype == np.uint8
            np.testing.assert_array_equal(got.images, written[split].images)
            np.testing.assert_array_equal(got.labels, written[split].labels)
            assert got.labels.dtype == np.int64
    # the documented layout, checked directly on the flat rows: entry ch*1024 + r*32 + c is pixel (r, c, ch)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_2", "rb") as f:
        row = pickle.load(f, encoding="bytes")[b"data"][1]
    image = load_cifar(tmp_path, "cifar10", "train").images[3 + 1]
    for r, c, ch in [(0, 1, 0), (5, 31, 1), (31, 0, 2)]:
        assert image[r, c, ch] == row[ch * 1024 + r * 32 + c]


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    images = _images(np.random.default_rng(3), 5, 32)
    for name in ("train", "test"):
        _dump(folder / name, {b"filenames": [b"a"] * 5, b"batch_label": b"x", b"fine_labels": [10, 99, 0, 42, 7],
                              b"coarse_labels": [1, 2, 3, 4, 5], b"data": _rows(images)})
    got = load_cifar(tmp_path, "cifar100", "test")
    np.testing.assert_array_equal(got.images, images)
    np.testing.assert_array_equal(got.labels, [10, 99, 0, 42, 7])


def test_imagenet16_keeps_first_120_classes_and_shifts_labels(tmp_path):
    labels = [[1, 120, 121, 1000], [60, 500]] + [[2]] * 8
    images = _write_imagenet16(tmp_path / "ImageNet16", labels, [f"train_data_batch_{i}" for i in range(1, 11)])
    flat = np.concatenate(labels)
    got = load_imagenet16(tmp_path, "train")
    assert got.images.shape[1:] == (16, 16, 3)
    np.testing.assert_array_equal(got.images, images[flat <= 120])
    np.testing.assert_array_equal(got.labels, flat[flat <= 120] - 1)
    everything = load_imagenet16(tmp_path / "ImageNet16", "train", num_classes=1000)
    np.testing.assert_array_equal(everything.labels, flat - 1)
    np.testing.assert_array_equal(everything.images, images)


def test_imagenet16_reads_the_npz_release(tmp_path):
    images = _write_imagenet16(tmp_path / "Imagenet16_val_npz", [[3, 200, 120]], ["val_data"], npz=True)
    got = load_imagenet16(tmp_path, "valid")
    np.testing.assert_array_equal(got.images, images[[0, 2]])
    np.testing.assert_array_equal(got.labels, [2, 119])


def test_missing_folder_and_missing_file_name_path_files_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"nowhere does not exist.*https://www.cs.toronto.edu/~kriz/cifar.html") as err:
        load_cifar(tmp_path / "nowhere", "cifar10", "train")
    assert isinstance(err.value, FileNotFoundError)
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError) as err:
        load_cifar(tmp_path, "cifar10", "train")
    message = str(err.value)
    assert "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5" in message
    assert f"in {tmp_path / 'cifar-10-batches-py'}; missing: data_batch_3" in message
    assert f"cifar-10-python.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html and extract it under {tmp_path}" in message
    with pytest.raises(DataError, match=r"val_data \(each as NAME or NAME.npz\).*missing: all of them.*image-net.org"):
        load_imagenet16(tmp_path, "valid")


def test_corrupted_and_wrong_shaped_batches_are_reported(tmp_path):
    written = _write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes((folder / "data_batch_1").read_bytes()[:200])
    with pytest.raises(DataError, match=r"test_batch is not a readable batch file \(.*Download the CIFAR-10"):
        load_cifar(tmp_path, "cifar10", "test")
    _dump(folder / "test_batch", {b"data": _rows(written["test"].images)[:, :768], b"labels": [0, 1, 2]})
    with pytest.raises(DataError, match=r"has data \(3, 768\) uint8 and 3 labels; expected N x 3072 uint8"):
        load_cifar(tmp_path, "cifar10", "test")
    _dump(folder / "test_batch", {b"data": _rows(written["test"].images), b"fine_labels": [0, 1, 2]})
    with pytest.raises(DataError, match=r"lacks the keys 'data' and 'labels' \(found \['data', 'fine_labels'\]\)"):
        load_cifar(tmp_path, "cifar10", "test")
    _write_imagenet16(tmp_path / "inet", [[0, 5]], ["val_data"])
    with pytest.raises(DataError, match=r"labels 0..5; the distributed files use 1-based labels 1..1000"):
        load_imagenet16(tmp_path / "inet", "valid")


def test_bad_arguments_name_the_choices(tmp_path):
    with pytest.raises(ValueError, match="choose 'cifar10' or 'cifar100'"):
        load_cifar(tmp_path, "cifar1000", "train")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="choose 'train' or 'test'"):
        load_cifar(tmp_path, "cifar10", "valid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="choose 'train' or 'valid'"):
        load_imagenet16(tmp_path, "test")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"num_classes must be an integer in 1..1000"):
        load_imagenet16(tmp_path, "train", num_classes=0)


def test_digits_split_partitions_the_dataset_stratified_and_seeded():
    split = digits_split(seed=3)
    parts = [(split.x_train, split.y_train), (split.x_val, split.y_val), (split.x_test, split.y_test)]
    assert [len(x) for x, _ in parts] == [1077, 360, 360]
    for x, y in parts:
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8) and y.dtype == torch.int64
        assert x.min() >= 0 and x.max() == 1
        counts = torch.bincount(y, minlength=10).double() / len(y)
        assert torch.all((counts - 0.1).abs() < 0.02)  # every class about a tenth of every split
    # every original (image, label) appears in exactly one split: train, val and test are disjoint
    digits = load_digits()
    original = Counter((img.tobytes(), int(t)) for img, t in zip((digits.images / 16).astype(np.float32), digits.target))
    joined = Counter((x[0].numpy().tobytes(), int(t)) for xs, ys in parts for x, t in zip(xs, ys))
    assert joined == original
    again, other = digits_split(seed=3), digits_split(seed=4)
    assert torch.equal(again.x_val, split.x_val) and torch.equal(again.y_test, split.y_test)
    assert not torch.equal(other.x_val, split.x_val)
    with pytest.raises(ValueError, match="sum to less than 1"):
        digits_split(val_fraction=0.5, test_fraction=0.5)


def _unnormalize(x: torch.Tensor, stats: str = "cifar10") -> np.ndarray:
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in MEAN_STD[stats])
    return ((x * std + mean) * 255).permute(0, 2, 3, 1).numpy()


def test_sample_image_crops_are_normalized_windows_of_the_photos():
    crops = sample_image_crops(4, size=427, seed=5, flip=False)
    assert crops.shape == (4, 3, 427, 427) and crops.dtype == torch.float32
    pixels = _unnormalize(crops)
    np.testing.assert_allclose(pixels, pixels.round(), atol=1e-3)
    photos = load_sample_images().images
    for crop in pixels.round().astype(np.uint8):  # full height: only the horizontal offset is free
        assert any(np.array_equal(crop, p[:, left:left + 427]) for p in photos for left in range(640 - 427 + 1))
    assert torch.equal(sample_image_crops(8, seed=1), sample_image_crops(8, seed=1))
    assert not torch.equal(sample_image_crops(8, seed=1), sample_image_crops(8, seed=2))
    with pytest.raises(ValueError, match=r"crop size 428 does not fit the source images \(427 x 640\); choose a size in 1..427"):
        sample_image_crops(2, size=428)


def test_crop_flips_and_single_channels_reuse_the_same_windows():
    plain = sample_image_crops(32, size=8, seed=7, flip=False)
    flipped = sample_image_crops(32, size=8, seed=7, flip=True)
    mirrored = [not torch.equal(a, b) for a, b in zip(plain, flipped)]
    assert 0 < sum(mirrored) < 32
    for a, b, m in zip(plain, flipped, mirrored):
        assert torch.equal(b, a.flip(-1) if m else a)
    grey = sample_image_crops(32, size=3, seed=7, channels=1)
    rgb = sample_image_crops(32, size=3, seed=7, channels=3)
    assert grey.shape == (32, 1, 3, 3)
    assert all(any(torch.equal(g[0], c) for c in x) for g, x in zip(grey, rgb))
    with pytest.raises(ValueError, match="channels must be 1"):
        sample_image_crops(2, channels=2)


def test_to_tensor_layout_and_normalization():
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    plain = to_tensor(images)
    assert plain.shape == (2, 3, 4, 5) and plain.dtype == torch.float32
    assert plain[1, 2, 3, 4].item() == pytest.approx(images[1, 3, 4, 2] / 255)
    normed = to_tensor(images, "imagenet16")
    assert normed[0, 1, 0, 0].item() == pytest.approx((images[0, 0, 0, 1] - 116.66) / 61.26, rel=1e-5)
    with pytest.raises(ValueError, match="unknown normalization 'svhn'"):
        to_tensor(images, "svhn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected N x H x W x C uint8"):
        to_tensor(images.astype(np.float32))


def test_image_batch_takes_distinct_train_images_only(tmp_path):
    written = _write_cifar10(tmp_path, per_batch=4)
    batch = image_batch("cifar10", 20, seed=0, root=tmp_path, flip=False)
    assert batch.shape == (20, 3, 32, 32)
    got = Counter(img.tobytes() for img in _unnormalize(batch).round().astype(np.uint8))
    assert got == Counter(img.tobytes() for img in written["train"].images)  # all 20 train images, none of test
    assert torch.equal(image_batch("cifar10", 5, 9, root=tmp_path), image_batch("cifar10", 5, 9, root=tmp_path))
    crops = image_batch("cifar10", 6, 0, size=3, root=tmp_path, channels=1)
    assert crops.shape == (6, 1, 3, 3)
    with pytest.raises(ValueError, match="asked for 21 distinct images but the cifar10 train split has only 20"):
        image_batch("cifar10", 21, 0, root=tmp_path)
    with pytest.raises(ValueError, match="pass root="):
        image_batch("cifar100", 2, 0)


def test_image_batch_other_sources(tmp_path):
    _write_imagenet16(tmp_path, [[1, 2, 3]] * 10, [f"train_data_batch_{i}" for i in range(1, 11)])
    inet = image_batch("imagenet16", 30, 0, root=tmp_path, flip=False)
    assert inet.shape == (30, 3, 16, 16)
    np.testing.assert_allclose(_unnormalize(inet, "imagenet16"), _unnormalize(inet, "imagenet16").round(), atol=1e-3)
    with pytest.raises(ValueError, match="choose a size in 1..16"):
        image_batch("imagenet16", 2, 0, size=32, root=tmp_path)
    assert torch.equal(image_batch("sample_images", 3, 4, size=16), sample_image_crops(3, 16, 4))
    noise = image_batch("gaussian", 64, 1)
    assert noise.shape == (64, 3, 32, 32) and torch.equal(noise, image_batch("gaussian", 64, 1))
    assert abs(noise.mean().item()) < 0.02 and abs(noise.std().item() - 1) < 0.02
    with pytest.raises(ValueError, match="unknown image source 'mnist'; choose one of sample_images, cifar10"):
        image_batch("mnist", 2, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive integer, got 0"):
        image_batch("gaussian", 0, 0)


def test_sample_images_are_area_resized_thumbnails_like_torchs():
    from rayneas.data.embedded import _area_resize, _photos, _summed_areas

    photo = _photos()[1]
    for window, top, left in ((32, 0, 0), (33, 5, 17), (100, 300, 500), (427, 0, 213)):
        reference = F.adaptive_avg_pool2d(
            torch.from_numpy(photo[top:top + window, left:left + window].astype(np.float64)).permute(2, 0, 1), 32)
        expected = reference.permute(1, 2, 0).numpy().round()
        args = (_summed_areas(), np.array([1]), np.array([top]), np.array([left]), np.array([window]), 32)
        whole = _area_resize(*args, np.array([[0], [0]]), 32)[0]
        np.testing.assert_array_equal(whole, expected)
        np.testing.assert_array_equal(_area_resize(*args, np.array([[3], [29]]), 3)[0], whole[3:6, 29:32])
    # thumbnails of whole scenes, not flat patches: every image of a batch has texture
    batch = sample_image_crops(72, seed=0)
    assert batch.flatten(1).std(1).median() > 0.7


def write_idx(path: Path, array: np.ndarray) -> None:
    """The IDX layout as the MNIST family distributes it: 0, 0, type code, rank, big-endian uint32 dims, data."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    with (gzip.open if path.suffix == ".gz" else open)(path, "wb") as f:
        f.write(raw)


def write_fashion_mnist(folder: Path, train: int = 24, test: int = 6, gz: bool = True) -> dict[str, ImageArrays]:
    """Tiny Fashion-MNIST files under their distributed names (gzip-compressed or not)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng, written = np.random.default_rng(3), {}
    for split, prefix, n in (("train", "train", train), ("test", "t10k", test)):
        images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        written[split] = ImageArrays(images[..., None], labels.astype(np.int64))
    return written


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_the_idx_files_from_the_folder_or_its_parent(tmp_path, gz):
    written = write_fashion_mnist(tmp_path / "fashion-mnist", gz=gz)
    for root in (tmp_path, tmp_path / "fashion-mnist"):
        for split in ("train", "test"):
            data = load_fashion_mnist(root, split)
            assert data.images.shape == (len(written[split]), 28, 28, 1) and data.images.dtype == np.uint8
            np.testing.assert_array_equal(data.images, written[split].images)
            np.testing.assert_array_equal(data.labels, written[split].labels)


def test_read_idx_returns_native_arrays_of_any_idx_type(tmp_path):
    values = np.arange(-6, 6, dtype=">i4").reshape(3, 4)
    write_idx(tmp_path / "x.idx", values)
    out = read_idx(tmp_path / "x.idx")
    assert out.dtype == np.int32 and out.dtype.isnative and out.tolist() == values.tolist()


def test_missing_and_damaged_fashion_mnist_files_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"missing: all of them .*apt-get install dataset-fashion-mnist.*"
                                        r"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                                        r"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"):
        load_fashion_mnist(tmp_path, "train")
    write_fashion_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte holds 18827 bytes; .* needs 18832: .*truncated"):
        load_fashion_mnist(tmp_path, "train")
    path.write_bytes(b"\x89PNG\r\n")
    with pytest.raises(DataError, match=r"is not an IDX file"):
        read_idx(path)
    write_idx(path, np.zeros((24, 27, 27), np.uint8))
    with pytest.raises(DataError, match=r"holds uint8 \(24, 27, 27\); Fashion-MNIST images are N x 28 x 28"):
        load_fashion_mnist(tmp_path, "train")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(gzip.compress(b"x")[:8])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte (cannot be read|is not an IDX file)"):
        load_fashion_mnist(tmp_path, "test")
