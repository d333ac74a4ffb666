"""Where output goes: friendly messages like the handout's ``info``, and notebook detection."""
from termcolor import colored


def in_notebook() -> bool:
    """True when running inside a Jupyter kernel (where outputs can be updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def info(msg: str) -> None:
    """Print ``msg`` in bold magenta on stdout (the handout's highlight for results).

    Colour is used in a terminal and in a notebook (termcolor alone would not colour a
    notebook's output, which is not a terminal); ``NO_COLOR`` turns it off elsewhere.
    """
    if not isinstance(msg, str):
        raise TypeError(f"info expects a str, got {type(msg).__name__}")
    print(colored(msg, "magenta", attrs=["bold"], force_color=in_notebook() or None))
