"""Static checks of the Dockerfile against the project it packages.

Why this test exists: no Docker engine runs on the development or CI machines, so nothing ever
builds or starts the image before deployment. A renamed CLI subcommand or option, a COPY of a file
that moved, an install step that drifted from the README, a healthcheck on the wrong port or an
image that runs as root would otherwise only surface at deploy time. These tests parse the
Dockerfile's instructions and compare them with the project's own sources of truth: the argparse
CLI (run as a subprocess), ``pyproject.toml``, ``README.md``, ``.dockerignore`` and the file tree.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PYPROJECT = REPO_ROOT / "pyproject.toml"
README = REPO_ROOT / "README.md"
CLI_MODULE = "service.cli"


# --------------------------------------------------------------------------------------------
# Dockerfile parser
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-cased, e.g. "RUN"
    value: str  # everything after the keyword, line continuations joined
    lineno: int

    def split_flags(self) -> tuple[dict[str, str], str]:
        """Split leading ``--name[=value]`` flags, e.g. ``COPY --from=builder``."""
        flags: dict[str, str] = {}
        rest = self.value.strip()
        while match := re.match(r"--([\w-]+)(?:=(\S*))?\s*", rest):
            flags[match.group(1)] = match.group(2) or ""
            rest = rest[match.end() :]
        return flags, rest


@dataclass
class Stage:
    index: int
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    stages: list[Stage]
    comments: list[str]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage_ref(self, ref: str) -> Stage | None:
        """Resolve ``COPY --from=<ref>`` to an earlier stage (by name or index), else None."""
        for stage in self.stages:
            if stage.name is not None and stage.name.lower() == ref.lower():
                return stage
            if ref.isdigit() and stage.index == int(ref):
                return stage
        return None


def parse_dockerfile(text: str) -> Dockerfile:
    """Parse instructions: comments, parser directives, escape-char line continuations."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:  # parser directives must come first
        directive = re.fullmatch(r"#\s*(\w+)\s*=\s*(\S+)\s*", line)
        if directive is None:
            break
        if directive.group(1).lower() == "escape":
            escape = directive.group(2)

    logical: list[tuple[int, str]] = []
    comments: list[str] = []
    buffer = ""
    start = 0
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped[1:].strip())
            continue
        if not stripped:
            continue  # blank lines (also inside a continuation) are ignored
        if not buffer:
            start = lineno
        if line.rstrip().endswith(escape):
            buffer += line.rstrip()[: -len(escape)]
            continue
        logical.append((start, buffer + line))
        buffer = ""
    if buffer.strip():
        logical.append((start, buffer))

    stages: list[Stage] = []
    for lineno, source in logical:
        keyword, _, value = source.strip().partition(" ")
        instruction = Instruction(keyword.upper(), value.strip(), lineno)
        if instruction.keyword == "FROM":
            _, rest = instruction.split_flags()
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), words[0], name))
        elif stages:  # ARGs before the first FROM are not part of any stage
            stages[-1].instructions.append(instruction)
    return Dockerfile(stages, comments)


def exec_form(value: str) -> list[str] | None:
    """Return the argv of a JSON-array (exec form) value, or None for shell form."""
    if not value.lstrip().startswith("["):
        return None
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        return None  # Docker falls back to shell form for invalid JSON
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return None


_SHELL_OPERATORS = frozenset({"&&", "||", ";", ";;", "|", "&", "(", ")", "{", "}"})
_WRAPPERS = frozenset({"exec", "env", "command", "nohup", "time"})


def _strip_prefix(argv: list[str]) -> list[str]:
    """Drop leading ``VAR=value`` assignments and wrappers such as ``exec``."""
    index = 0
    while index < len(argv) and (
        argv[index] in _WRAPPERS or re.match(r"[A-Za-z_][A-Za-z0-9_]*=", argv[index])
    ):
        index += 1
    return argv[index:]


def shell_commands(script: str) -> list[list[str]]:
    """Split a shell script into simple commands, descending into ``sh -c '...'``."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in _SHELL_OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return expand_commands([c for c in commands if c])


def expand_commands(commands: list[list[str]]) -> list[list[str]]:
    expanded: list[list[str]] = []
    for argv in commands:
        argv = _strip_prefix(argv)
        if not argv:
            continue
        name = PurePosixPath(argv[0]).name
        if name in {"sh", "bash", "dash", "ash"} and "-c" in argv[:-1]:
            expanded.extend(shell_commands(argv[argv.index("-c") + 1]))
        else:
            expanded.append(argv)
    return expanded


def commands_of(value: str) -> list[list[str]]:
    """Commands run by a RUN/CMD/ENTRYPOINT value; shell form runs via ``/bin/sh -c``."""
    argv = exec_form(value)
    return expand_commands([argv]) if argv is not None else shell_commands(value)


def container_commands(stage: Stage) -> list[list[str]]:
    """What ``docker run IMAGE`` executes: ENTRYPOINT + CMD as Docker combines them."""
    entrypoint = stage.last("ENTRYPOINT")
    cmd = stage.last("CMD")
    entry_argv: list[str] = []
    if entrypoint is not None:
        parsed = exec_form(entrypoint.value)
        if parsed is None:  # shell-form ENTRYPOINT ignores CMD
            return commands_of(entrypoint.value)
        entry_argv = parsed
    cmd_argv: list[str] = []
    if cmd is not None:
        parsed = exec_form(cmd.value)
        cmd_argv = parsed if parsed is not None else ["/bin/sh", "-c", cmd.value]
    argv = entry_argv + cmd_argv
    return expand_commands([argv]) if argv else []


def healthcheck_command(stage: Stage) -> list[list[str]]:
    healthcheck = stage.last("HEALTHCHECK")
    assert healthcheck is not None, f"final stage {stage.name!r} has no HEALTHCHECK"
    _, rest = healthcheck.split_flags()
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD", f"HEALTHCHECK must run a command, got {rest!r}"
    return commands_of(command.strip())


@functools.cache
def dockerfile() -> Dockerfile:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def entrypoint_script() -> str:
    entrypoint = dockerfile().final.last("ENTRYPOINT")
    assert entrypoint is not None, "the final stage has no ENTRYPOINT"
    argv = exec_form(entrypoint.value)
    assert argv, f"ENTRYPOINT should be exec form (JSON array), got {entrypoint.value!r}"
    return PurePosixPath(argv[0]).name


def pyproject() -> dict[str, Any]:
    with PYPROJECT.open("rb") as handle:
        return tomllib.load(handle)


# --------------------------------------------------------------------------------------------
# Project CLI (argparse help, run as a subprocess)
# --------------------------------------------------------------------------------------------


@functools.cache
def cli_help(*subcommands: str) -> str:
    command = [sys.executable, "-m", CLI_MODULE, *subcommands, "--help"]
    proc = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"`python {' '.join(command[1:])}` exited {proc.returncode}; the Dockerfile's commands "
            f"cannot be checked against the CLI.\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc.stdout


# argparse prints a subparsers action as an indented "{a,b,c}" line in its argument list.
_CHOICES_LINE = re.compile(r"^\s+\{([^{}\s]+)\}", re.MULTILINE)


def subcommand_choices(*path: str) -> list[str] | None:
    match = _CHOICES_LINE.search(cli_help(*path))
    return match.group(1).split(",") if match else None


def invocation_errors(args: list[str]) -> list[str]:
    """Check ``keyworker <args>`` against the real CLI: subcommands at each level, then options."""
    path: list[str] = []
    rest = list(args)
    while (choices := subcommand_choices(*path)) is not None:
        positional = next((arg for arg in rest if not arg.startswith("-")), None)
        prefix = " ".join(["keyworker", *path])
        if positional is None:
            return [f"`{prefix}` needs a subcommand, one of {choices}"]
        if positional not in choices:
            return [f"`{prefix} {positional}`: {positional!r} is not one of {choices}"]
        path.append(positional)
        rest = rest[rest.index(positional) + 1 :]
    if not path:
        pytest.fail(f"`{CLI_MODULE} --help` lists no {{subcommand,...}} choices:\n{cli_help()}")
    leaf_help = cli_help(*path)
    errors = []
    for arg in rest:
        if arg.startswith("-"):
            option = arg.split("=", 1)[0]
            if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", leaf_help):
                errors.append(f"`keyworker {' '.join(path)}` has no option {option}")
    return errors


def keyworker_args(argv: list[str], script: str) -> list[str] | None:
    argv = _strip_prefix(argv)
    if argv and PurePosixPath(argv[0]).name == script:
        return argv[1:]
    return None


def keyworker_invocations(df: Dockerfile, script: str) -> list[tuple[str, list[str]]]:
    """Every ``keyworker ...`` the image runs, plus those its comments tell operators to run."""
    found: list[tuple[str, list[str]]] = []
    candidates: list[tuple[str, list[str]]] = []
    for stage in df.stages:
        for instruction in stage.all("RUN"):
            _, rest = instruction.split_flags()
            candidates += [(f"RUN line {instruction.lineno}", c) for c in commands_of(rest)]
    candidates += [("ENTRYPOINT/CMD", c) for c in container_commands(df.final)]
    if df.final.last("HEALTHCHECK") is not None:
        candidates += [("HEALTHCHECK", c) for c in healthcheck_command(df.final)]
    for comment in df.comments:
        for snippet in re.findall(rf"`({re.escape(script)}\s[^`]*)`", comment):
            candidates.append((f"comment `{snippet}`", shlex.split(snippet)))
    for where, argv in candidates:
        args = keyworker_args(argv, script)
        if args is not None:
            found.append((where, args))
    return found


# --------------------------------------------------------------------------------------------
# pip install commands
# --------------------------------------------------------------------------------------------

_PIP_VALUE_OPTIONS = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-t", "--target", "--prefix", "--root",
        "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-binary",
        "--only-binary", "--platform", "--python-version", "--implementation", "--abi", "--src",
        "--upgrade-strategy", "--progress-bar", "--cache-dir", "--log", "--timeout", "--retries",
        "--proxy", "--trusted-host", "--cert", "--client-cert", "--exists-action", "-C",
        "--config-settings", "--global-option", "--report", "--root-user-action", "--python",
    }
)  # fmt: skip


def pip_install_specs(argv: list[str]) -> list[tuple[str, bool]] | None:
    """Requirement specs of a ``pip install`` command as (spec, editable), or None."""
    argv = _strip_prefix(argv)
    if not argv:
        return None
    name = PurePosixPath(argv[0]).name
    if re.fullmatch(r"pip[\d.]*", name):
        rest = argv[1:]
    elif re.fullmatch(r"python[\d.]*", name) and argv[1:3] == ["-m", "pip"]:
        rest = argv[3:]
    else:
        return None
    if "install" not in rest:
        return None
    specs: list[tuple[str, bool]] = []
    args: Iterator[str] = iter(rest[rest.index("install") + 1 :])
    for arg in args:
        if arg in {"-e", "--editable"}:
            specs.append((next(args, ""), True))
        elif arg.startswith("--editable="):
            specs.append((arg.partition("=")[2], True))
        elif arg.startswith("-e"):
            specs.append((arg[2:], True))
        elif arg.startswith("-"):
            if "=" not in arg and arg in _PIP_VALUE_OPTIONS:
                next(args, None)
        else:
            specs.append((arg, False))
    return specs


def local_specs(specs: list[tuple[str, bool]]) -> frozenset[tuple[str, bool]]:
    """The specs that name a local project directory or built artefact, normalised."""
    result = set()
    for spec, editable in specs:
        path, _, extras = spec.partition("[")
        if path.startswith((".", "/")) or path.endswith((".whl", ".tar.gz")):
            names = sorted(e.strip() for e in extras.rstrip("]").split(",") if e.strip())
            suffix = f"[{','.join(names)}]" if names else ""
            result.add((posixpath.normpath(path) + suffix, editable))
    return frozenset(result)


# --------------------------------------------------------------------------------------------
# Build context: COPY sources and .dockerignore
# --------------------------------------------------------------------------------------------


def copy_args(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    flags, rest = instruction.split_flags()
    parsed = exec_form(rest)
    words = parsed if parsed is not None else shlex.split(rest)
    assert len(words) >= 2, f"line {instruction.lineno}: {instruction.keyword} needs src and dest"
    return flags, words[:-1], words[-1]


def copy_targets(instruction: Instruction, workdir: PurePosixPath) -> dict[PurePosixPath, Path]:
    """Map image paths written by a context COPY to their sources (Docker's COPY semantics)."""
    _, sources, dest = copy_args(instruction)
    target = workdir / dest
    into_dir = dest.endswith("/") or dest in {".", "./"} or len(sources) > 1
    result = {}
    for src in sources:
        source = REPO_ROOT / src
        if source.is_dir():  # a directory's contents are copied into dest
            image_path = target
        else:
            image_path = target / PurePosixPath(src).name if into_dir else target
        result[PurePosixPath(posixpath.normpath(image_path))] = source
    return result


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        elif pattern[index] == "[" and (end := pattern.find("]", index)) != -1:
            out, index = out + pattern[index : end + 1], end + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return re.compile(out)


def dockerignore_rules() -> list[tuple[re.Pattern[str], bool]]:
    assert DOCKERIGNORE.is_file(), f"{DOCKERIGNORE} is missing"
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        cleaned = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((_ignore_regex(cleaned), negate))
    return rules


def is_ignored(path: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Docker semantics: a path is excluded if it or a parent matches; the last match wins."""
    parts = PurePosixPath(posixpath.normpath(path)).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for regex, negate in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negate
    return ignored


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_multi_stage_final_stage_copies_from_an_earlier_stage() -> None:
    df = dockerfile()
    assert len(df.stages) >= 2, f"expected a multi-stage build, found {len(df.stages)} FROM"
    copies = [c for c in df.final.all("COPY") if "from" in c.split_flags()[0]]
    assert copies, "the final stage copies nothing from a previous stage"
    for copy in copies:
        ref = copy.split_flags()[0]["from"]
        source = df.stage_ref(ref)
        assert source is not None and source.index < df.final.index, (
            f"line {copy.lineno}: COPY --from={ref} is not an earlier stage of this Dockerfile"
        )
        # A virtualenv's interpreter symlinks into its base image: both must be the same image.
        assert source.base == df.final.base, (
            f"stage {ref!r} is built FROM {source.base} but the runtime is FROM {df.final.base}"
        )


def test_final_stage_runs_as_a_non_root_user() -> None:
    final = dockerfile().final
    user = final.last("USER")
    assert user is not None, "the final stage sets no USER, so the container runs as root"
    name, _, group = user.value.strip().partition(":")
    assert name not in {"root", "0"}, f"USER {user.value} is root"
    assert group not in {"root", "0"}, f"USER {user.value} uses the root group"
    if not name.isdigit():  # a named user must exist in the image or `docker run` fails
        created = any(
            argv and PurePosixPath(argv[0]).name in {"useradd", "adduser"} and argv[-1] == name
            for run in final.all("RUN")
            for argv in commands_of(run.split_flags()[1])
        )
        assert created, f"USER {name} is never created with useradd/adduser in the final stage"


def test_healthcheck_requests_healthz_on_the_exposed_port() -> None:
    final = dockerfile().final
    expose = final.last("EXPOSE")
    assert expose is not None, "the final stage does not EXPOSE a port"
    ports = {int(word.split("/")[0]) for word in expose.value.split()}
    assert len(ports) == 1, f"expected one exposed port, got {sorted(ports)}"
    (port,) = ports

    commands = healthcheck_command(final)
    assert commands, "HEALTHCHECK has no command"
    program = PurePosixPath(commands[0][0]).name
    assert re.fullmatch(r"python[\d.]*", program), (
        f"HEALTHCHECK runs {program!r}; python:3.11-slim has no curl/wget, use python's urllib"
    )
    text = " ".join(" ".join(argv) for argv in commands)
    assert "urllib" in text, "HEALTHCHECK should probe with urllib from the standard library"
    urls = [urlsplit(url) for url in re.findall(r"https?://[^\s'\"]+", text)]
    assert any(url.path == "/healthz" and url.port == port for url in urls), (
        f"HEALTHCHECK does not request /healthz on the exposed port {port}: {text}"
    )

    for argv in container_commands(final):  # the server must listen where EXPOSE says
        for index, arg in enumerate(argv):
            if arg == "--port":
                assert int(argv[index + 1]) == port, f"CMD --port {argv[index + 1]} != {port}"
            elif arg.startswith("--port="):
                assert int(arg.partition("=")[2]) == port, f"CMD {arg} != EXPOSE {port}"


def test_every_keyworker_command_is_a_real_cli_subcommand() -> None:
    scripts: dict[str, str] = pyproject()["project"].get("scripts", {})
    names = [name for name, target in scripts.items() if target.startswith(f"{CLI_MODULE}:")]
    assert names, f"[project.scripts] has no console script for {CLI_MODULE}: {scripts}"
    script = names[0]
    invocations = keyworker_invocations(dockerfile(), script)
    assert any(where == "ENTRYPOINT/CMD" for where, _ in invocations), (
        f"the container does not start the {script} CLI"
    )
    # The image does not chain migrations into CMD; its comments must tell operators the step.
    assert any(args[:2] == ["db", "upgrade"] for _, args in invocations), (
        "the Dockerfile neither runs nor documents `keyworker db upgrade`"
    )
    errors = [
        f"{where}: {error}" for where, args in invocations for error in invocation_errors(args)
    ]
    assert not errors, "\n".join(errors)


def test_entrypoint_is_a_console_script_of_the_project() -> None:
    script = entrypoint_script()
    scripts: dict[str, str] = pyproject()["project"].get("scripts", {})
    assert script in scripts, f"ENTRYPOINT {script!r} is not in [project.scripts] {scripts}"
    # The CLI checks above run `python -m service.cli`; that must be the same program.
    module = scripts[script].partition(":")[0].strip()
    assert module == CLI_MODULE, f"{script} points at {module}, the tests check {CLI_MODULE}"


def test_pip_installs_the_project_the_way_the_readme_does() -> None:
    if not README.is_file():
        pytest.fail(
            "README.md does not exist, so the Dockerfile's `pip install .` cannot be checked "
            "against the documented production install step"
        )
    readme_steps = set()
    for line in README.read_text(encoding="utf-8").splitlines():
        for match in re.finditer(r"(?:python[\d.]*\s+-m\s+)?pip[\d.]*\s+install\b[^`\n]*", line):
            try:
                specs = pip_install_specs(shlex.split(match.group(0)))
            except ValueError:
                continue
            local = local_specs(specs or [])
            if local and not any(editable for _, editable in local):
                readme_steps.add(local)
    assert readme_steps, "README.md has no production install line like `pip install .`"

    df = dockerfile()
    installs = []
    for stage in df.stages:
        workdir = PurePosixPath("/")
        copied: dict[PurePosixPath, Path] = {}  # image path -> build-context path
        for instruction in stage.instructions:
            flags, rest = instruction.split_flags()
            if instruction.keyword == "WORKDIR":
                workdir = workdir / rest.strip()
            elif instruction.keyword == "COPY" and "from" not in flags:
                copied.update(copy_targets(instruction, workdir))
            elif instruction.keyword == "RUN":
                cwd = workdir  # a `cd` inside RUN moves the install, not the next RUN
                for argv in commands_of(rest):
                    if argv[0] == "cd":
                        cwd = cwd / (argv[1] if len(argv) > 1 else "/root")
                    local = local_specs(pip_install_specs(argv) or [])
                    if local:
                        installs.append((instruction, local, cwd, dict(copied)))
    assert installs, "the Dockerfile never pip-installs the project from a local path"

    project = pyproject()
    readme = project["project"].get("readme", "README.md")
    needed = ["pyproject.toml", readme["file"] if isinstance(readme, dict) else readme]
    find = project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    needed += [package.rstrip("*.") for package in find.get("include", [])]
    for instruction, installed, workdir, copied in installs:
        assert installed in readme_steps, (
            f"line {instruction.lineno}: installs {sorted(installed)}, README.md documents "
            f"{[sorted(step) for step in readme_steps]}"
        )
        for spec, _ in installed:
            project_dir = workdir / re.sub(r"\[.*\]$", "", spec)
            for name in needed:  # e.g. a missing README.md breaks the setuptools build
                wanted = PurePosixPath(posixpath.normpath(project_dir / name))
                present = any(
                    wanted == path or (source.is_dir() and path in wanted.parents)
                    for path, source in copied.items()
                )
                assert present, f"line {instruction.lineno}: {wanted} is not copied before install"


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    rules = dockerignore_rules()
    checked = 0
    for stage in dockerfile().stages:
        for instruction in stage.all("COPY") + stage.all("ADD"):
            flags, sources, _ = copy_args(instruction)
            if "from" in flags:
                continue  # copies from another stage or image, not the repository
            for src in sources:
                if re.match(r"[a-z][a-z0-9+.-]*://|git@", src):
                    continue  # ADD of a URL
                where = f"line {instruction.lineno}: {instruction.keyword} {src}"
                inside = (
                    not PurePosixPath(src).is_absolute() and ".." not in PurePosixPath(src).parts
                )
                assert inside, f"{where}: source is outside the build context"
                matches = list(REPO_ROOT.glob(src)) if re.search(r"[*?\[]", src) else []
                exists = bool(matches) or (REPO_ROOT / src).exists()
                assert exists, f"{where}: no such path in the repository"
                if posixpath.normpath(src) != ".":
                    assert not is_ignored(src, rules), f"{where}: excluded by .dockerignore"
                checked += 1
    assert checked, "no COPY of project files found"


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    rules = dockerignore_rules()
    for path in [
        ".git/HEAD",
        ".venv/bin/python",
        "var/keyworker.sqlite3",
        "node_modules/x/index.js",
        ".pytest_cache/v/cache",
        "service/__pycache__/cli.cpython-311.pyc",
    ]:
        assert is_ignored(path, rules), f"{path} would be sent to the Docker daemon"
