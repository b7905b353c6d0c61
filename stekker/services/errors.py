"""Base classes for what a service refuses, so the HTTP layer answers each kind the same way.

A service raises a subclass with a message that says what is wrong and how to fix it; the
API turns `Missing` into 404, `Conflict` into 409, `Invalid` into 422 and `Forbidden` into 403.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Something a caller asked that the service will not do; the message is for people."""


class Missing(ServiceError):
    """What the caller named does not exist."""


class Conflict(ServiceError):
    """The request does not fit the object's current state (e.g. approving a draft)."""


class Invalid(ServiceError):
    """A value is wrong in itself (a negative price, a time in the past)."""


class Forbidden(ServiceError):
    """The caller's role may not do this (e.g. an operator approving its own tariff)."""
