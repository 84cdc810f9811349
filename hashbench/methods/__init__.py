"""Hashing methods, one module each; every module registers its class on import."""
