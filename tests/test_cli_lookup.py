import subprocess
import sys

import pyarrow.csv as pacsv
import pytest

from rayneas.cli import main
from rayneas.lookup import AccuracyTableError, load_table, lookup

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_lookup_by_string_and_index_agree():
    by_string, by_index = lookup(BEST), lookup(6111)
    assert by_string == by_index
    assert (by_index.cifar10, by_index.cifar100, by_index.imagenet16) == (94.3733, 73.22, 46.7111)
    assert lookup("1651").cifar10 == 10.0


def test_lookup_cli_prints_plain_numbers(capsys):
    assert main(["lookup", "6111"]) == 0
    lines = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["index"] == "6111" and lines["arch"] == BEST
    assert float(lines["cifar10"]) == 94.3733


def test_user_errors_are_one_line(capsys, tmp_path):
    assert main(["lookup", "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"]) == 2
    assert "unknown op 'bogus'" in capsys.readouterr().err
    assert main(["lookup", "1", "--csv", str(tmp_path / "none.csv")]) == 2
    err = capsys.readouterr().err
    assert "none.csv' does not exist" in err and "RAYNEAS_NB201_CSV" in err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_csv_path_configurable_and_validated(tmp_path, monkeypatch):
    bad = tmp_path / "bad.csv"
    bad.write_text("nb201_index,arch\n0,x\n")
    with pytest.raises(AccuracyTableError, match=r"missing column\(s\) \['cifar10_test'"):
        load_table(bad)
    good = tmp_path / "good.csv"
    pacsv.write_csv(load_table(), good)
    monkeypatch.setenv("RAYNEAS_NB201_CSV", str(good))
    assert lookup(6111).cifar10 == 94.3733


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "rayneas", "describe", "6111"], capture_output=True, text=True,
                         check=True).stdout
    assert "index 6111" in out and "17 cells/blocks" in out and "output (1, 10)" in out
