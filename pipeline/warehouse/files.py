"""Private files on disk (README "Privacy"): stored text is sensitive, so every file the pipeline writes is created
owner-only, and the serving file gets the mode and group configured for its readers, again after every publish.

Reusable by any writer: `private_dir` / `private_file` for working data, `apply_serving_mode` for published files.
"""

from __future__ import annotations

import grp
import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SERVING_MODE_ENV = "COMPLIANCE_SERVING_FILE_MODE"    # octal, e.g. 640 (default 600)
SERVING_GROUP_ENV = "COMPLIANCE_SERVING_FILE_GROUP"  # group name or id given read access with mode 640


class FileModeError(ValueError):
    pass


def private_dir(path: Path, *, narrow: bool = False) -> Path:
    """Create `path` owner-only when missing. An existing folder is narrowed only with `narrow` (the project's own
    data folder): a folder the operator chose (their home, /srv/...) keeps its mode; the files in it are private."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask only towards narrower
    elif narrow and path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: Path, data: bytes) -> Path:
    """Write `data` to a new owner-only file (mode set at creation: never readable by others, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(path)


def restrict(path: Path, mode: int = PRIVATE_FILE_MODE) -> None:
    """Narrow an existing file (e.g. one DuckDB created with the umask) to `mode`, with its `.wal` if any."""
    for p in (Path(path), Path(str(path) + ".wal")):
        if p.exists():
            os.chmod(p, mode)


def serving_mode(env: dict | None = None) -> tuple[int, int | None]:
    """(mode, gid) of the serving file, validated: no bits for others, no execute bits. From the settings
    (pipeline.settings, which validate these variables with the others), or from `env` (the settings' own check)."""
    if env is None:
        from pipeline.settings import load_settings

        settings = load_settings()
        env = {SERVING_MODE_ENV: settings.serving_file_mode, SERVING_GROUP_ENV: settings.serving_file_group or ""}
    raw = (env.get(SERVING_MODE_ENV) or "600").strip()
    try:
        mode = int(raw, 8)
    except ValueError:
        raise FileModeError(f"{SERVING_MODE_ENV}={raw!r} is not an octal mode (e.g. 600 or 640).") from None
    if mode & ~0o660 or not mode & 0o600 == 0o600:
        raise FileModeError(f"{SERVING_MODE_ENV}={raw!r}: allowed are 600, 640 and 660 (owner read-write; the group "
                            "at most read-write; nothing for others: the serving file holds conversation data).")
    group = (env.get(SERVING_GROUP_ENV) or "").strip()
    if not group:
        return mode, None
    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise FileModeError(f"{SERVING_GROUP_ENV}={group!r}: no such group.") from None
    return mode, gid


def apply_serving_mode(path: Path, env: dict | None = None) -> None:
    """Give a published file (before it is renamed into place) the configured mode and group."""
    mode, gid = serving_mode(env)
    if gid is not None:
        os.chown(path, -1, gid)
    os.chmod(path, mode)


def prepare_serving_folder(serving_path: Path, env: dict | None = None) -> None:
    """The serving file's folder: created owner-only; when the serving mode gives the group access, the group may
    traverse it (0710: reach the file by name, list nothing)."""
    folder = Path(serving_path).parent
    created = not folder.is_dir()
    private_dir(folder)
    mode, gid = serving_mode(env)
    if created and mode & 0o060:
        if gid is not None:
            os.chown(folder, -1, gid)
        os.chmod(folder, 0o710)


def serving_dir(path: Path, env: dict | None = None) -> Path:
    """A folder of published files: owner-only, or group-traversable and readable (0750) with a group serving mode."""
    path = Path(path)
    if not path.parent.is_dir():
        serving_dir(path.parent, env)  # every folder it creates gets the same mode (mkdir's parents get the umask's)
    path.mkdir(exist_ok=True, mode=PRIVATE_DIR_MODE)
    mode, gid = serving_mode(env)
    if gid is not None:
        os.chown(path, -1, gid)
    os.chmod(path, 0o750 if mode & 0o060 else PRIVATE_DIR_MODE)
    return path


def sweep_stale_temporaries(folder: Path, pattern: str) -> list[Path]:
    """Remove leftovers of interrupted writes named `<...>.<pid>.<suffix>` whose process is gone (at start)."""
    removed = []
    for path in Path(folder).glob(pattern):
        parts = path.name.split(".")
        pid = int(parts[-2]) if len(parts) > 2 and parts[-2].isdigit() else None
        if pid is None or pid == os.getpid() or process_alive(pid):
            continue
        try:
            path.unlink()
            removed.append(path)
        except (FileNotFoundError, IsADirectoryError):
            pass
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
