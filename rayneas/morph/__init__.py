"""Function-preserving Net2Net transforms (Net2Wider, Net2Deeper) on plain CNNs."""
from rayneas.morph.arch import MorphError, deepened, widened
from rayneas.morph.deeper import deepen
from rayneas.morph.wider import widen

__all__ = ["MorphError", "deepen", "deepened", "widen", "widened"]
