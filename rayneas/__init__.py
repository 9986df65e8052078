"""rayneas: scalable neural architecture search on Ray (EAS and TE-NAS)."""

__version__ = "0.1.0"

from rayneas.quiet import drop_rlmodule_config_notice, quiet_worker

drop_rlmodule_config_notice()
quiet_worker()
