import subprocess
import sys

import pyarrow.compute as pc
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


def test_bad_csv_is_rejected_with_its_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("nb201_index,arch\n0,x\n")
    with pytest.raises(AccuracyTableError, match=r"missing column\(s\) \['cifar10_test'"):
        load_table(bad)


def test_env_var_is_read_on_every_call_and_its_table_is_used(tmp_path, monkeypatch, capsys):
    # A table whose numbers differ from the bundled one, so the test can tell which one was read.
    bundled = load_table()
    changed = bundled.set_column(bundled.column_names.index("cifar10_test"), "cifar10_test",
                                 pc.add(bundled["cifar10_test"], 1000.0))
    path = tmp_path / "changed.csv"
    pacsv.write_csv(changed, path)
    monkeypatch.delenv("RAYNEAS_NB201_CSV", raising=False)
    assert lookup(6111).cifar10 == 94.3733  # bundled, and the process has now read a table once
    monkeypatch.setenv("RAYNEAS_NB201_CSV", str(path))
    assert lookup(6111).cifar10 == pytest.approx(1094.3733)
    assert main(["lookup", "6111"]) == 0
    assert "cifar10 1094.3733" in capsys.readouterr().out
    monkeypatch.delenv("RAYNEAS_NB201_CSV")
    assert lookup(6111).cifar10 == 94.3733
    assert lookup(6111, csv_path=path).cifar10 == pytest.approx(1094.3733)


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "rayneas", "describe", "6111"], capture_output=True, text=True,
                         check=True).stdout
    assert "index 6111" in out and "17 cells/blocks" in out and "output (1, 10)" in out
