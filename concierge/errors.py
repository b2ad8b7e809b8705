"""The error services raise when a request cannot be carried out; its text is shown as is."""


class Refused(Exception):
    """A polite refusal: nothing was changed, and the message says why."""
