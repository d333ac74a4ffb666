"""The check's side of the call channel: stand-ins that call into the student's kernel.

A test that reads a student's function, an object of the student's own class, or a network the
chain format cannot carry gets a stand-in from :func:`stand_in`. Calling it (or reading one of its
attributes) sends a request through :class:`Channel` to the runner, which has the student's
kernel carry it out (:mod:`autograde.run.serve`). What crosses:

* to the kernel, only values the check made: ``None``, booleans, numbers, strings, bytes, lists,
  tuples, string-keyed dicts, numpy arrays, tensors, ``verify`` results, networks the verifier
  reads (sent as their chain of Linear/ReLU/Sigmoid/Softmax), and stand-ins (sent as their handle);
  anything else is refused before it is sent;
* back, the answer as exports are written, read by :func:`autograde.artifacts.read_answer` and
  rebuilt as exports are; what is not data comes back as another stand-in.

A call's answer is data the student's code produced: the check treats it as it treats exports.
Limits: each call at most ``call_seconds`` (and never past its test's own time limit), an answer
at most ``call_answer_bytes``; the runner enforces the whole submission's call budget. A kernel
that dies, hangs or answers something the reader refuses fails the test that called, with the
reason; later calls fail at once once the channel is gone, and tests that make no call are
untouched.
"""
from __future__ import annotations

import builtins
import io
import signal
import socket
import time
from typing import Any

import numpy as np

from autograde import artifacts
from autograde.run import export, wire

FRAME_SLACK = 1 << 20  # the reply's JSON header and framing, beyond the answer's bytes
REPLY_GRACE_SECONDS = 15  # past a call's limit: the runner interrupts the kernel and replies


class CallError(Exception):
    """A call into the student's kernel that gave no answer (time-out, dead kernel, bad answer)."""


class Channel:
    """One submission's connection to its runner; requests go one at a time."""

    def __init__(self, sock: socket.socket, call_seconds: float, max_answer_bytes: int, seed: int):
        self.sock, self.call_seconds, self.max_answer_bytes, self.seed = sock, call_seconds, max_answer_bytes, seed
        self.sent = 0
        self.broken = ""  # why the channel cannot be used any more
        self.owed = 0  # replies the runner still owes: calls a test's time limit cut short

    def _seconds(self) -> float:
        """This call's limit: the channel's, and no more than what is left of the test's alarm."""
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        return min(self.call_seconds, left) if left else self.call_seconds

    def _reply(self, deadline: float) -> tuple[dict, bytes, bytes]:
        return wire.receive(self.sock, self.max_answer_bytes + FRAME_SLACK, deadline)

    def request(self, what: str, meta: dict, document: bytes = b"", arrays: bytes = b"") -> Any:
        """Send one request; the rebuilt answer. Raises CallError when there is none, or the
        student's exception when their code raised."""
        if self.broken:
            raise CallError(f"{what} could not be called: {self.broken}")
        seconds = self._seconds()
        try:
            while self.owed:  # a reply to a call that an earlier test's time limit interrupted
                self._reply(time.monotonic() + self.call_seconds + REPLY_GRACE_SECONDS)
                self.owed -= 1
            self.sent += 1
            wire.send(self.sock, {**meta, "id": self.sent, "seconds": seconds}, document, arrays)
            self.owed += 1
            reply, answer_document, answer_arrays = self._reply(time.monotonic() + seconds + REPLY_GRACE_SECONDS)
            self.owed -= 1
        except wire.WireError as error:
            self.broken = f"the student's kernel stopped answering ({error})"
            raise CallError(f"{what}: {self.broken}") from None
        if reply.get("id") != self.sent:
            self.broken = "the student's kernel answered out of turn"
            raise CallError(f"{what}: {self.broken}")
        status = reply.get("status")
        if status != "ok":
            message = str(reply.get("message", ""))[:300] or f"status {str(status)[:40]!r}"
            if status in ("dead", "budget"):
                self.broken = message
            raise CallError(f"{what}: {message}")
        try:
            value = artifacts.read_answer(answer_document, answer_arrays)
        except artifacts.ArtifactError as error:
            raise CallError(f"{what} answered something the grader cannot read ({error})") from None
        if isinstance(value, artifacts.Raised):
            raise _exception(value, what)
        from autograde.check import rebuild

        rebuilt, _ = rebuild.rebuild(value, self.seed, self)
        return rebuilt

    def call(self, remote: artifacts.Remote, name: str, args: tuple, kwargs: dict) -> Any:
        encoder = _ArgumentWriter(self.seed)
        document = {"op": "call", "handle": remote.handle,
                    "args": [encoder.encode(item) for item in args],
                    "kwargs": [[str(key), encoder.encode(item)] for key, item in kwargs.items()]}
        return self.request(f"{name}(...)", {}, *encoder.finish(document))

    def getattr(self, remote: artifacts.Remote, owner: str, name: str) -> Any:
        encoder = _ArgumentWriter(self.seed)
        return self.request(f"{owner}.{name}", {}, *encoder.finish({"op": "getattr", "handle": remote.handle,
                                                                     "name": name}))


def _exception(raised: artifacts.Raised, what: str) -> Exception:
    """The student's exception again: the same builtin type where it was one (a test may expect
    a ValueError), else a RuntimeError naming the type."""
    kind = getattr(builtins, raised.type_name, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind.__module__ == "builtins":
        try:
            return kind(raised.message)
        except Exception:
            pass
    return RuntimeError(f"{what} raised {raised.type_name}: {raised.message}")


class _ArgumentWriter(export._Writer):
    """Encodes the check's arguments as exports are written, with two differences: a network is
    sent as its chain alone (no challenge answers), and a stand-in as its handle. Anything that is
    not data is refused: the check's own objects never cross."""

    def encode(self, value: Any, depth: int = 0) -> Any:
        remote = _remote_of(value)
        if remote is not None:
            return {"ref": remote.handle}
        encoded = super().encode(value, depth)
        if isinstance(encoded, dict) and ("remote" in encoded or "unsupported" in encoded):
            raise TypeError(f"a {type(value).__name__} cannot be passed to the student's code "
                            "(expected data, tensors, networks or verify results)")
        return encoded

    def remote(self, value: Any) -> dict:
        return {"unsupported": type(value).__name__}

    def network(self, net: Any) -> dict:
        from verifier.network import parse

        return self.chain(parse(net))

    def finish(self, document: dict) -> tuple[bytes, bytes]:
        import json

        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays)
        return json.dumps(document).encode(), buffer.getvalue()


def _remote_of(value: Any) -> artifacts.Remote | None:
    try:
        return object.__getattribute__(value, "_autograde_remote")
    except AttributeError:
        return None


class RemoteObject:
    """Stands for an object in the student's kernel: calling it, or reading an attribute, is a
    call; nothing else is supported."""

    __slots__ = ("_autograde_remote", "_autograde_channel")

    def __init__(self, remote: artifacts.Remote, channel: Channel):
        object.__setattr__(self, "_autograde_remote", remote)
        object.__setattr__(self, "_autograde_channel", channel)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        remote = object.__getattribute__(self, "_autograde_remote")
        if not remote.callable:
            raise TypeError(f"'{remote.type_name}' object is not callable")
        return object.__getattribute__(self, "_autograde_channel").call(remote, remote.name, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        remote = object.__getattribute__(self, "_autograde_remote")
        if name.startswith("__"):
            raise AttributeError(name)
        return object.__getattribute__(self, "_autograde_channel").getattr(remote, remote.name, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("an object in the student's kernel cannot be changed from a test")

    def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
        remote = object.__getattribute__(self, "_autograde_remote")
        raise TypeError(f"a {remote.type_name} from the student's kernel supports calls and attributes only")

    __len__ = __iter__ = __getitem__ = __contains__ = __float__ = __int__ = __index__ = _unsupported

    def __repr__(self) -> str:
        remote = object.__getattribute__(self, "_autograde_remote")
        return f"<{remote.type_name} {remote.name} in the student's kernel>"
