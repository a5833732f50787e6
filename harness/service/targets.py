"""The targets the service knows: every slot of the local stack, plus the target files of its
config. A run names one of them (by name or by file path) or takes the local slots; the
emergency stop heals all of them."""

from __future__ import annotations

from pathlib import Path

from harness.config import Target, load_target
from harness.errors import HarnessError
from harness.faults.journal import state_dir
from harness.stack import slots as slot_stacks
from harness.yamlfile import FileProblems


class UnknownTarget(HarnessError):
    """A run named a target the service does not know, or asked for more slots than exist."""


class KnownTargets:
    def __init__(self, run_dir: Path, files: list[Path]):
        self.run_dir = run_dir
        # Read once at start: a broken file stops `harness serve` with file, line and field.
        self.files = [(path.resolve(), load_target(path)) for path in files]

    def local(self) -> list[tuple[Path, Target]]:
        """Every slot of the local stack that has a target file, in slot order (read each
        time: slots come and go)."""
        found = []
        for stack in slot_stacks.existing(self.run_dir):
            try:
                found.append((stack.target_path.resolve(), load_target(stack.target_path)))
            except FileProblems:
                continue  # a slot half torn down
        return found

    def all(self) -> list[Target]:
        """Each target once (by its state directory: a file may describe a local slot)."""
        seen: dict[Path, Target] = {}
        for _, target in [*self.local(), *self.files]:
            seen.setdefault(state_dir(target).resolve(), target)
        return list(seen.values())

    def names(self) -> list[str]:
        """What a run or schedule may name: `local` (the local stack's slots), each slot's
        and each target file's name."""
        return sorted({"local", *(t.name for _, t in [*self.local(), *self.files])})

    def known(self, name_or_path: str | None) -> bool:
        """Whether a schedule's `target` names something this service knows (the local stack
        and its slots always: they come and go)."""
        if (
            name_or_path is None
            or name_or_path == "local"
            or name_or_path.startswith("local-slot-")
        ):
            return True
        if name_or_path in self.names():
            return True
        paths = {p for p, _ in self.files}
        return name_or_path in {str(p) for p in paths} or Path(name_or_path).resolve() in paths

    def resolve(self, name_or_path: str | None, slots: int | None) -> list[Target]:
        """The targets of one run (one per slot)."""
        local = self.local()
        if name_or_path is None or name_or_path == "local":
            if not local:
                if name_or_path is None and len(self.files) == 1 and not slots:
                    return [self.files[0][1]]
                raise UnknownTarget("no local stack is up (`harness up --detach`); name a target")
            wanted = slots or len(local)
            if wanted > len(local):
                raise UnknownTarget(f"{wanted} slot(s) asked for, {len(local)} up")
            return [t for _, t in local[:wanted]]
        everything = [*local, *self.files]
        matches = [t for p, t in everything if name_or_path in (t.name, str(p))]
        if not matches:
            as_path = Path(name_or_path).resolve()
            matches = [t for p, t in everything if p == as_path]
        if not matches:
            known = ", ".join(sorted({t.name for _, t in everything})) or "none"
            raise UnknownTarget(f"unknown target {name_or_path!r}; known: {known}")
        if slots and slots > 1:
            raise UnknownTarget("a named target is one slot; drop `slots` or use the local stack")
        return matches[:1]
