"""``rayneas export RUN_DIR``'s three files, the same for every run kind, and `load_exported`.

Written into ``RUN_DIR/export/`` (or ``out_dir``):

- ``genotype.json``: space, genotype text, the run kind's own details, and the
  build recipe ``{"builder": "module:callable", "kwargs": {...}}``;
- ``state_dict.pt``: the network's weights;
- ``model.pt``: the whole module (``torch.load(path, weights_only=False)``;
  needs rayneas importable).

`load_exported` rebuilds the module from the first two, the portable way.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch
from torch import nn

from rayneas.runs.folder import read_json
from rayneas.spaces.prunable import PRUNABLE

GENOTYPE_JSON, STATE_DICT, MODEL = "genotype.json", "state_dict.pt", "model.pt"
EXPORT_DIR = "export"


def save_export(net: nn.Module, info: dict, run_dir: Path, out_dir: Path | None = None) -> Path:
    """Write ``net`` and ``info`` (which holds the recipe) into ``out_dir`` or ``run_dir/export``; returns it."""
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / EXPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / GENOTYPE_JSON).write_text(json.dumps(info, indent=1))
    torch.save(net.state_dict(), out / STATE_DICT)
    torch.save(net, out / MODEL)
    return out


def load_exported(out_dir: Path) -> nn.Module:
    """The exported network (TE-NAS or EAS), rebuilt from genotype.json's recipe with state_dict.pt's weights."""
    out_dir = Path(out_dir)
    info = read_json(out_dir / GENOTYPE_JSON)
    module, _, name = info["builder"].partition(":")
    builder = getattr(importlib.import_module(module), name)
    if info["space"] in PRUNABLE:  # a cell of a supernet space: the recipe builds the network around it
        space = PRUNABLE[info["space"]](info["dataset"])
        net = builder(genotype=space.parse_genotype(info["genotype"]), **info["kwargs"])
    else:  # an EAS export: the recipe's kwargs hold the architecture
        net = builder(**info["kwargs"])
    net.load_state_dict(torch.load(out_dir / STATE_DICT, weights_only=True))
    return net
