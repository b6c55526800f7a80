"""``python -m huafeng.train WHAT ...`` is ``huafeng train WHAT ...``; torchrun launches it this way:

    torchrun --nproc_per_node 2 -m huafeng.train photoreal --steps 1000 --batch 8
"""
import sys

from huafeng.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
