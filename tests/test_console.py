"""What `rayneas` prints: the search's own output, and Ray's and RLlib's log lines only with --verbose.

The two end-to-end tests run the command in a subprocess of its own (its own local Ray, as `make demo`
starts one), because what is checked is the console of a fresh process.
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from rayneas.cli import build_parser
from rayneas.config import load_run
from rayneas.demo import DEMO_EAS
from rayneas.quiet import QUIET_ENV, RLMODULE_CONFIG_NOTICE, is_quiet, quiet, ray_init_args

ROOT = Path(__file__).resolve().parents[1]
NOISE = re.compile(r"WARNING|ERROR|DeprecationWarning|core_worker|pid=\d+")


def rayneas(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", QUIET_ENV)}
    return subprocess.run([sys.executable, "-m", "rayneas", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def console_lines(text: str) -> list[str]:
    """Lines as a terminal ends up showing them: a progress bar redraws itself after each carriage return."""
    return [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]


def test_the_demos_eas_search_prints_only_its_own_output(tmp_path):
    # The demo's EAS search is configs/eas_digits.yaml with a budget of 40 and a 20-epoch start net. Here one
    # iteration of it (10 children, 2 runners, REINFORCE, Bi-LSTM) with short training: what prints comes from
    # Ray and RLlib.
    _, demo_cfg = load_run(ROOT / "configs" / "eas_digits.yaml",
                           [f"name={DEMO_EAS.name}", "budget.networks=40", "start.epochs=20"])
    assert demo_cfg == DEMO_EAS
    small = ["budget.networks=10", "start.epochs=2", "child.finetune_epochs=2"]
    run = rayneas("run", "configs/eas_digits.yaml", *[a for o in small for a in ("--set", o)],
                  "--runs-dir", str(tmp_path), timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    summary = json.loads(run.stdout)  # stdout is the result and nothing else
    assert summary["networks_evaluated"] == 10 and 0 < summary["best"]["test_acc"] <= 1
    lines = console_lines(run.stderr)
    foreign = [line for line in lines if not line.startswith("EAS (reinforce):")]
    assert lines and not foreign, "\n".join(foreign)  # stderr holds the search's progress bar only
    assert not NOISE.search(run.stderr)


def test_verbose_brings_rays_log_lines_back(tmp_path):
    run = rayneas("run", "configs/tune_tenas_nb201.yaml", "--verbose", "--set", "name=verbose",
                  "--runs-dir", str(tmp_path), timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "INFO worker.py" in run.stderr and "Started a local Ray instance" in run.stderr
    assert '"finished": true' in run.stdout and "round 3 (ops)" in run.stdout  # the search's own lines too


def test_verbose_goes_before_or_after_the_command_and_quiet_mode_ends_with_it(monkeypatch):
    parser = build_parser()
    assert parser.parse_args(["--verbose", "lookup", "1"]).verbose and parser.parse_args(["lookup", "1", "-v"]).verbose
    assert not parser.parse_args(["lookup", "1"]).verbose
    monkeypatch.delenv(QUIET_ENV, raising=False)
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    with quiet():
        assert is_quiet() and ray_init_args(joins_cluster=False) == {"logging_level": logging.ERROR}
        # A local Ray inherits the mode from this process; a cluster's workers get it from the job.
        assert ray_init_args(joins_cluster=True)["runtime_env"] == {"env_vars": {QUIET_ENV: "1"}}
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"  # Tune's console engine that is silent at verbose=0
    # Tests call the CLI in-process: nothing leaks.
    assert not is_quiet() and ray_init_args(joins_cluster=True) == {} and os.environ["RAY_AIR_NEW_OUTPUT"] == "1"
    with quiet(enabled=False):
        assert not is_quiet()


def test_rllib_logs_the_rlmodule_config_notice_for_its_own_modules_and_only_that_notice_is_dropped(monkeypatch):
    import gymnasium as gym
    import ray._common.deprecation as deprecation
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    # RLlib's own module, built the current way (keywords, no config object), still logs the notice:
    # RLModule.__init__ builds the deprecated RLModuleConfig itself.
    said: list[str] = []
    monkeypatch.setattr(deprecation, "log_once", lambda key: True)  # whatever was logged earlier in this process
    monkeypatch.setattr(deprecation, "deprecation_warning", lambda old, **kwargs: said.append(old))
    RLModuleSpec(module_class=DefaultPPOTorchRLModule, observation_space=gym.spaces.Box(-1.0, 1.0, (3,)),
                 action_space=gym.spaces.Discrete(2), model_config={}).build()
    assert said == ["RLModule(config=[RLModuleConfig object])"]

    logger = logging.getLogger("ray._common.deprecation")  # the filter is installed by `import rayneas`

    def passes(message: str) -> bool:
        return bool(logger.filter(logger.makeRecord(logger.name, logging.WARNING, __file__, 0, message, (), None)))

    assert not passes(f"DeprecationWarning: {RLMODULE_CONFIG_NOTICE}. Use `RLModule(observation_space=..)` instead.")
    assert passes("DeprecationWarning: `Algorithm.compute_single_action` has been deprecated.")
