"""The one exception type the command line turns into a one-line message, and optional imports."""
import importlib


class MrtlabError(Exception):
    """A problem with the user's input (file, image, model, option): shown as one line."""


def need(module: str):
    """Import a package of the ``eval`` extra, or a one-line error saying how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise MrtlabError(f"the Python package {(e.name or module).split('.')[0]} is not installed: "
                          'pip install "mrtlab[eval]"') from None
