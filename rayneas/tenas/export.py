"""``rayneas export RUN_DIR``: the found cell as a network a user can load and train.

Writes, into ``RUN_DIR/export/`` (or ``out_dir``):

- ``genotype.json``: space, genotype text (and DARTS dict form), and the build
  recipe ``{"builder": "module:callable", "kwargs": {...}}``;
- ``state_dict.pt``: the freshly initialised weights (seeded by the run's seed);
- ``model.pt``: the whole module (``torch.load(path, weights_only=False)``;
  needs rayneas importable).

`load_exported` rebuilds the module from the first two, the portable way.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from rayneas.config import from_dict
from rayneas.spaces.common import count_parameters
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.prunable import make_space
from rayneas.tenas.record import CONFIG, RESULT, RunDirError, load_state, read_json

GENOTYPE_JSON, STATE_DICT, MODEL = "genotype.json", "state_dict.pt", "model.pt"


def _config(run_dir: Path) -> TenasConfig:
    """The run's config, as its latest session saved it."""
    return from_dict(TenasConfig, read_json(run_dir / CONFIG))


def export_run(run_dir: Path, out_dir: Path | None = None) -> Path:
    """Write the final network of a finished run; returns the folder written."""
    run_dir = Path(run_dir)
    state = load_state(run_dir)
    if not state.finished:
        raise RunDirError(f"{run_dir} is not finished ({len(state.rounds)} rounds done, no {RESULT}); "
                          f"finish it with `rayneas run CONFIG --resume` before exporting")
    cfg = _config(run_dir)
    space = make_space(cfg)
    genotype = space.parse_genotype(state.genotype)
    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        net, recipe = space.final_network(genotype, cfg.export.C, cfg.export.layers, cfg.export.auxiliary)
    out = Path(out_dir) if out_dir is not None else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    info = {"space": cfg.space, "dataset": cfg.dataset, "genotype": state.genotype, **recipe,
            "parameters": count_parameters(net)}
    if cfg.space == "darts":
        info["genotype_dict"] = genotype.to_dict()
    (out / GENOTYPE_JSON).write_text(json.dumps(info, indent=1))
    torch.save(net.state_dict(), out / STATE_DICT)
    torch.save(net, out / MODEL)
    return out


def _eas_spaces() -> Sequence[str]:
    from rayneas.eas.space import SPACES  # imported here: a TE-NAS export needs nothing of EAS

    return tuple(SPACES)


def load_exported(out_dir: Path) -> nn.Module:
    """The exported network (TE-NAS or EAS), rebuilt from genotype.json's recipe with state_dict.pt's weights."""
    out_dir = Path(out_dir)
    info = read_json(out_dir / GENOTYPE_JSON)
    module, _, name = info["builder"].partition(":")
    builder = getattr(importlib.import_module(module), name)
    if info["space"] in _eas_spaces():  # an EAS export: the recipe's kwargs hold the architecture
        net = builder(**info["kwargs"])
    else:
        space = make_space(from_dict(TenasConfig, {"space": info["space"], "dataset": info["dataset"]}))
        net = builder(genotype=space.parse_genotype(info["genotype"]), **info["kwargs"])
    net.load_state_dict(torch.load(out_dir / STATE_DICT, weights_only=True))
    return net
