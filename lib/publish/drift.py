"""How far each regenerated numbers.json moved from the committed one, key by key: the comparison behind
`make check-figures`. ``python -m scripts.check_figures`` runs it (CI: after `make figures`), within the tolerances
of lib.notebook.tolerances (the rules are in its docstring).

    report = figure_drift("figures", against="HEAD")
    print(report.text())   # one line per notebook/key that moved too far: old value, new value, tolerance
    report.ok              # False when a key moved too far or changed, appeared or disappeared, or a committed
                           # numbers.json is missing or unreadable; a numbers.json not in the commit is only noted

The committed file is ``git show REV:<figures>/<run>/numbers.json`` of the repository holding the figures folder;
the runs are those of lib.notebook.numbers.numbers_files (figures/NN_name/ and figures/<variant>/NN_name/, so
figures/cifar10/ is checked with figures/).
"""
from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lib.core.paths import FIGURES
from lib.notebook.numbers import FILENAME, numbers_files, read_numbers, run_of
from lib.notebook.tolerances import allowance, rule_for


class _Absent:
    """A value that is not there (a key that disappeared or appeared; the file itself when missing)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass(frozen=True)
class Finding:
    """One value of one run that is not as committed: ``key`` (``run.<field>`` for provenance, ``name[sub]`` inside
    a nested value), the committed and the new value (ABSENT where there is none) and why it fails."""
    run: str
    key: str
    old: object
    new: object
    why: str

    def __str__(self) -> str:
        if self.old is ABSENT and self.new is ABSENT:
            return f"{self.run}: {self.key}: {self.why}"
        return f"{self.run}: {self.key}: {_show(self.old)} -> {_show(self.new)}: {self.why}"


@dataclass
class DriftReport:
    """The comparison of a figures folder with a commit: runs compared, findings (each a failure) and notes."""
    figures: str
    against: str
    commit: str
    compared: list = field(default_factory=list)
    values: int = 0
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing moved too far (no findings)."""
        return not self.findings

    def text(self) -> str:
        """The report as printed: notes, one line per finding, then a summary line."""
        lines = [f"note: {n}" for n in self.notes] + [f"MOVED {f}" for f in self.findings]
        head = (f"check-figures: {len(self.compared)} numbers.json in {self.figures} against {self.against} "
                f"({self.commit[:12]}), {self.values} values")
        if self.ok:
            lines.append(f"{head}: all as committed, within lib/notebook/tolerances.py")
        else:
            runs = sorted({f.run for f in self.findings})
            lines.append(f"{head}: {len(self.findings)} moved too far or changed, in {', '.join(runs)} "
                         f"(tolerances: lib/notebook/tolerances.py)")
        return "\n".join(lines)


def _show(v) -> str:
    if v is ABSENT:
        return "(absent)"
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(v) -> str:
    return "null" if v is None else type(v).__name__


def _values(v) -> int:
    if isinstance(v, dict):
        return sum(_values(x) for x in v.values())
    if isinstance(v, list):
        return sum(_values(x) for x in v)
    return 1


def _compare(run: str, path: str, old, new, where: str, rule: dict, old_numbers: dict) -> list[Finding]:
    """Findings for one value (recursing into dicts and lists); ``old_numbers`` holds the rule's companions
    ({} inside a nested value, where only the rule's rel/abs apply)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = [Finding(run, f"{path}[{k}]", old.get(k, ABSENT), new.get(k, ABSENT),
                       "disappeared" if k in old else "appeared")
               for k in sorted(set(old) ^ set(new))]
        for k in sorted(set(old) & set(new)):
            out += _compare(run, f"{path}[{k}]", old[k], new[k], where, rule, {})
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [Finding(run, path, old, new, f"length {len(old)} -> {len(new)}, exact")]
        return [f for i, (a, b) in enumerate(zip(old, new)) for f in _compare(run, f"{path}[{i}]", a, b, where, rule,
                                                                                 {})]
    if isinstance(old, float) and isinstance(new, float):  # an int is a count: exact, below
        if not (math.isfinite(old) and math.isfinite(new)):
            return [] if old == new else [Finding(run, path, old, new, "not finite")]
        tol, how = allowance(rule, old, new, old_numbers)
        moved = abs(new - old)
        if moved <= tol * (1 + 1e-9) + 1e-15:
            return []
        return [Finding(run, path, old, new, f"moved {moved:.4g}, tolerance {tol:.4g} ({how}; rule {where})")]
    if type(old) is not type(new):
        return [Finding(run, path, old, new, f"{_kind(old)} -> {_kind(new)}, exact")]
    if old != new:
        return [Finding(run, path, old, new, f"changed, exact for a {_kind(old)}")]
    return []


def compare_numbers(old: dict, new: dict, run: str, table: dict | None = None) -> list[Finding]:
    """Findings of a regenerated numbers.json ``new`` against the committed ``old`` (both whole files: {"numbers":
    ..., "run": ...}) of ``run`` ("06_linear_probe", "cifar10/06_linear_probe"): the run block exactly, every key
    of "numbers" by its rule in ``table`` (default lib.notebook.tolerances.TOLERANCES), keys that disappeared or
    appeared."""
    out = []
    old_run, new_run = old.get("run") or {}, new.get("run") or {}
    for k in sorted(set(old_run) | set(new_run)):
        if k not in new_run or k not in old_run or type(old_run[k]) is not type(new_run[k]) \
                or old_run[k] != new_run[k]:
            out.append(Finding(run, f"run.{k}", old_run.get(k, ABSENT), new_run.get(k, ABSENT), "provenance, exact"))
    a, b = old.get("numbers") or {}, new.get("numbers") or {}
    for k in sorted(set(a) | set(b)):
        if k not in b:
            out.append(Finding(run, k, a[k], ABSENT, "disappeared"))
        elif k not in a:
            out.append(Finding(run, k, ABSENT, b[k], "appeared, not in the committed file"))
        else:
            where, rule = rule_for(run, k, table)
            out += _compare(run, k, a[k], b[k], where, rule, a)
    return out


def _git(args: list, cwd) -> str:
    try:
        r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ValueError("git is not installed: check-figures compares with committed files") from None
    if r.returncode:
        raise ValueError((r.stderr.strip().splitlines() or [f"git {' '.join(args)} failed"])[-1])
    return r.stdout


def repository(figures) -> tuple[Path, str]:
    """(top of the git work tree holding ``figures``, the folder's path inside it, "" or ending in "/");
    ValueError when the folder is not inside one."""
    figures = Path(figures).expanduser()
    if not figures.is_dir():
        raise FileNotFoundError(f"{figures}: no such folder")
    try:
        top = _git(["rev-parse", "--show-toplevel"], figures).strip()
        prefix = _git(["rev-parse", "--show-prefix"], figures).strip()
    except ValueError:
        raise ValueError(f"{figures} is not inside a git work tree (check-figures compares with committed "
                         f"files)") from None
    return Path(top), prefix


def commit_of(figures, against: str = "HEAD") -> str:
    """The full hash of the commit ``against`` names in the repository of ``figures``; ValueError if none."""
    top, _ = repository(figures)
    if not against or against.startswith("-") or any(c.isspace() for c in against):
        raise ValueError(f"expected a commit (HEAD, a branch, a tag or a hash), got {against!r}")
    try:
        return _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{against}^{{commit}}"], top).strip()
    except ValueError:
        raise ValueError(f"{against!r} is not a commit of {top}") from None


def committed_files(figures, commit: str) -> dict:
    """{run id: path in the repository} of every run's numbers.json under ``figures`` in ``commit``."""
    top, prefix = repository(figures)
    listing = _git(["ls-tree", "-r", "--name-only", "-z", commit, "--", prefix or "."], top)
    out = {}
    for path in filter(None, listing.split("\0")):
        if path.endswith(FILENAME) and path.startswith(prefix):
            run = run_of(path[len(prefix):])
            if run is not None:
                out[run] = path
    return dict(sorted(out.items()))


def committed_numbers(figures, commit: str, path: str) -> dict:
    """The content of ``path`` (a path in the repository) at ``commit``; ValueError naming it if unreadable."""
    top, _ = repository(figures)
    text = _git(["show", f"{commit}:{path}"], top)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{commit[:12]}:{path} is not valid JSON at line {e.lineno}: {e.msg}") from None


def figure_drift(figures=FIGURES, against: str = "HEAD", table: dict | None = None) -> DriftReport:
    """Compare every run's numbers.json under ``figures`` with the same file in commit ``against``: a
    `DriftReport` whose findings name each run/key that moved too far or changed (old, new, tolerance), each
    committed numbers.json that is missing or unreadable on disk; a file the commit does not have is a note."""
    commit = commit_of(figures, against)
    report = DriftReport(figures=str(figures), against=against, commit=commit)
    committed = committed_files(figures, commit)
    on_disk = numbers_files(figures)
    for run in sorted(set(on_disk) - set(committed)):
        report.notes.append(f"{run}/{FILENAME} is not in {against}: not compared (commit it to check it)")
    for run, path in committed.items():
        if run not in on_disk:
            report.findings.append(Finding(run, FILENAME, ABSENT, ABSENT,
                                           f"missing: committed as {path} in {against}, not written by the run"))
            continue
        try:
            old = committed_numbers(figures, commit, path)
            new = read_numbers(on_disk[run])
        except ValueError as e:
            report.findings.append(Finding(run, FILENAME, ABSENT, ABSENT, f"unreadable: {e}"))
            continue
        bad = [f"{name} is not a numbers.json object ({{\"numbers\": ..., \"run\": ...}})"
               for name, d in ((f"{against}:{path}", old), (str(on_disk[run]), new))
               if not isinstance(d, dict) or not all(isinstance(d.get(k, {}), dict) for k in ("numbers", "run"))]
        if bad:
            report.findings.append(Finding(run, FILENAME, ABSENT, ABSENT, "; ".join(bad)))
            continue
        report.compared.append(run)
        report.values += _values(old.get("numbers") or {}) + len(old.get("run") or {})
        report.findings += compare_numbers(old, new, run, table)
    return report
