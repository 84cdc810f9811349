"""DSTDH, split by concept: graphs, the code-learning solver, the hash network and the method."""

from hashbench.methods.dstdh.method import DSTDH

__all__ = ["DSTDH"]
