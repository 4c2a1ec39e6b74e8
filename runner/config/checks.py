"""Deep validation: what the schema cannot see.

Names refer to things that exist, every import path resolves to the right kind of object, hooks take ``ctx``,
the serializer round-trips a sample job and cron schedules parse (and agree with croniter). Every check adds
:class:`Problem` values, so ``runner validate`` reports all of them at once.
"""

from __future__ import annotations

import inspect
import sys
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.config.loading import LoadedConfig
from runner.config.models import DEFAULT_QUEUE, WorkerSettings
from runner.config.problems import Problem, suggest
from runner.config.process_check import (
    PROCESS_HOOKS,
    crossing_problem,
    fresh_import_problems,
    signature_crossing_problem,
)
from runner.config.sources import Origin
from runner.config.types import embedded_data_dir
from runner.engine.functions import Function, is_async_callable
from runner.engine.keys import ARQ_LAYOUT
from runner.engine.loops import UVLOOP_INSTALL, uvloop_factory
from runner.engine.serializers import MIN_KEY_BYTES
from runner.engine.utils import import_string
from runner.errors import ConfigError, EmbeddedServerError

KeyPath = tuple[str, ...]
SAMPLE_JOB: dict[str, Any] = {
    "t": 1,
    "f": "send_email",
    "a": [1, "two", None],
    "k": {"x": 3.5},
    "et": 1_700_000_000_000,
}


def add_import_dir(directory: Path) -> None:
    """Make modules beside worker.toml importable, ahead of anything else of the same name."""
    entry = str(directory)
    if entry not in sys.path:
        sys.path.insert(0, entry)


class _Checker:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.settings: WorkerSettings = loaded.settings
        self.problems: list[Problem] = []
        # the file (or module) that failed to import -> (its problem's index, the other paths that import it)
        self.broken_modules: dict[str, tuple[int, list[str]]] = {}
        self.process_paths: list[tuple[KeyPath, str]] = []  # imported again by job subprocesses
        self.serializer_pair: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None

    def add(self, path: KeyPath, message: str) -> None:
        origin = self.loaded.origin(path)
        if origin.source == "default":  # nothing was written there: point at the file
            document = self.loaded.document
            origin = Origin(document.display_name, document.line_of(path))
        self.problems.append(Problem(origin.source, origin.line, ".".join(path), message, origin.variable))

    # -- names ------------------------------------------------------------------------------------------------

    def names(self) -> None:
        self._case_clashes()
        self._queue_lists()
        self._cron_targets()
        self._empty_queues()
        self._shared_health_key()
        self._shards_on_a_cluster()
        self.keep_results()
        self.embedded_dir()

    def _shared_health_key(self) -> None:
        """Each queue's arq health key is its own: two queues writing one key hide each other's death."""
        s = self.settings
        writers: dict[str, list[str]] = {}
        for name in s.queue_names():
            own = s.queues[name].health_check_key if name in s.queues else None
            writers.setdefault(own or s.health_check_key or ARQ_LAYOUT.health_check(name), []).append(name)
        for key, queues in writers.items():
            if len(queues) < 2:
                continue
            setters = [q for q in queues if q in s.queues and s.queues[q].health_check_key is not None]
            path = ("queues", setters[-1], "health_check_key") if setters else ("health_check_key",)
            fix = "set health_check_key per queue instead" if not setters else "give each queue a key of its own"
            self.add(path, f'queues {", ".join(queues)} would all write the health key "{key}"; {fix}')

    def _shards_on_a_cluster(self) -> None:
        """A queue split over shards needs the cluster layout: arq's keeps a queue in one key, which arq reads."""
        s = self.settings
        if s.redis.cluster:
            return
        for queue, shards in s.queue_shards().items():
            own = queue in s.queues and s.queues[queue].shards is not None
            self.add(
                ("queues", queue, "shards") if own else ("shards",),
                f"{shards} shards need [redis] cluster = true: arq's layout keeps a queue in one key, and on one "
                "server the shards would share its one core anyway",
            )

    def keep_results(self) -> None:
        """keep_result = 0 and keep_result_forever = true in one table contradict each other."""
        s = self.settings
        tables: list[tuple[KeyPath, Any]] = [((), s)]
        tables += [(("queues", name), q) for name, q in s.queues.items()]
        tables += [(("functions", name), f) for name, f in s.functions.items()]
        tables += [(("cron", name), c) for name, c in s.cron.items()]
        for path, table in tables:
            if table.keep_result == 0 and table.keep_result_forever is True:
                self.add(
                    (*path, "keep_result_forever"),
                    "keep_result_forever = true keeps every result, but keep_result = 0 beside it keeps none; "
                    "remove one of them",
                )

    def embedded_dir(self) -> None:
        """An embedded:// directory that start could not use (not writable, socket path too long)."""
        from runner import embedded

        directory = embedded_data_dir(self.settings.redis.url, self.loaded.directory)
        if directory is None:
            return
        try:
            embedded.preflight(directory)
        except EmbeddedServerError as exc:
            self.add(("redis", "url"), _sentence(str(exc)))

    def _case_clashes(self) -> None:
        for table in ("functions", "cron", "queues"):
            seen: dict[str, str] = {}
            for name in getattr(self.settings, table):
                if name.lower() in seen:
                    self.add(
                        (table, name),
                        f'name differs from "{seen[name.lower()]}" only by case; '
                        "environment overrides could not tell them apart",
                    )
                seen.setdefault(name.lower(), name)

    def _queue_lists(self) -> None:
        s = self.settings
        for queue_name, queue_config in s.queues.items():
            listed: set[str] = set()
            for name in queue_config.functions or []:
                if name in listed:
                    self.add(("queues", queue_name, "functions"), f'"{name}" is listed twice')
                listed.add(name)
                if name not in s.functions:
                    self.add(("queues", queue_name, "functions"), self._unknown("function", name, s.functions))

    def _cron_targets(self) -> None:
        s = self.settings
        first_queue = s.queue_names()[0]
        for cron_name, entry in s.cron.items():
            if ":" not in entry.function and entry.function not in s.functions:
                self.add(("cron", cron_name, "function"), self._unknown("function", entry.function, s.functions))
            if entry.queue is not None and entry.queue not in s.queues:
                hint = (
                    self._unknown("queue", entry.queue, s.queues)
                    if s.queues
                    else f'unknown queue "{entry.queue}"; no [queues] are declared, '
                    f'so cron jobs run on "{DEFAULT_QUEUE}"'
                )
                self.add(("cron", cron_name, "queue"), hint)
                continue
            cron_queue = entry.queue or first_queue
            if cron_name in served_functions(s, cron_queue):
                self.add(
                    ("cron", cron_name),
                    f'the name is already used by functions.{cron_name} on queue "{cron_queue}"; '
                    "cron jobs and functions share one namespace, rename the cron entry",
                )

    def _empty_queues(self) -> None:
        s = self.settings
        for queue in s.queue_names():
            listed_names = s.queues[queue].functions if queue in s.queues else None
            if listed_names:  # it names only unknown functions, reported already
                continue
            if served_functions(s, queue) or crons_of_queue(s, queue):
                continue
            if s.queues:
                self.add(
                    ("queues", queue),
                    f'queue "{queue}" has no functions and no cron jobs; list functions or point a cron at it',
                )
            else:
                self.add(("functions",), 'nothing to run; add a [functions.NAME] table with path = "module:attr"')

    @staticmethod
    def _unknown(kind: str, name: str, known: Any) -> str:
        near = suggest(name, list(known))
        if near:
            return f'unknown {kind} "{name}"; did you mean `{near}`?'
        if not known:
            return f'unknown {kind} "{name}"; none are declared'
        return f'unknown {kind} "{name}"; declared: {", ".join(sorted(known))}'

    # -- imports ----------------------------------------------------------------------------------------------

    def resolve(self, path: KeyPath, import_path: str) -> Any:
        """The object ``import_path`` names, or None after a problem was added.

        A module that fails to import fails for every path into it, and Python retries the import each time: it is
        reported once, at the first path, with the file and line that failed and the other paths that need it.
        """
        try:
            return import_string(import_path)
        except ConfigError as exc:
            culprit, message = _import_failure(import_path, exc)
            earlier = self.broken_modules.get(culprit)
            if earlier is not None:
                earlier[1].append(".".join(path))
                return None
            self.add(path, message)
            self.broken_modules[culprit] = (len(self.problems) - 1, [])
            return None

    def name_other_users(self) -> None:
        for index, others in self.broken_modules.values():
            if others:
                problem = self.problems[index]
                also = f"; {', '.join(others)} need{'s' if len(others) == 1 else ''} it too"
                self.problems[index] = replace(problem, message=problem.message + also)

    def functions(self) -> None:
        resolved: dict[str, Any] = {}
        for name, entry in self.settings.functions.items():
            obj = self.resolve(("functions", name, "path"), entry.path)
            if obj is not None:
                problem = job_function_problem(entry.path, obj, entry.executor)
                if problem:
                    key = "executor" if entry.executor and not job_function_problem(entry.path, obj) else "path"
                    self.add(("functions", name, key), problem)
                else:
                    resolved[name] = obj
                    if entry.executor == "process":
                        self.process_paths.append((("functions", name, "path"), entry.path))
                        target = obj.coroutine if isinstance(obj, Function) else obj
                        crossing = signature_crossing_problem(entry.path, target)
                        if crossing:
                            self.add(("functions", name, "path"), crossing)
        for name, cron_entry in self.settings.cron.items():
            target = cron_entry.function
            if ":" in target:
                obj = self.resolve(("cron", name, "function"), target)
                problem = None if obj is None else job_function_problem(target, obj)
                if problem:
                    self.add(("cron", name, "function"), problem)
                    continue
            elif target in self.settings.functions:
                target = self.settings.functions[target].path
                obj = resolved.get(cron_entry.function)
            else:
                continue  # an unknown name: reported by the name checks
            missing = None if obj is None else cron_arguments_problem(target, obj)
            if missing:
                self.add(("cron", name, "function"), missing)

    def hooks(self) -> None:
        for hook_name in type(self.settings.hooks).model_fields:
            import_path = getattr(self.settings.hooks, hook_name)
            if import_path is None:
                continue
            obj = self.resolve(("hooks", hook_name), import_path)
            if obj is not None:
                problem = hook_problem(hook_name, import_path, obj)
                if problem:
                    self.add(("hooks", hook_name), problem)
                elif hook_name in PROCESS_HOOKS:
                    self.process_paths.append((("hooks", hook_name), import_path))

    def processes(self) -> None:
        """What job subprocesses import must import in a fresh interpreter too, and arguments must cross."""
        if self.process_paths:
            for path, message in fresh_import_problems(self.process_paths, self.loaded.directory):
                self.add(path, message)
        uses_processes = any(entry.executor == "process" for entry in self.settings.functions.values())
        if uses_processes and self.serializer_pair is not None:
            problem = crossing_problem(*self.serializer_pair, SAMPLE_JOB)
            if problem:
                self.add(("serializer",), problem)

    def serializer(self) -> None:
        spec = self.settings.serializer
        if isinstance(spec, str):
            from runner.engine.serializers import get_serializer

            try:
                dumps, loads = get_serializer(spec)
            except ConfigError as exc:
                self.add(("serializer",), _sentence(str(exc)))
                return
        else:
            dumps = self.resolve(("serializer", "dumps"), spec.dumps)
            loads = self.resolve(("serializer", "loads"), spec.loads)
            for key, obj, import_path in (("dumps", dumps, spec.dumps), ("loads", loads, spec.loads)):
                if obj is not None and not callable(obj):
                    self.add(("serializer", key), f'"{import_path}" is {_kind(obj)}, not a function')
                    return
            if dumps is None or loads is None:
                return
        problem = round_trip_problem(dumps, loads)
        if problem:
            self.add(("serializer",), problem)
        else:
            self.serializer_pair = (dumps, loads)

    def signing_key(self) -> None:
        key = self.settings.signing_key
        if key is None:
            return
        origin = self.loaded.origin(("signing_key",))
        if origin.source == self.loaded.document.display_name:
            self.add(
                ("signing_key",),
                "keep the key out of the file: set RUNNER_SIGNING_KEY in the environment "
                "(or in the .env file beside worker.toml, kept out of version control)",
            )
        elif len(key.get_secret_value().encode()) < MIN_KEY_BYTES:
            self.add(
                ("signing_key",),
                f"must be at least {MIN_KEY_BYTES} bytes long (got {len(key.get_secret_value().encode())}); make one "
                'with: python -c "import secrets; print(secrets.token_hex(32))"',
            )

    def cron(self) -> None:
        if not self.settings.cron:
            return
        # croniter is validation tooling: it is loaded only when there are schedules to check
        from runner.config.cron_check import schedule_problems

        for name, entry in self.settings.cron.items():
            for path, message in schedule_problems(name, entry, self.settings.timezone):
                self.add(path, message)

    def event_loop(self) -> None:
        """event_loop = "uvloop" where uvloop is not installed: runner start could not make its loop."""
        if self.settings.event_loop == "uvloop" and uvloop_factory() is None:
            self.add(
                ("event_loop",),
                f'uvloop is not installed; install it with {UVLOOP_INSTALL}, or set "auto" to use it only where '
                "it is installed",
            )

    def dashboard(self) -> None:
        file_name = self.loaded.document.display_name
        for field, variable in (("password", "RUNNER_DASHBOARD__PASSWORD"), ("token", "RUNNER_DASHBOARD__TOKEN")):
            path = ("dashboard", field)
            if getattr(self.settings.dashboard, field) is not None and self.loaded.origin(path).source == file_name:
                self.add(path, f"a secret does not belong in {file_name}; set {variable} in the environment instead")


def secret_in_file_problems(loaded: LoadedConfig) -> list[Problem]:
    """The dashboard's credentials must come from the environment: a secret in worker.toml ends up in git."""
    checker = _Checker(loaded)
    checker.dashboard()
    return checker.problems


def served_functions(settings: WorkerSettings, queue: str) -> list[str]:
    """The names from [functions] the worker of ``queue`` serves."""
    if not settings.queues:
        return list(settings.functions)
    listed = settings.queues[queue].functions
    if listed is None:
        return list(settings.functions)
    return [name for name in dict.fromkeys(listed) if name in settings.functions]


def crons_of_queue(settings: WorkerSettings, queue: str) -> list[str]:
    """The names from [cron] scheduled by the worker of ``queue`` (the first queue when a cron names none)."""
    first = settings.queue_names()[0]
    return [name for name, entry in settings.cron.items() if (entry.queue or first) == queue]


def _import_failure(import_path: str, exc: ConfigError) -> tuple[str, str]:
    """What failed when ``import_path`` did not import: (the culprit, to report it once; the problem's message).

    A syntax error names its file and line; an exception raised while the module ran names the line it was raised
    at; a missing module or attribute is the module itself.
    """
    module = import_path.partition(":")[0]
    message = _sentence(str(exc))
    cause = exc.__cause__
    if isinstance(cause, SyntaxError) and cause.filename:
        where = f"{_shown_path(cause.filename)}:{cause.lineno}"
        return where, f'module "{module}" has a syntax error at {where}: {cause.msg}'
    if isinstance(cause, Exception) and not isinstance(cause, ModuleNotFoundError) and cause.__traceback__:
        frames = [f for f in traceback.extract_tb(cause.__traceback__) if _is_user_file(f.filename)]
        if frames:
            where = f"{_shown_path(frames[-1].filename)}:{frames[-1].lineno}"
            return where, f"{message} (at {where})"
    return module, message


def _is_user_file(filename: str) -> bool:
    """Not Python's own code (frozen modules, the standard library, installed packages) and not runner's."""
    if filename.startswith("<"):
        return False
    paths = sysconfig.get_paths()
    installed = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    installed.add(str(Path(__file__).resolve().parent.parent))  # runner itself
    resolved = str(Path(filename).resolve())
    return not any(resolved.startswith(prefix.rstrip("/") + "/") for prefix in installed)


def _shown_path(filename: str) -> str:
    """A file as a user would type it: relative to the working directory when it is below it."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


def _sentence(message: str) -> str:
    """An error sentence in the style of the other problems: lower-case start, no final period."""
    message = message.strip().removesuffix(".")
    return message[:1].lower() + message[1:]


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        return "a class"
    if inspect.ismodule(obj):
        return "a module"
    name = type(obj).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def job_function_problem(import_path: str, obj: Any, executor: str | None = None) -> str | None:
    """Why ``obj`` cannot be a job function on ``executor`` (None: the default for its kind), or None when it can."""
    if isinstance(obj, Function):
        obj = obj.coroutine
    if not callable(obj) or inspect.isclass(obj):
        return f'"{import_path}" is {_kind(obj)}, not a function'
    is_async = is_async_callable(obj)
    if executor == "async" and not is_async:
        return (
            f'"{import_path}" is a plain function; executor "async" runs async def only '
            '(leave executor unset to run it in a thread, or use "process")'
        )
    if executor == "thread" and is_async:
        return f'"{import_path}" is an async function; it runs on the event loop or in a process, not in a thread'
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None  # a builtin or C callable: nothing to inspect
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if not positional:
        kind = "async def" if is_async else "def"
        return f'"{import_path}" takes no positional argument; a job receives ctx first: {kind} job(ctx, ...)'
    return None


def cron_arguments_problem(import_path: str, obj: Any) -> str | None:
    """Why a cron job cannot call ``obj``: it is called with ctx alone, so other arguments need defaults."""
    if isinstance(obj, Function):
        obj = obj.coroutine
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if params and params[0].kind in positional:
        params = params[1:]  # ctx
    required = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty and p.kind in (*positional, inspect.Parameter.KEYWORD_ONLY)
    ]
    if not required:
        return None
    return (
        f'"{import_path}" requires {", ".join(required)}, but a cron job calls it with ctx alone, so every run would '
        "fail; give them defaults or schedule a function that takes only ctx"
    )


def hook_problem(hook_name: str, import_path: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be the hook ``hook_name``, or None when it can.

    The worker's hooks run on its event loop and must be ``async def``: a plain ``def`` is refused rather than
    run in a thread, since ``on_job_start`` and ``on_job_end`` run around every job and their order matters. The
    process hooks run in job subprocesses, where either kind is fine.
    """
    if not callable(obj) or inspect.isclass(obj):
        return f'"{import_path}" is {_kind(obj)}, not a function'
    if hook_name not in PROCESS_HOOKS and not is_async_callable(obj):
        return (
            f'"{import_path}" is a plain function; worker hooks run on the event loop and must be async def '
            "(only process_startup and process_shutdown may be def)"
        )
    try:
        inspect.signature(obj).bind({})
    except TypeError:
        kind = "def" if hook_name in PROCESS_HOOKS and not is_async_callable(obj) else "async def"
        return f'"{import_path}" must take exactly one argument, ctx: {kind} {hook_name}(ctx)'
    except ValueError:
        return None
    return None


def round_trip_problem(dumps: Callable[[Any], Any], loads: Callable[[Any], Any]) -> str | None:
    """Why a serializer pair cannot carry a job, or None when a sample job survives dumps then loads."""
    try:
        raw = dumps(dict(SAMPLE_JOB))
    except Exception as exc:
        return f"dumps failed on a sample job: {type(exc).__name__}: {exc}"
    if not isinstance(raw, bytes | bytearray | str):
        return f"dumps must return bytes (got {type(raw).__name__})"
    try:
        back = loads(raw)
    except Exception as exc:
        return f"loads failed on what dumps wrote: {type(exc).__name__}: {exc}"
    if back != SAMPLE_JOB:
        return "loads(dumps(job)) does not give back the job; check that the pair matches"
    return None


def check(loaded: LoadedConfig, *, imports: bool = True) -> list[Problem]:
    """Every problem the schema alone cannot find (import paths are resolved unless ``imports`` is False)."""
    checker = _Checker(loaded)
    checker.names()
    if imports:
        add_import_dir(loaded.directory)
        checker.functions()
        checker.hooks()
        checker.serializer()
        checker.processes()
    elif isinstance(loaded.settings.serializer, str):
        checker.serializer()
    checker.cron()
    checker.event_loop()
    checker.dashboard()
    checker.signing_key()
    checker.name_other_users()
    file_name = loaded.document.display_name
    return sorted(checker.problems, key=lambda p: (p.source != file_name, p.line or 0))
