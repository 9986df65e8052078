"""EAS on Fashion-MNIST, against tiny IDX files the tests write (the Debian package is never needed): the default
folder and its error, the splits, area downsampling, the training subset, and a search that reads the test set."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rayneas.config import ConfigError, from_dict, load_run
from rayneas.eas import config as eas_config
from rayneas.eas.config import DatasetConfig, EASEnvConfig
from rayneas.eas.data import check_dataset, load_child_data, load_test_data
from rayneas.eas.search import run_eas
from test_data import write_fashion_mnist

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_fashion.yaml"


def test_the_default_folder_is_the_debian_packages_and_its_absence_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(eas_config, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(ConfigError) as error:
        from_dict(EASEnvConfig, {"dataset": {"name": "fashion_mnist"}})
    message = str(error.value)
    assert "\n" not in message and "apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, " \
           "t10k-labels-idx1-ubyte.gz" in message and "set dataset.root" in message
    write_fashion_mnist(tmp_path / "debian")
    monkeypatch.setattr(eas_config, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    assert from_dict(EASEnvConfig, {"dataset": {"name": "fashion_mnist"}}).dataset.root == tmp_path / "debian"


def test_splits_are_seeded_disjoint_downsampled_by_area_and_subset(tmp_path):
    written = write_fashion_mnist(tmp_path, train=36, test=6)
    cfg = DatasetConfig(name="fashion_mnist", root=tmp_path, image_size=14, train_size=20)
    data = load_child_data(cfg, seed=0)
    pixels = torch.from_numpy(written["train"].images).permute(0, 3, 1, 2).float() / 255
    half = F.avg_pool2d(pixels, 2)  # 28 -> 14: each pixel the mean of a 2x2 square
    assert data.x_val.shape == (3, 1, 14, 14) and data.x_train.shape == (20, 1, 14, 14)  # 1/12 of 36 validate
    assert (data.in_channels, data.num_classes, data.augment) == (1, 10, None)
    rows = [int(np.flatnonzero([torch.allclose(x, h, atol=1e-6) for h in half])[0]) for x in data.x_val]
    rows += [int(np.flatnonzero([torch.allclose(x, h, atol=1e-6) for h in half])[0]) for x in data.x_train]
    assert len(set(rows)) == 23  # validation and training images are distinct training images
    labels = torch.from_numpy(written["train"].labels)
    assert torch.equal(torch.cat([data.y_val, data.y_train]), labels[rows])
    again, other = load_child_data(cfg, seed=0), load_child_data(cfg, seed=1)
    assert torch.equal(again.x_val, data.x_val) and not torch.equal(other.x_val, data.x_val)
    x_test, y_test = load_test_data(cfg, seed=0)
    assert torch.allclose(x_test, F.avg_pool2d(torch.from_numpy(written["test"].images).permute(0, 3, 1, 2).float()
                                               / 255, 2), atol=1e-6)
    assert y_test.tolist() == written["test"].labels.tolist()


def test_sizes_beyond_the_data_are_refused_before_a_search_starts(tmp_path):
    write_fashion_mnist(tmp_path, train=36)
    with pytest.raises(ConfigError, match=r"dataset.image_size: 32 exceeds the 28-pixel images of fashion_mnist"):
        from_dict(EASEnvConfig, {"dataset": {"name": "fashion_mnist", "root": str(tmp_path), "image_size": 32}})
    with pytest.raises(ValueError, match=r"dataset.train_size: 34 exceeds the 33 training images left after the "
                                         r"validation split of 3; set at most 33 or null"):
        check_dataset(DatasetConfig(name="fashion_mnist", root=tmp_path, train_size=34), seed=0)


def test_a_fashion_search_scores_its_best_child_on_the_test_images(ray_local, tmp_path):
    write_fashion_mnist(tmp_path / "data", train=60, test=10)
    cfg = load_run(CONFIG, [f"dataset.root={tmp_path / 'data'}", "dataset.train_size=null", "start.epochs=1",
                            "start.batch_size=8", "child.finetune_epochs=1", "child.batch_size=8",
                            "controller.networks_per_iteration=2", "controller.num_env_runners=0",
                            "budget.networks=2"])[1]
    result = run_eas(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["dataset"] == "fashion_mnist" and saved["networks_evaluated"] == 2
    assert result["best"]["test_acc"] in [k / 10 for k in range(11)]  # measured on the 10 test images
