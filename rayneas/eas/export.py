"""``rayneas export RUN_DIR`` for an EAS run: the best child with the weights the search trained.

Writes, into ``RUN_DIR/export/`` (or ``out_dir``), the same three files as a
TE-NAS export: ``genotype.json`` (the architecture string, its scores and the
build recipe ``{"builder": "module:callable", "kwargs": {...}}``),
``state_dict.pt`` (the trained weights, from the NetPool) and ``model.pt``
(the whole module). `rayneas.runs.export.load_exported` rebuilds either kind.
"""
from __future__ import annotations

from pathlib import Path

from rayneas.eas.record import load_config
from rayneas.eas.search import trained_network
from rayneas.runs.export import save_export
from rayneas.runs.folder import RESULT, RunDirError, read_json
from rayneas.spaces.common import count_parameters


def export_eas_run(run_dir: Path, out_dir: Path | None = None) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / RESULT).is_file():
        raise RunDirError(f"{run_dir} is not finished (no {RESULT}); finish it with `rayneas run CONFIG --resume` "
                          "before exporting")
    best = read_json(run_dir / RESULT)["best"]
    cfg = load_config(run_dir)
    if cfg.reward.mode in ("surrogate", "indicators"):
        raise RunDirError(f"{run_dir} was searched with reward.mode: {cfg.reward.mode}, which trains no child, so "
                          f"there are no weights to export; train its best architecture {best['arch']!r} "
                          "(scripts/eas_trainfree.py trains finalists) or search with reward.mode: train or hybrid")
    net, evaluator = trained_network(cfg, run_dir, best["arch"])
    info = {"space": evaluator.space.kind, "dataset": cfg.dataset.name, "genotype": best["arch"],
            "val_acc": best["val_acc"], "test_acc": best["test_acc"], "parameters": count_parameters(net),
            **evaluator.space.recipe(best["arch"], evaluator.data.in_channels, evaluator.data.num_classes)}
    return save_export(net.cpu(), info, run_dir, out_dir)
