"""Entry point for `ray submit scripts/cluster/cluster.yaml scripts/cluster/search.py -- run CONFIG ...`.

`ray submit` copies this file to the head node's home and runs it there with
the head's Python; it joins the running cluster (``RAY_ADDRESS=auto``) instead
of starting a Ray of its own, then runs the `rayneas` command line with the
given arguments (paths relative to the home folder, e.g. rayneas/configs/...).
"""
import os
import sys

from rayneas.cli import main

if __name__ == "__main__":
    os.environ.setdefault("RAY_ADDRESS", "auto")
    sys.exit(main(sys.argv[1:]))
