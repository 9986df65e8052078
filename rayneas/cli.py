"""The `rayneas` command: run or tune a config, look up a cell, describe, plot, export, demo."""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from rayneas.config import load_run
from rayneas.errors import RayneasError
from rayneas.lookup import lookup
from rayneas.quiet import quiet
from rayneas.runs.staging import staged
from rayneas.spaces import nb201
from rayneas.spaces.common import count_parameters
from rayneas.storage import join


def _print_lookup(arch: str, csv: str | None) -> None:
    acc = lookup(arch, csv)
    print(f"index {acc.index}")
    print(f"arch {acc.arch}")
    print(f"cifar10 {acc.cifar10:.4f}")
    print(f"cifar100 {acc.cifar100:.4f}")
    print(f"imagenet16 {acc.imagenet16:.4f}")


def _describe(arch: str, C: int, N: int, num_classes: int) -> None:
    import torch

    genotype = nb201.resolve(arch)
    net = nb201.build(genotype, C=C, N=N, num_classes=num_classes)
    params = count_parameters(net)
    with torch.no_grad():
        out = net.eval()(torch.zeros(1, 3, 32, 32))
    print(f"genotype {genotype.to_string()}")
    print(f"index {nb201.index_of(genotype)}")
    print(f"connected {genotype.is_connected()}")
    print(f"network NB201 C={C} N={N}: {len(net.cells)} cells/blocks, {params} parameters "
          f"({params / 1e6:.3f} M), output {tuple(out.shape)}")


def _check_output(location: str, option: str) -> None:
    """Refuse an output location the run would lose or other nodes cannot reach, before any work (joining
    the cluster first when there is one to join)."""
    from rayneas.storage import check_shared

    if os.environ.get("RAY_ADDRESS"):
        from rayneas.scoring import ensure_ray

        ensure_ray()
    check_shared(location, option)


def _shown(path: Path, run_dir: Path, location: str) -> str:
    """Where a file written in a staged run folder ends up: under its URI (`rayneas.runs.staging`)."""
    path = Path(path)
    return join(location, path.relative_to(run_dir).as_posix()) if path.is_relative_to(run_dir) else str(path)


def _run(config: str, overrides: Sequence[str], resume: bool, runs_dir: str) -> dict:
    kind, cfg = load_run(config, overrides)
    _check_output(runs_dir, "--runs-dir")
    location = join(runs_dir, cfg.name)
    with staged(location) as run_dir:
        run_dir.mkdir(parents=True, exist_ok=True)
        summary = kind.runner(cfg, run_dir, resume)
    summary["run_dir"] = location
    print(json.dumps(summary, indent=2, default=str))
    return summary


def _tune(config: str, overrides: Sequence[str], resume: bool) -> None:
    from rayneas.scoring import ensure_ray
    from rayneas.tune.experiment import load_experiment, run_experiment
    from rayneas.tune.summary import format_table, summary_rows
    from rayneas.tune.trials import trial_for

    experiment = load_experiment(config, overrides)  # every swept value is checked before Ray starts
    ensure_ray()
    _check_output(experiment.settings.storage_path, "tune.storage_path")
    grid = run_experiment(experiment, resume)
    print(format_table(summary_rows(grid, list(experiment.settings.swept()), trial_for(experiment.kind).columns)))
    print(f"experiment: {experiment.path}   (tensorboard --logdir {experiment.path})")


def _is_eas(run_dir: Path) -> bool:
    from rayneas.eas.record import NETWORKS

    return (run_dir / NETWORKS).is_file()


def _plot(location: str) -> None:
    with staged(location, reading=True) as run_dir:
        if _is_eas(run_dir):
            from rayneas.eas.record import best_key, load_config, load_networks
            from rayneas.eas.report import plot_rewards

            paths = [plot_rewards(run_dir, load_networks(run_dir), f"EAS run {run_dir.name}",
                                  by=best_key(load_config(run_dir)))]
        else:
            from rayneas.tenas.report import plot_run

            paths = plot_run(run_dir)
    for path in paths:
        print(_shown(path, run_dir, location))


def _export(location: str, out: Path | None) -> None:
    with staged(location, reading=True) as run_dir:
        if _is_eas(run_dir):
            from rayneas.eas.export import export_eas_run

            path = export_eas_run(run_dir, out)
        else:
            from rayneas.tenas.export import export_run

            path = export_run(run_dir, out)
    print(_shown(path, run_dir, location))


VERBOSE_HELP = "also show Ray's and RLlib's log lines (by default only the search's own output)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rayneas", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    # The same flag after the command (`rayneas run CONFIG --verbose`); SUPPRESS keeps one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    command = functools.partial(sub.add_parser, parents=[common])

    run = command("run", help="run a search from a YAML config")
    run.add_argument("config")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set seed=7 --set scoring.num_actors=2")
    run.add_argument("--resume", action="store_true", help="continue the run in runs/<name>/ where it stopped")
    run.add_argument("--runs-dir", default="runs", help="where runs/<name>/ goes: a folder or a URI "
                                                        "(s3://bucket/runs, gs://bucket/runs, file:///mount/runs)")

    tun = command("tune", help="sweep the keys a config's tune: block names, as a Ray Tune experiment")
    tun.add_argument("config")
    tun.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set tune.num_samples=2")
    tun.add_argument("--resume", action="store_true", help="restore the interrupted experiment and finish it")

    look = command("lookup", help="trained accuracies of a NAS-Bench-201 cell (string or index)")
    look.add_argument("arch")
    look.add_argument("--csv", default=None, help="accuracy CSV (default: $RAYNEAS_NB201_CSV, else bundled)")

    desc = command("describe", help="build a NAS-Bench-201 network and count its parameters")
    desc.add_argument("arch")
    desc.add_argument("--C", type=int, default=16)
    desc.add_argument("--N", type=int, default=5)
    desc.add_argument("--num-classes", type=int, default=10)

    plot = command("plot", help="plot a finished or running search (TE-NAS trajectory, EAS reward curve)")
    plot.add_argument("run_dir", help="the run folder, or its URI (s3://bucket/runs/NAME)")
    export = command("export", help="write the found network as a PyTorch module + genotype JSON "
                                                "(EAS: the best child with its trained weights)")
    export.add_argument("run_dir", help="the run folder, or its URI (s3://bucket/runs/NAME)")
    export.add_argument("--out", default=None)

    demo = command("demo", help="the main job on embedded defaults (no download)")
    demo.add_argument("--runs-dir", default="runs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with quiet(not args.verbose):
            _dispatch(args)
    except RayneasError as exc:
        print(f"rayneas: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _dispatch(args: argparse.Namespace) -> None:
    if args.command == "lookup":
        _print_lookup(args.arch, args.csv)
    elif args.command == "describe":
        _describe(args.arch, args.C, args.N, args.num_classes)
    elif args.command == "run":
        _run(args.config, args.overrides, args.resume, args.runs_dir)
    elif args.command == "tune":
        _tune(args.config, args.overrides, args.resume)
    elif args.command == "plot":
        _plot(args.run_dir)
    elif args.command == "export":
        _export(args.run_dir, Path(args.out) if args.out else None)
    elif args.command == "demo":
        from rayneas.demo import demo

        demo(Path(args.runs_dir))
