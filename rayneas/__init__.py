"""rayneas: scalable neural architecture search on Ray (EAS and TE-NAS)."""

__version__ = "0.1.0"
