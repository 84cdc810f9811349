"""Search backends; every module here registers one backend when imported."""
