"""``rayneas export RUN_DIR`` for a TE-NAS run: the found cell as a network a user can load and train.

Writes the three files of `rayneas.runs.export` into ``RUN_DIR/export/`` (or
``out_dir``): ``genotype.json`` holds the space, the genotype text (and DARTS
dict form) and the build recipe; ``state_dict.pt`` the freshly initialised
weights (seeded by the run's seed); ``model.pt`` the whole module.
`rayneas.runs.export.load_exported` rebuilds it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from rayneas.config import from_dict
from rayneas.runs.export import save_export
from rayneas.runs.folder import CONFIG, RESULT, RunDirError, read_json
from rayneas.spaces.common import count_parameters
from rayneas.spaces.prunable import make_space
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.record import load_state


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
    info = {"space": cfg.space, "dataset": cfg.dataset, "genotype": state.genotype, **recipe,
            "parameters": count_parameters(net)}
    if cfg.space == "darts":
        info["genotype_dict"] = genotype.to_dict()
    return save_export(net, info, run_dir, out_dir)
