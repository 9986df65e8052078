"""Function-preserving Net2Net transforms (Net2Wider, Net2Deeper) on plain CNNs.

The DenseNet space's transforms live in `rayneas.morph.densenet` (same names:
``widen``, ``deepen``, ``widened``, ``deepened``; same `MorphError`).
"""
from rayneas.morph.arch import MorphError, deepened, widened
from rayneas.morph.deeper import deepen
from rayneas.morph.wider import widen

__all__ = ["MorphError", "deepen", "deepened", "widen", "widened"]
