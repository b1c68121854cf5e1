"""sylkbox: a conference server appliance for an office LAN."""

__version__ = "0.1.0"
__all__ = ["__version__"]
