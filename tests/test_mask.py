"""The one live-op mask both supernets read: JSON form, pruning, equality, and its error messages."""
from __future__ import annotations

import json
import pickle

import pytest

from rayneas.spaces.common import GenotypeError
from rayneas.spaces.mask import Mask

# The form state.json has always stored (two cells, the second with a cut edge).
SAVED = {"normal": [["skip_connect", "sep_conv_3x3"], ["max_pool_3x3"]], "reduce": [["avg_pool_3x3"], []]}


def test_json_round_trip_keeps_the_saved_form():
    mask = Mask.from_json(json.loads(json.dumps(SAVED)))
    assert mask.to_json() == SAVED and json.loads(json.dumps(mask.to_json())) == SAVED
    assert mask.cell_types == ("normal", "reduce") and mask["reduce"] == (("avg_pool_3x3",), ())


def test_without_gives_a_new_mask_and_leaves_the_old_one():
    mask = Mask.from_json(SAVED)
    pruned = mask.without("normal", 0, "skip_connect")
    assert pruned["normal"][0] == ("sep_conv_3x3",) and mask.to_json() == SAVED
    assert pruned["reduce"] == mask["reduce"]
    assert mask.live_op_count() == 4 and pruned.live_op_count() == 3
    cut = pruned.without("normal", 1, "max_pool_3x3")  # the last op: the edge is cut
    assert cut["normal"][1] == ()
    with pytest.raises(AttributeError):
        mask.cells = ()  # type: ignore[misc]
    with pytest.raises(TypeError, match="build masks from lists with Mask.from_json"):
        Mask((("cell", [["skip_connect"]]),))  # type: ignore[arg-type]  # lists would make it unhashable


def test_is_final_once_no_edge_has_a_choice():
    mask = Mask.from_json(SAVED)
    assert not mask.is_final()
    assert mask.without("normal", 0, "sep_conv_3x3").is_final()  # cut edges count as decided


def test_equal_masks_are_equal_hash_equal_and_survive_pickling():
    a = Mask.from_json(SAVED)
    b = Mask.from_json(json.loads(json.dumps(SAVED)))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert pickle.loads(pickle.dumps(a)) == a  # scoring tasks ship masks to Ray actors
    assert a != a.without("normal", 0, "skip_connect")
    assert Mask.full(("cell",), 2, ["a", "b"]) == Mask.from_json({"cell": [["a", "b"], ["a", "b"]]})


def test_live_indices_follow_the_networks_op_order():
    mask = Mask.from_json(SAVED)
    order = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3")
    assert mask.live_indices("normal", order) == [[2, 3], [0]]
    assert mask.live_indices("reduce", order) == [[1], []]


@pytest.mark.parametrize("call, message", [
    (lambda m: m.without("normal", 1, "skip_connect"),
     r"'skip_connect' is not live on normal edge 1 \(live: \['max_pool_3x3'\]\); remove one of those"),
    (lambda m: m.without("normal", 5, "skip_connect"), r"normal has edges 0..1, not 5"),
    (lambda m: m["cell"], r"the mask has no cell type 'cell'; it has normal, reduce"),
])
def test_mistakes_name_the_problem(call, message):
    with pytest.raises(GenotypeError, match=message):
        call(Mask.from_json(SAVED))


@pytest.mark.parametrize("data, message", [
    ({}, "a mask must be a non-empty mapping"),
    ({"cell": "skip_connect"}, "expected a cell-type name and a list of per-edge op lists"),
    ({"cell": ["skip_connect"]}, "mask cell edge 0: expected a list of op names, got 'skip_connect'"),
    ({"cell": [[1]]}, "op names must be strings"),
    ({"cell": [["skip_connect", "skip_connect"]]}, r"lists \['skip_connect'\] more than once"),
])
def test_malformed_json_is_refused(data, message):
    with pytest.raises(GenotypeError, match=message):
        Mask.from_json(data)
