"""The sidecar's HTTP port in a process of its own, so a request never takes the scoring loop's GIL.

The sidecar binds the port (`CONTINUUM_SERVING_HOST`/`_PORT`) and starts `python -m ml.serving.port` with
the listening socket and one end of a channel (a Unix socket pair). Over the channel the sidecar sends
every serving state it swaps in (each model's booster as XGBoost's own UBJSON bytes, never a pickle, with
its version, threshold and fast path: the very models the stream scores with), and answers the port
process's asks for a snapshot of its status and metrics. The port process answers `POST /predict` with
its copy of the state and `/healthz` and `/metrics` with a snapshot at most SNAPSHOT_MAX_AGE_S old: under
a flood of probes the sidecar builds at most 1/SNAPSHOT_MAX_AGE_S snapshots a second.

The port process gets the sidecar's environment without its credentials (`credential`): it needs only the
contract, the serving settings and the bearer token. It exits when the channel closes, and the kernel
kills it if the sidecar dies first (`ml.runtime.die_with_parent`), so it never outlives its sidecar (stopped or killed).
If it dies while the sidecar serves, the sidecar starts another on the same listening socket (the
connections that arrive meanwhile wait in the socket's backlog) and logs why.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Callable

import orjson

from ml.serving.model import ServingModel
from ml.serving.routing import ServingState

log = logging.getLogger(__name__)
SNAPSHOT_MAX_AGE_S = 0.1
SNAPSHOT_WAIT_S = 2.0  # an ask the sidecar does not answer in time gets the last snapshot
RESTART_S = 1.0
BIND_WAIT_S = 10.0
FDS_VAR = "CONTINUUM_SERVING_PORT_FDS"  # set by the sidecar for the port process: "<listener>,<channel>"
PARENT_VAR = "CONTINUUM_SERVING_PORT_PARENT"  # and its own pid
_LENGTH = struct.Struct("!I")


def credential(name: str) -> bool:
    """Whether an environment variable holds a credential the port process has no use for: the process
    that parses requests from the network holds no registry, lake or database secret, only its token."""
    upper = name.upper()
    return upper != "CONTINUUM_SERVING_TOKEN" and any(
        word in upper for word in ("PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY", "CREDENTIAL", "USERNAME"))


class ChannelClosed(EOFError):
    """The other process closed the channel (it stopped or died)."""


def send(sock: socket.socket, header: dict, blobs: list[bytes] = ()) -> None:
    """One message: a JSON header naming how many binary blobs follow, then the blobs; each framed by its length."""
    frames = [orjson.dumps({**header, "blobs": len(blobs)}), *blobs]
    sock.sendall(b"".join(_LENGTH.pack(len(f)) + bytes(f) for f in frames))


def receive(sock: socket.socket) -> tuple[dict, list[bytes]]:
    header = orjson.loads(_exactly(sock, _LENGTH.unpack(_exactly(sock, _LENGTH.size))[0]))
    return header, [_exactly(sock, _LENGTH.unpack(_exactly(sock, _LENGTH.size))[0]) for _ in range(header["blobs"])]


def _exactly(sock: socket.socket, n: int) -> bytes:
    parts, left = [], n
    while left:
        part = sock.recv(min(left, 1 << 20))
        if not part:
            raise ChannelClosed("the channel closed")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def state_message(state: ServingState) -> tuple[dict, list[bytes]]:
    """A serving state as a header and one UBJSON booster per model it holds."""
    models: dict[str, ServingModel] = {m.version: m for m in [state.champion, *state.models]}
    if state.shadow is not None:
        models.setdefault(state.shadow.version, state.shadow)
    order = list(models.values())
    header = {"type": "state", "champion": state.champion.version,
              "split": [[cum, m.version] for cum, m in state.split],
              "shadow": state.shadow.version if state.shadow is not None else None,
              "models": [{"name": m.name, "version": m.version, "threshold": m.threshold, "as_codes": m.as_codes}
                         for m in order]}
    return header, [bytes(m.booster.save_raw("ubj")) for m in order]


def state_from_message(header: dict, blobs: list[bytes]) -> ServingState:
    """The serving state a `state_message` describes, its boosters loaded from their bytes."""
    import xgboost as xgb

    models = {}
    for spec, blob in zip(header["models"], blobs):
        booster = xgb.Booster()
        booster.load_model(bytearray(blob))
        booster.set_param({"nthread": 1})
        models[spec["version"]] = ServingModel(spec["name"], spec["version"], booster, spec["threshold"],
                                               spec["as_codes"])
    return ServingState(models[header["champion"]], tuple((cum, models[v]) for cum, v in header["split"]),
                        models[header["shadow"]] if header["shadow"] is not None else None)


def listen(host: str, port: int, wait_s: float = BIND_WAIT_S) -> socket.socket:
    """The sidecar's listening socket. A port still held by a process on its way out (a predecessor's
    port process killed on busy cores takes a moment to let go of it) is tried again for `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return socket.create_server((host, port), backlog=128)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise OSError(exc.errno, f"cannot listen on {host}:{port} ({exc.strerror}): another process holds "
                                         "it; stop it or set CONTINUUM_SERVING_PORT to a free port") from None
            time.sleep(0.2)


class PortProcess:
    """The sidecar's side: owns the listening socket, runs the port process and feeds it. `state` is the
    serving state now (None before a champion), `status` what /healthz shows, `metrics` what /metrics shows."""

    def __init__(self, host: str, port: int, state: Callable[[], ServingState | None],
                 status: Callable[[], dict], metrics: Callable[[], bytes]) -> None:
        self.state, self.status, self.metrics = state, status, metrics
        self.listener = listen(host, port)
        self.port = self.listener.getsockname()[1]
        self.proc: subprocess.Popen | None = None
        self._channel: socket.socket | None = None
        self._sending = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="http-port", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def publish(self, state: ServingState) -> None:
        """Hand a new serving state to the port process (from the keeper, at each swap)."""
        channel = self._channel
        if channel is None:  # not started, or between two port processes: the next one gets it at its start
            return
        try:
            header, blobs = state_message(state)
            with self._sending:
                send(channel, header, blobs)
        except OSError as exc:  # the port process is gone; its successor is sent the state when it starts
            log.warning("could not hand v%s to the HTTP port process: %s", state.champion.version, exc)
        except Exception:  # never the keeper's failure: the stream serves the new state whatever the port has
            log.exception("could not hand v%s to the HTTP port process", state.champion.version)

    def stop(self) -> None:
        self._stop.set()
        channel, self._channel = self._channel, None
        if channel is not None:  # the port process sees the channel close and exits
            try:
                channel.shutdown(socket.SHUT_RDWR)  # now, even while this side's reader waits on it
            except OSError:
                pass
            channel.close()
        if self._thread.is_alive():
            self._thread.join(25)  # it waits for the port process to stop (`_run`)
        self.listener.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            mine, theirs = socket.socketpair()
            try:
                self.proc = self._spawn(theirs)
            finally:
                theirs.close()
            self._channel = mine
            try:
                state = self.state()
                if state is not None:
                    self.publish(state)
                self._answer(mine)
            except (ChannelClosed, OSError):
                pass
            finally:
                self._channel = None
                mine.close()
            if self._stop.is_set():  # the port process ends with this thread (die_with_parent): let it finish first
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    log.warning("the HTTP port process %d did not stop in 10 s; killing it", self.proc.pid)
                    self.proc.kill()
                    self.proc.wait(10)
                return
            code = self.proc.wait()
            log.error("the HTTP port process %d exited with %s; starting another in %g s (the stream is not "
                      "affected)", self.proc.pid, code, RESTART_S)
            self._stop.wait(RESTART_S)

    def _spawn(self, channel: socket.socket) -> subprocess.Popen:
        fds = (self.listener.fileno(), channel.fileno())
        env = {**{k: v for k, v in os.environ.items() if not credential(k)}, FDS_VAR: ",".join(map(str, fds)),
               PARENT_VAR: str(os.getpid())}
        level = logging.getLevelName(logging.getLogger("ml.serving").getEffectiveLevel())
        proc = subprocess.Popen([sys.executable, "-m", "ml.serving.port", level], pass_fds=fds, env=env)
        log.info("HTTP port process %d serves http://%s:%d", proc.pid, *self.listener.getsockname()[:2])
        return proc

    def _answer(self, channel: socket.socket) -> None:
        """Answer the port process's asks for a snapshot until the channel closes."""
        while not self._stop.is_set():
            header, _ = receive(channel)
            if header.get("type") != "ask":
                continue
            try:
                body, metrics = orjson.dumps(self.status()), self.metrics()
            except Exception:  # a snapshot that fails must not end the port: it keeps its last one
                log.exception("could not take a status snapshot for the HTTP port")
                continue
            with self._sending:
                send(channel, {"type": "snapshot"}, [body, metrics])


class PortSide:
    """The port process's side of the channel: the serving state it scores with and the sidecar's last
    status and metrics snapshot, asked for when a probe finds it older than SNAPSHOT_MAX_AGE_S."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        self.state: ServingState | None = None
        self._status: bytes = orjson.dumps({"ready": False, "reason": "the sidecar has not answered yet"})
        self._metrics = b""
        self._taken = float("-inf")  # monotonic time of the last snapshot
        self._asked = False
        self._changed = threading.Condition()

    def snapshot(self) -> tuple[dict, bytes]:
        """(status, metrics text), at most SNAPSHOT_MAX_AGE_S old unless the sidecar is slow to answer."""
        with self._changed:
            asked_at = time.monotonic()
            if asked_at - self._taken > SNAPSHOT_MAX_AGE_S:
                if not self._asked:
                    self._asked = True
                    try:
                        send(self.channel, {"type": "ask"})
                    except OSError:
                        self._asked = False
                if not self._changed.wait_for(lambda: self._taken >= asked_at or not self._asked, SNAPSHOT_WAIT_S):
                    self._asked = False  # unanswered: the next probe asks again
            return orjson.loads(self._status), self._metrics

    def read(self) -> None:
        """Take the sidecar's messages until the channel closes (ChannelClosed)."""
        while True:
            header, blobs = receive(self.channel)
            if header["type"] == "state":
                self.state = state_from_message(header, blobs)
                log.info("HTTP port now scores with v%s", self.state.champion.version)
            elif header["type"] == "snapshot":
                with self._changed:
                    self._status, self._metrics = blobs
                    self._taken, self._asked = time.monotonic(), False
                    self._changed.notify_all()


def main() -> int:
    """The port process: serve the inherited listening socket until the sidecar closes the channel."""
    from ml.runtime import die_with_parent

    die_with_parent(int(os.environ.pop(PARENT_VAR)))
    logging.basicConfig(level=sys.argv[1] if len(sys.argv) > 1 else "INFO",
                        format="%(asctime)s %(levelname)s %(name)s[port]: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C: the sidecar drains, then closes the channel
    importlib.import_module("xgboost")  # loaded now, at start-up, not with the first model

    from ml.contract import load_contract
    from ml.runtime import PORT_NICE
    from ml.serving.api import ServingApi
    from ml.serving.http_server import HttpLimits
    from ml.settings import load_settings

    listener_fd, channel_fd = (int(fd) for fd in os.environ.pop(FDS_VAR).split(","))
    settings = load_settings()
    side = PortSide(socket.socket(fileno=channel_fd))
    api = ServingApi(socket.socket(fileno=listener_fd), load_contract(settings.contract), lambda: side.state,
                     lambda: side.snapshot()[0], lambda: side.snapshot()[1],
                     limits=HttpLimits.from_settings(settings.serving))
    try:  # started at the sidecar's priority (a sidecar is ready only once its port answers), then it yields
        os.nice(PORT_NICE)
    except OSError as exc:  # a sandbox that forbids it: the port serves at the sidecar's priority
        log.warning("HTTP port priority unchanged (%s)", exc)
    api.start()
    try:
        side.read()
    except ChannelClosed:
        pass
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
