"""A fixed colour and marker per method, the same in every plot of every report."""

import hashlib
from typing import NamedTuple

# Colour-blind-safe palette (Okabe and Ito, 2008) followed by darker tab10 colours.
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
    "#8C564B", "#7F7F7F", "#BCBD22", "#9467BD", "#17BECF", "#D62728",
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")

#: Registered methods, each with its own palette and marker index so that none share both.
#: A method not listed here gets a style from the SHA-256 of its name.
KNOWN_METHODS = (
    "dstdh", "itq", "lsh", "sh", "pcah", "agh", "sgh", "sph", "dsh", "greedyhash", "bihalf",
    "ssdh", "cca-itq",
)

#: Line styles that tell apart two parameter settings or backbones of one method.
VARIANT_LINESTYLES = ("-", "--", ":", "-.")


class MethodStyle(NamedTuple):
    """Colour and marker of one method in every plot.

    Attributes
    ----------
    colour : str
        Matplotlib colour as ``"#RRGGBB"``.
    marker : str
        Matplotlib marker code.
    """

    colour: str
    marker: str


def method_style(method):
    """Return the colour and marker of a method.

    The mapping depends only on the name: a method in ``KNOWN_METHODS`` takes the colour and
    marker at its position, any other method a pair chosen by the SHA-256 of its name. So a
    method looks the same in every plot, whatever other methods a report contains.

    Parameters
    ----------
    method : str

    Returns
    -------
    MethodStyle
    """
    if method in KNOWN_METHODS:
        index = KNOWN_METHODS.index(method)
        return MethodStyle(PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)])
    digest = int.from_bytes(hashlib.sha256(method.encode("utf-8")).digest()[:8], "big")
    return MethodStyle(PALETTE[digest % len(PALETTE)], MARKERS[(digest // len(PALETTE)) % len(MARKERS)])


def variant_linestyle(index):
    """Return the line style of the ``index``-th setting (0-based) of one method."""
    return VARIANT_LINESTYLES[index % len(VARIANT_LINESTYLES)]
