"""``runner embedded status|stop [DIR]``: see and end the embedded server of a data directory."""

from __future__ import annotations

import click

from runner import embedded as server
from runner.cli.exits import EXIT_FAILURE, handled

EMBEDDED_SCHEME = "embedded://"


def _data_dir(value: str) -> server.DataDir:
    # accept the URL from worker.toml as well as the bare directory
    if value.startswith(EMBEDDED_SCHEME):
        value = value[len(EMBEDDED_SCHEME) :] or ".runner"
    return server.DataDir.of(value)


def format_duration(seconds: int) -> str:
    """``3725`` → ``"1h 2m 5s"``; days replace seconds once a server has run that long."""
    days, rest = divmod(max(seconds, 0), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")] + ([] if days else [(secs, "s")])
    shown = [f"{value}{unit}" for value, unit in parts if value]
    return " ".join(shown) or "0s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('s') else 's'}"


def format_status(status: server.ServerStatus) -> str:
    """The lines ``runner embedded status`` prints for a running server."""
    pids = ", ".join(str(pid) for pid in status.clients)
    holders = _plural(len(status.clients), "process")
    if status.clients:
        holders += f" ({'pid' if len(status.clients) == 1 else 'pids'} {pids})"
    fsync = "every second" if server.APPENDFSYNC == "everysec" else server.APPENDFSYNC
    return "\n".join(
        [
            f"Embedded server in {status.data_dir}",
            f"  pid:      {status.valkey_pid} (supervisor {status.supervisor_pid})",
            f"  socket:   {status.socket}",
            f"  uptime:   {format_duration(status.uptime_s)}",
            f"  clients:  {holders}, {_plural(status.connections, 'connection')}",
            f"  memory:   {status.used_memory_human}",
            f"  keys:     {status.keys}",
            f"  data:     {server.DataDir.of(status.data_dir).aof_dir} (AOF, fsync {fsync})",
        ]
    )


@click.group("embedded")
def embedded() -> None:
    """See and stop the embedded server behind embedded:// URLs."""


verbose_option = click.option("-v", "--verbose", is_flag=True, help="Tracebacks of unexpected errors.")


@embedded.command("status")
@click.argument("data_dir", metavar="[DIR]", default=".runner")
@verbose_option
def status_command(data_dir: str, verbose: bool) -> None:
    """Show pid, socket, uptime, clients, memory and keys of DIR."""
    paths = _data_dir(data_dir)
    with handled(EXIT_FAILURE, verbose):
        status = server.status(paths.root)
    if status is None:
        click.echo(f"No embedded server is running in {paths.root}.")
        raise SystemExit(EXIT_FAILURE)
    click.echo(format_status(status))


@embedded.command("stop")
@click.argument("data_dir", metavar="[DIR]", default=".runner")
@verbose_option
def stop_command(data_dir: str, verbose: bool) -> None:
    """Stop the embedded server of DIR cleanly (its data is kept)."""
    paths = _data_dir(data_dir)
    with handled(EXIT_FAILURE, verbose):
        clients = server.live_clients(paths, clean=False)
        pid = server.stop(paths.root)
    if pid is None:
        click.echo(f"No embedded server is running in {paths.root}.")
        return
    note = f"; {_plural(len(clients), 'process')} still used it" if clients else ""
    click.echo(f"Stopped the embedded server in {paths.root} (pid {pid}){note}.")
