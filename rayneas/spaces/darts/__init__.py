"""The DARTS cell space (Liu et al. 2019): genotypes, evaluation networks, TE-NAS supernet.

`genotype` holds the text and mask forms of a cell and needs no network,
`network` DARTS's evaluation networks, `supernet` TE-NAS's search network.
Everything public is re-exported here, so ``rayneas.spaces.darts.X`` (and
recipe builder paths such as ``"rayneas.spaces.darts:DartsNetworkCIFAR"``)
name the same objects as before the split.
"""
from rayneas.spaces.darts.genotype import (
    CELL_TYPES,
    DARTS_V2,
    EDGES,
    NUM_EDGES,
    OP_INDEX,
    PRIMITIVES,
    STEPS,
    Genotype,
    GenotypeError,
    cell_edges,
    format_genotype,
    genotype_from_mask,
    mask_from_genotype,
    parse_genotype,
)
from rayneas.spaces.darts.network import DartsCell, DartsNetworkCIFAR, DartsNetworkImageNet, drop_path
from rayneas.spaces.darts.supernet import DartsSuperNet, MixedEdge, SuperCell

__all__ = [
    "CELL_TYPES", "DARTS_V2", "EDGES", "NUM_EDGES", "OP_INDEX", "PRIMITIVES", "STEPS", "Genotype", "GenotypeError",
    "cell_edges", "format_genotype", "genotype_from_mask", "mask_from_genotype", "parse_genotype",
    "DartsCell", "DartsNetworkCIFAR", "DartsNetworkImageNet", "drop_path",
    "DartsSuperNet", "MixedEdge", "SuperCell",
]
