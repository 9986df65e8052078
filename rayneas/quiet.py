"""The console shows the search's own output; Ray's and RLlib's log lines only with ``rayneas --verbose``.

Every `rayneas` command runs in `quiet()` unless given ``--verbose``. The
choice travels as the environment variable ``RAYNEAS_QUIET``, so it reaches
every process of a run: a local Ray inherits it from the driver, a cluster
gets it in the job's runtime environment (`ray_init_args`), and a worker
quiets Ray's loggers when it imports rayneas (`quiet_worker`), which it does
before running any rayneas code (env runners, scoring actors, Tune trials).
Code that uses rayneas from Python without the CLI keeps Ray's defaults.

One RLlib notice is dropped in every mode, because nothing a user or rayneas
does can avoid it (`drop_rlmodule_config_notice`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any, Iterator

QUIET_ENV = "RAYNEAS_QUIET"

# Ray 2.60's `RLModule.__init__` (rl_module.py:463) always builds the deprecated `RLModuleConfig` for old
# callers, so RLlib logs this once per process for every module, including RLlib's own default modules and
# modules built the current way (`RLModuleSpec.build()` passes observation_space=, action_space=, ...).
RLMODULE_CONFIG_NOTICE = "`RLModule(config=[RLModuleConfig object])` has been deprecated"


class _DropRLModuleConfigNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return RLMODULE_CONFIG_NOTICE not in record.getMessage()


def drop_rlmodule_config_notice() -> None:
    """Filter exactly RLlib's RLModuleConfig deprecation notice (logger ``ray._common.deprecation``).

    Called when rayneas is imported, so the driver and every Ray worker that
    builds a controller (the env runners import rayneas for the env) drop it.
    """
    logger = logging.getLogger("ray._common.deprecation")
    if not any(isinstance(f, _DropRLModuleConfigNotice) for f in logger.filters):
        logger.addFilter(_DropRLModuleConfigNotice())


# Tune's default console engine prints its experiment header at any verbosity; the older one is silent at 0.
QUIET_VARIABLES = {QUIET_ENV: "1", "RAY_AIR_NEW_OUTPUT": "0"}


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Within the block, Ray's and RLlib's log lines off in this process and, through `ray_init_args`, in the
    Ray workers it starts; the environment is restored afterwards (tests call the CLI in-process)."""
    before = {name: os.environ.get(name) for name in QUIET_VARIABLES}
    if enabled:
        os.environ.update(QUIET_VARIABLES)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def is_quiet() -> bool:
    return os.environ.get(QUIET_ENV) == "1"


def quiet_loggers() -> None:
    """Ray's and RLlib's Python loggers at ERROR; `import ray` sets "ray" to INFO and "ray.rllib" to WARN.

    Run in the driver once Ray is up, and in every worker of a quiet run (`quiet_worker`).
    """
    import ray  # noqa: F401  (its import sets the levels overridden here)

    for name in ("ray", "ray.rllib"):
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_worker() -> None:
    """In a process of a quiet run that did not enter `quiet()` itself (a Ray worker), quiet Ray's loggers.

    Called when rayneas is imported. The driver imports rayneas before its
    command enters `quiet()`, so this acts in workers only.
    """
    if is_quiet():
        quiet_loggers()


def ray_init_args(joins_cluster: bool) -> dict[str, Any]:
    """Keywords for `ray.init`: in quiet mode, the "ray" logger at ERROR and, on a cluster, the mode for its workers.

    A local Ray's processes inherit ``RAYNEAS_QUIET`` from the driver, so
    only a cluster needs it as a runtime-environment variable (a job's own
    runtime environment merges with it variable by variable). A local Ray
    gets no runtime environment: with one, no prestarted worker can be used
    and every actor waits for a worker started for it (docs/benchmarks.md).
    """
    if not is_quiet():
        return {}
    args: dict[str, Any] = {"logging_level": logging.ERROR}
    if joins_cluster:
        args["runtime_env"] = {"env_vars": {QUIET_ENV: "1"}}
    return args


def rllib_log_level() -> str:
    """RLlib's ``log_level``: an Algorithm sets the "ray.rllib" logger to it (RLlib's default is WARN)."""
    return "ERROR" if is_quiet() else "WARN"


@contextlib.contextmanager
def actor_restart_notice_spent() -> Iterator[None]:
    """In quiet mode, spend Ray's once-per-process notice about restartable actors with arguments in the object
    store before the block (which builds an RLlib Algorithm) runs.

    RLlib passes its config to every env runner as an ObjectRef and makes the
    runners restartable (``restart_failed_env_runners``), so the first runner
    an Algorithm creates makes Ray's core worker log, once per process and at
    ERROR level straight to stderr, that a restart would fail if that argument
    were lost (ray-project/ray#53727). It is not lost here: the
    EnvRunnerGroup keeps the reference for as long as the runners live, and
    tests/test_eas_fault_tolerance.py restarts a killed runner. The C++ log has
    no filter, and its only level setting (RAY_BACKEND_LOG_LEVEL) would also
    silence the raylet's log files, so the notice is spent here: a no-op actor
    of that kind is created with stderr sent to /dev/null for that one call,
    and killed after the block, once it has started (a worker killed while it
    starts up aborts loudly), which by then it has, in parallel with the
    block's own actors.
    """
    global _notice_spent
    taker = None
    if is_quiet() and not _notice_spent:
        taker, _notice_spent = _take_notice(), True
    try:
        yield
    finally:
        if taker is not None:
            import ray

            ray.get(taker.__ray_ready__.remote())
            ray.kill(taker, no_restart=True)


_notice_spent = False  # the notice comes once per process, so it is spent once per process


def _take_notice() -> Any:
    import ray

    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        return ray.remote(num_cpus=0, max_restarts=1)(_NoticeTaker).remote(ray.put(None))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _NoticeTaker:
    def __init__(self, _: Any) -> None:
        pass
