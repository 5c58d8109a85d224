"""The one exception type the command line turns into a one-line message."""


class MrtlabError(Exception):
    """A problem with the user's input (file, image, model, option): shown as one line."""
