"""The one exception type the command line turns into a one-line message, and optional imports."""
import importlib


class MrtlabError(Exception):
    """A problem with the user's input (file, image, model, option): shown as one line."""


class MrtlabWarning(UserWarning):
    """Something the user should know that does not stop the work: the command line shows it
    as one line (``mrtlab: warning: …``)."""


# the optional packages: import name → (pip name, the extras of setup.cfg that install it)
OPTIONAL = {
    "pytorch_msssim": ("pytorch-msssim", ("train", "eval")),
    "lpips": ("lpips", ("train", "eval")),
    "DISTS_pytorch": ("DISTS_pytorch", ("train", "eval")),
    "torch_fidelity": ("torch-fidelity", ("eval",)),
    "bjontegaard": ("bjontegaard", ("eval",)),
    "matplotlib": ("matplotlib", ("eval",)),
}


def need(module: str):
    """Import an optional package (``OPTIONAL``), or a one-line error saying how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = (e.name or module).split(".")[0]
        pip, extras = OPTIONAL.get(top, (top, ()))
        hint = f" (in the extras {', '.join(f'mrtlab[{x}]' for x in extras)})" if extras else ""
        raise MrtlabError(f"the Python package {pip} is not installed: pip install {pip}{hint}") from None
