"""Friendly messages for the notebook, printed like the handout's ``info``."""
from termcolor import colored


def info(msg: str) -> None:
    """Print ``msg`` in bold magenta on stdout (the handout's highlight for results)."""
    if not isinstance(msg, str):
        raise TypeError(f"info expects a str, got {type(msg).__name__}")
    print(colored(msg, "magenta", attrs=["bold"]))
