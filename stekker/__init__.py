"""Stekker: an open-source backoffice for Charge Point Operators."""

__version__ = "0.1.0"
