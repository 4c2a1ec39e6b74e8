"""Reading worker.toml: parse with ``tomllib`` and remember the line of every key, for error messages.

``tomllib`` gives no positions, so after it has accepted a document :func:`key_lines` scans the same text once
more, lightly (the text is known to be valid TOML), and maps each dotted key path to the line it is written on.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config.problems import Problem, ProblemList

KeyPath = tuple[str, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SYNTAX_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_SYNTAX_END = re.compile(r"\s*\(at end of document\)$")


@dataclass
class TomlDocument:
    """A parsed worker.toml: its data, the line of each key, and the name used in messages."""

    path: Path
    display_name: str
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of ``key_path``, or of its nearest written ancestor (a missing key points at its table)."""
        for end in range(len(key_path), 0, -1):
            line = self.lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return None


def read_toml(path: Path, display_name: str | None = None) -> TomlDocument:
    """Parse the TOML file at ``path``.

    Raises:
        ProblemList: the file cannot be read, is not UTF-8, or is not valid TOML (one problem, with its line).
    """
    name = display_name or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProblemList([Problem(name, None, "", "file not found; create one with: runner init")]) from None
    except IsADirectoryError:
        raise ProblemList([Problem(name, None, "", "is a directory, not a worker.toml file")]) from None
    except OSError as exc:
        raise ProblemList([Problem(name, None, "", f"cannot be read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProblemList([Problem(name, line, "", "is not valid UTF-8; save the file as UTF-8")]) from None
    return parse_toml_text(text, path, name)


def parse_toml_text(text: str, path: Path, display_name: str) -> TomlDocument:
    """Parse ``text`` (the content of ``path``); see :func:`read_toml`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        line: int | None = None
        match = _SYNTAX_POSITION.search(message)
        if match:
            line = int(match.group(1))
            column = int(match.group(2))
            plain = f"{message[: match.start()]} (column {column})"
            message = _syntax_hint(text, message, line, column) or plain
        else:
            end = _SYNTAX_END.search(message)
            if end:
                line = text.count("\n") + 1
                message = f"{message[: end.start()]} (at end of file)"
        message = message[:1].lower() + message[1:]
        # tomllib names tables as Python tuples; show them as TOML headers
        message = re.sub(
            r"\(((?:'[^']*'(?:, )?)+)\)",
            lambda m: "[" + ".".join(re.findall(r"'([^']*)'", m.group(1))) + "]",
            message,
        )
        if message.startswith("illegal character '\\n'"):
            message = "a string is not closed before the end of the line" + message[len("illegal character '\\n'") :]
        raise ProblemList([Problem(display_name, line, "", f"invalid TOML: {message}")]) from None
    return TomlDocument(path=path, display_name=display_name, data=data, lines=key_lines(text))


_TOKEN = re.compile(r"[^\s,\]}#]+")
_HEADER = re.compile(r"^\s*\[\[?(.*?)\]\]?\s*(?:#.*)?$")


def _syntax_hint(text: str, message: str, line: int, column: int) -> str | None:
    """tomllib's message, saying what it does not: which key is set twice, how booleans and strings are written."""
    lines = text.splitlines()
    current = lines[line - 1] if line <= len(lines) else ""
    if message.startswith("Cannot overwrite a value"):
        key = _Scanner(current).read_key()
        table: KeyPath = ()
        for previous in reversed(lines[: line - 1]):
            header = _HEADER.match(previous)
            if header:
                table = _Scanner(header.group(1)).read_key()
                break
        if not key:
            return None
        path = table + key
        first = key_lines("\n".join(lines[: line - 1])).get(path)
        where = f" (first on line {first})" if first else ""
        return f"Key {'.'.join(path)} is set twice{where}; keep one"
    if message.startswith("Invalid value"):
        token = _TOKEN.match(current, column - 1)
        word = token.group(0) if token else ""
        if word.lower() in ("true", "false"):
            return f"Invalid value {word} (column {column}); TOML booleans are lower case: {word.lower()}"
        if word.lower() in ("yes", "no", "on", "off"):
            return f"Invalid value {word} (column {column}); TOML booleans are true or false"
        if word and not word[0].isdigit() and word[0] not in "+-":
            return f'Invalid value {word} (column {column}); strings need quotes: "{word}"'
    return None


class _Scanner:
    """A forgiving walk over valid TOML that records ``key path -> line``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.array_counts: dict[KeyPath, int] = {}

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def skip_space(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.advance()
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def read_string(self) -> str:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            end = self.text.find(quote * 3, self.pos + 3)
            end = len(self.text) if end < 0 else end
            # a multi-line string may end with up to two extra quotes
            while self.text[end + 3 : end + 4] == quote:
                end += 1
            value = self.text[self.pos + 3 : end]
            self.advance(end + 3 - self.pos)
            return value
        start = self.pos + 1
        i = start
        while i < len(self.text) and self.text[i] != quote:
            i += 2 if quote == '"' and self.text[i] == "\\" else 1
        value = self.text[start:i]
        if quote == '"':
            value = value.encode("utf-8").decode("unicode_escape") if "\\" in value else value
        self.advance(i + 1 - self.pos)
        return value

    def read_key(self) -> KeyPath:
        parts: list[str] = []
        while True:
            self.skip_space(newlines=False)
            if self.peek() in ('"', "'"):
                parts.append(self.read_string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if not match:
                    break
                parts.append(match.group(0))
                self.advance(match.end() - self.pos)
            self.skip_space(newlines=False)
            if self.peek() != ".":
                break
            self.advance()
        return tuple(parts)

    def read_value(self, path: KeyPath) -> None:
        self.skip_space(newlines=False)
        ch = self.peek()
        if ch in ('"', "'"):
            self.read_string()
        elif ch == "[":
            self.advance()
            while True:
                self.skip_space(newlines=True)
                if self.peek() in ("]", ""):
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                self.read_value(path)
        elif ch == "{":
            self.advance()
            while True:
                self.skip_space(newlines=True)
                if self.peek() in ("}", ""):
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                line = self.line
                key = self.read_key()
                self._record(path, key, line)
                self.skip_space(newlines=False)
                self.advance()  # "="
                self.read_value(path + key)
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.advance()

    def _record(self, base: KeyPath, key: KeyPath, line: int) -> None:
        # a dotted key also defines each of its parents here
        for end in range(1, len(key) + 1):
            self.lines.setdefault(base + key[:end], line)

    def run(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        while True:
            self.skip_space(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            line = self.line
            if self.peek() == "[":
                is_array = self.peek(2) == "[["
                self.advance(2 if is_array else 1)
                key = self.read_key()
                self.advance(2 if is_array else 1)
                if is_array:
                    index = self.array_counts.get(key, 0)
                    self.array_counts[key] = index + 1
                    self.lines.setdefault(key, line)
                    key = key + (str(index),)
                self.lines.setdefault(key, line)
                table = key
                continue
            key = self.read_key()
            if not key:  # cannot happen in valid TOML; never loop forever
                self.advance()
                continue
            self._record(table, key, line)
            self.skip_space(newlines=False)
            self.advance()  # "="
            self.read_value(table + key)


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path written in ``text`` (valid TOML) to its 1-based line number.

    Tables and dotted keys record each level, so ``("functions", "send_email")`` maps to the line of
    ``[functions.send_email]`` and ``("functions", "send_email", "timeout")`` to its ``timeout = …`` line.
    """
    return _Scanner(text).run()
