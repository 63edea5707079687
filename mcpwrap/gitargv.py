"""What a git command line really runs, for rules: its config overrides, GIT_* environment, force pushes.

git runs programs named by configuration (`core.fsmonitor`, `core.sshCommand`, `*.helper`, aliases
starting with `!`), by options (`--upload-pack`, `--exec-path=`) and by environment (`GIT_SSH_COMMAND`).
`parse_git` collects every override given on the command line or in the environment; a config key or a
GIT_* variable that is not known to be harmless counts as executing code (fail closed), so such a call is
never judged as the plain subcommand a `git.status: allow` rule would pass.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# git's global options (before the subcommand) whose value is the next argument.
GLOBAL_VALUE_OPTIONS = frozenset(
    {"-c", "-C", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env", "--attr-source"}
)

# Config sections whose every variable only changes output, identity or housekeeping.
SAFE_SECTIONS = frozenset(
    {"advice", "author", "blame", "checkout", "color", "column", "committer", "gc", "grep", "i18n", "index",
     "log", "pack", "pretty", "rerere", "status", "tag", "user", "versionsort"}
)  # fmt: skip
SAFE_KEYS = frozenset(
    {"core.quotepath", "core.autocrlf", "core.safecrlf", "core.eol", "core.filemode", "core.ignorecase",
     "core.abbrev", "core.whitespace", "core.compression", "core.loosecompression", "core.precomposeunicode",
     "core.commentchar", "core.commentstring", "core.preloadindex", "core.untrackedcache", "core.trustctime",
     "core.checkstat", "core.logallrefupdates", "init.defaultbranch", "pull.rebase", "pull.ff",
     "push.default", "push.autosetupremote", "push.followtags", "fetch.prune", "fetch.prunetags",
     "fetch.parallel", "fetch.fsckobjects", "transfer.fsckobjects", "receive.fsckobjects", "merge.ff",
     "merge.conflictstyle", "merge.log", "merge.renames", "merge.stat", "diff.renames", "diff.algorithm",
     "diff.noprefix", "diff.mnemonicprefix", "diff.colormoved", "diff.context", "diff.statgraphwidth",
     "diff.submodule", "diff.indentheuristic", "diff.relative", "diff.interhunkcontext", "diff.renamelimit",
     "diff.ignoresubmodules", "commit.verbose", "commit.cleanup", "commit.status", "commit.gpgsign",
     "rebase.autosquash", "rebase.autostash", "rebase.updaterefs", "rebase.stat", "protocol.version"}
)  # fmt: skip
# Keys that name a program: harmless only with one of these values (`GIT_PAGER=cat`, `GIT_EDITOR=true`).
PROGRAM_KEYS = frozenset({"core.pager", "core.editor", "sequence.editor"})
HARMLESS_PROGRAMS = frozenset({"", "true", ":", "cat", "false", "no", "off", "0", "yes", "on", "1"})

# GIT_* variables that change identity, display, or where the repository is (as `-C`/`--git-dir` do).
SAFE_ENV = frozenset(
    {"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
     "GIT_COMMITTER_DATE", "GIT_TERMINAL_PROMPT", "GIT_FLUSH", "GIT_MERGE_AUTOEDIT", "GIT_MERGE_VERBOSITY",
     "GIT_LITERAL_PATHSPECS", "GIT_GLOB_PATHSPECS", "GIT_NOGLOB_PATHSPECS", "GIT_ICASE_PATHSPECS",
     "GIT_OPTIONAL_LOCKS", "GIT_NO_REPLACE_OBJECTS", "GIT_ADVICE", "GIT_DEFAULT_HASH", "GIT_PROGRESS_DELAY",
     "GIT_HTTP_USER_AGENT", "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_NAMESPACE",
     "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_OBJECT_DIRECTORY",
     "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX", "GIT_CONFIG_NOSYSTEM", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
     "GIT_SSL_CERT", "GIT_SSL_KEY", "GIT_SSL_CERT_PASSWORD_PROTECTED", "GIT_SSL_VERSION", "GIT_SSL_CIPHER_LIST",
     "GIT_HTTP_LOW_SPEED_LIMIT", "GIT_HTTP_LOW_SPEED_TIME", "GIT_HTTP_MAX_REQUESTS"}
)  # fmt: skip
ENV_PROGRAMS = {"GIT_PAGER": "core.pager", "GIT_EDITOR": "core.editor", "GIT_SEQUENCE_EDITOR": "sequence.editor"}
CONFIG_ENV = ("GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")
MAX_CONFIG_COUNT = 1000

# Subcommand options that run a program, install hooks or write a file git would not otherwise write.
ANY_SUBCOMMAND_EXEC = ("--upload-pack", "--receive-pack", "--exec", "--ext-diff", "--output")
SUBCOMMAND_EXEC: dict[str, tuple[tuple[str, ...], str]] = {
    # subcommand: (long options, short option letters)
    "clone": (("--config", "--template"), "uc"),
    "init": (("--template",), ""),
    "rebase": ((), "x"),
    "difftool": (("--extcmd",), "x"),
    "grep": (("--open-files-in-pager",), "O"),
}
FORCE_OPTIONS = ("--force", "--force-with-lease", "--force-if-includes", "--mirror")
# Plumbing that pushes as `git push` does: judged as `git.push` (args.subcommand keeps what was written), so a
# rule on git.push with args.force catches `git send-pack --force` too.
PUSHERS = frozenset({"send-pack", "http-push"})


@dataclass
class GitCall:
    """A parsed git command line: the subcommand as written and what else it runs."""

    subcommand: str | None
    config: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    exec: set[str] = field(default_factory=set)
    aliases: set[str] = field(default_factory=set)
    force: bool = False
    delete: bool = False


def config_key(raw: str) -> str:
    """git's canonical key: section and variable lower-cased, a subsection kept (`Remote.Origin.URL` ->
    `remote.Origin.url`)."""
    section, dot, rest = raw.partition(".")
    if not dot:
        return raw.lower()
    sub, dot2, var = rest.rpartition(".")
    return f"{section.lower()}.{sub}.{var.lower()}" if dot2 else f"{section.lower()}.{rest.lower()}"


def config_is_safe(key: str, value: str) -> bool:
    """Whether a config override (canonical key) is known not to run code or change which program runs."""
    section = key.partition(".")[0]
    if section in SAFE_SECTIONS or key in SAFE_KEYS:
        return True
    if key in PROGRAM_KEYS or (section == "pager" and key.count(".") == 1):
        return value.strip().lower() in HARMLESS_PROGRAMS
    return False


def _add_config(call: GitCall, spec: str) -> None:
    raw, eq, value = spec.partition("=")
    key = config_key(raw.strip())
    call.config[key] = value if eq else "true"
    if key.startswith("alias.") and key.count(".") == 1:
        call.aliases.add(key.removeprefix("alias."))
    elif not config_is_safe(key, call.config[key]):
        call.exec.add(key)
    if key.startswith("remote.") and ((key.endswith(".push") and value.startswith("+")) or key.endswith(".mirror")):
        call.force = True


def _env_config(call: GitCall, env: Mapping[str, str]) -> None:
    """Config given through the environment (how git hands `-c` to its children; also settable by anyone)."""
    params = env.get("GIT_CONFIG_PARAMETERS")
    if params is not None:
        try:
            items = shlex.split(params)
        except ValueError:
            call.exec.add("GIT_CONFIG_PARAMETERS")
            items = []
        for item in items:
            _add_config(call, item)
    count = env.get("GIT_CONFIG_COUNT")
    if count is None:
        return
    if not count.strip().isdigit() or int(count) > MAX_CONFIG_COUNT:
        call.exec.add("GIT_CONFIG_COUNT")
        return
    for i in range(int(count)):
        key, value = env.get(f"GIT_CONFIG_KEY_{i}"), env.get(f"GIT_CONFIG_VALUE_{i}")
        if key is None or value is None:
            call.exec.add("GIT_CONFIG_COUNT")
            continue
        _add_config(call, f"{key}={value}")


def _environment(call: GitCall, env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith("GIT_"):
            continue
        call.env[name] = value
        if name in SAFE_ENV or name.startswith(CONFIG_ENV):
            continue
        if name in ENV_PROGRAMS and value.strip().lower() in HARMLESS_PROGRAMS:
            continue
        call.exec.add(name)
    _env_config(call, env)


def _long_name(arg: str) -> str:
    return arg.partition("=")[0]


def _abbreviates(name: str, options: Sequence[str]) -> bool:
    """`--upload` abbreviates `--upload-pack`: git accepts any unambiguous prefix of a long option."""
    return len(name) > 2 and any(opt.startswith(name) for opt in options)


def _subcommand_args(call: GitCall, sub: str, args: Sequence[str]) -> None:
    longs, shorts = SUBCOMMAND_EXEC.get(sub, ((), ""))
    exec_longs = (*ANY_SUBCOMMAND_EXEC, *longs)
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in ("--", "--end-of-options"):
            positional += args[i:]
            break
        if arg.startswith("--"):
            name = _long_name(arg)
            if _abbreviates(name, exec_longs):
                call.exec.add(next(o for o in exec_longs if o.startswith(name)))
                if sub == "clone" and "--config".startswith(name) and i < len(args) and "=" not in arg:
                    _add_config(call, args[i])
                elif sub == "clone" and "--config".startswith(name) and "=" in arg:
                    _add_config(call, arg.partition("=")[2])
            if sub == "push" or sub in PUSHERS:
                if _abbreviates(name, FORCE_OPTIONS):
                    call.force = True
                if _abbreviates(name, ("--delete",)):
                    call.delete = True
        elif arg.startswith("-") and arg != "-":
            letters = arg[1:]
            for letter in letters:
                if letter in shorts:
                    call.exec.add(f"-{letter}")
                    if sub == "clone" and letter == "c":
                        _add_config(call, letters.partition("c")[2] or (args[i] if i < len(args) else ""))
            if sub == "push" or sub in PUSHERS:
                # `-o` takes the rest of its bundle as a value: `-of` is a push option, not a force
                flags = letters.partition("o")[0]
                call.force = call.force or "f" in flags
                call.delete = call.delete or "d" in flags
        else:
            positional.append(arg)
    if sub == "push" or sub in PUSHERS:
        # the first positional is the repository, but `git push +main` is refused by git either way
        call.force = call.force or any(r.startswith("+") for r in positional)
        call.delete = call.delete or any(r.startswith(":") and len(r) > 1 for r in positional)


def parse_git(args: Sequence[str], env: Mapping[str, str]) -> GitCall:
    """Parse git's arguments (without argv[0]) and its environment."""
    call = GitCall(None)
    _environment(call, env)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-c":
            if i + 1 < len(args):
                _add_config(call, args[i + 1])
            i += 2
        elif arg.startswith("--config-env="):
            _config_env(call, arg.partition("=")[2], env)
            i += 1
        elif arg == "--config-env":
            if i + 1 < len(args):
                _config_env(call, args[i + 1], env)
            i += 2
        elif arg.startswith("--exec-path="):
            call.exec.add("--exec-path")
            i += 1
        elif arg in GLOBAL_VALUE_OPTIONS:
            i += 2
        elif arg == "--":
            i += 1
            break
        elif arg.startswith("-") and arg != "-":
            i += 1
        else:
            break
    if i < len(args) and args[i]:
        call.subcommand = args[i]
        _subcommand_args(call, args[i], args[i + 1 :])
    return call


def _config_env(call: GitCall, spec: str, env: Mapping[str, str]) -> None:
    """`--config-env=KEY=ENVVAR`: the value of KEY is read from ENVVAR."""
    key, _, var = spec.rpartition("=")
    if not key:
        call.exec.add("--config-env")
        return
    _add_config(call, f"{key}={env.get(var, '')}")


def judged_name(call: GitCall) -> str | None:
    """The tool a git call is judged as: `alias` when it defines one, `config-exec` when something it sets
    runs code, else its subcommand (None: plain `git`)."""
    if call.aliases:
        return "alias"
    if call.exec:
        return "config-exec"
    return "push" if call.subcommand in PUSHERS else call.subcommand
