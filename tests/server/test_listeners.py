"""`pyrivet.server.listeners`: where the listening sockets come from, in process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from pyrivet.server.listeners import (
    INHERITED_FDS_ENV,
    INHERITED_PID_ENV,
    ListenError,
    adopt_fd,
    bind_tcp,
    describe,
    inherit_env,
    listening_sockets,
    systemd_fds,
)


def test_bind_tcp_listens_inheritably_and_reports_a_busy_port() -> None:
    with bind_tcp("127.0.0.1", 0) as sock:
        assert sock.get_inheritable()
        port = sock.getsockname()[1]
        assert describe(sock) == f"http://127.0.0.1:{port}"
        with pytest.raises(ListenError, match=f"could not listen on 127.0.0.1:{port}"):
            bind_tcp("127.0.0.1", port)


def test_adopt_fd_takes_a_listening_socket_and_leaves_others_open(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        adopted = adopt_fd(listener.fileno())
        assert adopted.fileno() == listener.fileno() and adopted.get_inheritable()
        adopted.detach()
    with socket.socket() as unbound:
        with pytest.raises(ListenError, match="not listening"):
            adopt_fd(unbound.fileno())
        assert unbound.fileno() >= 0  # still the caller's, still open
        os.fstat(unbound.fileno())
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ListenError, match=f"file descriptor {read_end} is not a socket"):
            adopt_fd(read_end)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_adopt_fd_takes_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen()
        adopted = adopt_fd(listener.fileno())
        assert describe(adopted) == f"unix:{path}"
        adopted.detach()


def test_systemd_fds_follow_sd_listen_fds() -> None:
    mine = str(os.getpid())
    env = {"LISTEN_FDS": "2", "LISTEN_PID": mine, "LISTEN_FDNAMES": "a:b", "KEEP": "1"}
    assert systemd_fds(env) == [3, 4]
    assert env == {"KEEP": "1"}  # removed, as sd_listen_fds(1) does
    assert systemd_fds({"LISTEN_FDS": "1", "LISTEN_PID": "1"}) == []  # someone else's
    assert systemd_fds({}) == []
    with pytest.raises(ListenError, match="LISTEN_PID='me' is not a number"):
        systemd_fds({"LISTEN_FDS": "1", "LISTEN_PID": "me"})


def test_inherited_fds_win_over_fd_and_are_only_for_this_pid() -> None:
    with socket.create_server(("127.0.0.1", 0)) as a, socket.create_server(("127.0.0.1", 0)) as b:
        env = inherit_env([a], {"OTHER": "x"})
        assert env[INHERITED_PID_ENV] == str(os.getpid())
        chosen = listening_sockets(host="127.0.0.1", port=0, fd=b.fileno(), environ=env)
        assert [s.fileno() for s in chosen] == [a.fileno()]
        assert env == {"OTHER": "x"}
        for sock in chosen:
            sock.detach()
        stale = {INHERITED_FDS_ENV: str(a.fileno()), INHERITED_PID_ENV: "1"}
        chosen = listening_sockets(host="127.0.0.1", port=0, fd=b.fileno(), environ=stale)
        assert [s.fileno() for s in chosen] == [b.fileno()]
        for sock in chosen:
            sock.detach()
