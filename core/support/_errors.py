"""Errors the support service raises; every message is safe to show the person who caused it."""

from core.errors import KeelError


class SupportError(KeelError, ValueError):
    """A request the support service refuses; the message says why."""


class EmptyMessage(SupportError):
    pass


class MessageTooLong(SupportError):
    pass


class ConversationNotFound(SupportError):
    pass


class ConversationClosed(SupportError):
    pass


class AlreadyClaimed(SupportError):
    pass


class NotAllowed(SupportError):
    pass


class InvalidRating(SupportError):
    pass
