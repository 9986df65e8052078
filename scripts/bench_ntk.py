"""Time rayneas's κ against a straightforward per-sample backward loop, side by side in one run.

The baseline below is the obvious implementation (the reference code's loop):
train mode, one ``autograd.grad`` of ``logits[i].sum()`` per sample over all
``*weight`` parameters, Θ = J Jᵀ, float64 eigenvalues. Everything gets the
same network, weights and image batch, as ``rayneas.data.image_batch``
returns it (channels_last in memory, being built from HWC arrays); the
baseline also runs on a contiguous NCHW copy. Timings alternate between the
contenders so that machine load hits all alike, and the best of
``--repeats`` runs of each is compared. ``--float64`` adds the κ of a float64
copy of the network as the accuracy reference.

    python scripts/bench_ntk.py                      # full NB201 supernet (C=3, N=1), batch 72, 1 thread
    python scripts/bench_ntk.py --arch 6111 --batch 32 --threads 2 --float64
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from typing import Callable

import torch
from torch import nn

from rayneas.data import image_batch
from rayneas.indicators import init_weights, ntk_condition_number
from rayneas.indicators.oracle import plain_loop_kappa
from rayneas.scoring.host import use_deterministic_kernels
from rayneas.spaces import nb201


def build(arch: str, C: int, N: int) -> nn.Module:
    if arch == "supernet":
        return nb201.supernet(C=C, N=N)
    return nb201.build(arch, C=C, N=N)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="supernet", help="'supernet' (all 4 search ops on every edge), "
                        "a NAS-Bench-201 genotype string or index")
    parser.add_argument("--C", type=int, default=3)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--batch", type=int, default=72)
    parser.add_argument("--source", default="sample_images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (best one counts)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--method", default="auto", choices=("auto", "loop", "batched"))
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--float64", action="store_true", help="also compute κ of a float64 copy as reference")
    parser.add_argument("--deterministic", action="store_true",
                        help="CUDA: deterministic kernels, as the scorer's workers use (rayneas.scoring.host)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.deterministic:
        use_deterministic_kernels(device)
    model = init_weights(build(args.arch, args.C, args.N), "paper", args.seed, fan="out").to(device)
    x = image_batch(args.source, args.batch, args.seed).to(device)
    weights = sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))
    print(f"# {args.arch} C={args.C} N={args.N}, batch {args.batch} {args.source}, {weights} weights, "
          f"device {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), method {args.method}")

    contenders: dict[str, Callable[[], float]] = {
        "plain loop, batch as loaded": lambda: plain_loop_kappa(model, x),
        "plain loop, contiguous batch": lambda: plain_loop_kappa(model, x.contiguous()),
        "rayneas": lambda: ntk_condition_number(model, x, method=args.method, chunk_size=args.chunk_size),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    kappas: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            kappas[name].append(fn())
            times[name].append(time.perf_counter() - start)

    reference = plain_loop_kappa(copy.deepcopy(model).double(), x.double()) if args.float64 else None
    print(f"{'':30s} {'best s':>8s} {'median s':>9s} {'kappa':>18s} {'rel. error':>11s}")
    for name in contenders:
        error = f"{abs(kappas[name][0] - reference) / reference:11.2e}" if reference else ""
        print(f"{name:30s} {min(times[name]):8.3f} {statistics.median(times[name]):9.3f} "
              f"{kappas[name][0]:18.6f} {error}")
    if reference:
        print(f"{'float64 plain loop':30s} {'':8s} {'':9s} {reference:18.6f}")
    ours = kappas["rayneas"]
    for name in list(contenders)[:2]:
        rel = max(abs(a - b) / abs(b) for a in ours for b in kappas[name])
        print(f"rayneas vs {name}: speed-up {min(times[name]) / min(times['rayneas']):.2f}x best, "
              f"{statistics.median(times[name]) / statistics.median(times['rayneas']):.2f}x median; "
              f"max relative difference of kappa {rel:.2e}")
    print(f"rayneas kappa identical over its {args.repeats} runs: {len(set(ours)) == 1}")


if __name__ == "__main__":
    main()
