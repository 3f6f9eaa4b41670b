"""Keep an experiment's results without its checkpoints: pack the finished cells of an ``ablate`` or
``delay`` output directory into one small archive that can be committed, and unpack it into an
output directory so that the same command skips those cells and pools them with new ones.

    python tools/results_archive.py pack runs/delay/rtc_paper_catch results/rtc_paper_catch.tar.gz
    python tools/results_archive.py unpack results/rtc_paper_catch.tar.gz runs/delay/rtc_paper_catch
    robolearn delay rtc_paper_catch --out runs/delay/rtc_paper_catch      # tables again, then the missing cells

Packed: every file under the directory except ``train/`` (checkpoints) and ``data/`` (demonstrations,
collected again from their seeds), with the floats of JSON files rounded to 6 significant digits.
Unpacking writes only files that are missing; a file that exists with other contents is reported
and left as it is.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

SKIP = ("train", "data")


def _round(x, digits: int = 6):
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, dict):
        return {k: _round(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v, digits) for v in x]
    return x


def _kept(out: Path) -> list[Path]:
    def kept(p: Path) -> bool:  # lock files (.name.lock) and half-written files (name.tmp) stay
        return p.relative_to(out).parts[0] not in SKIP and not p.name.startswith(".") and not p.name.endswith(".tmp")

    return sorted(p for p in out.rglob("*") if p.is_file() and kept(p))


def _payload(path: Path) -> bytes:
    if path.suffix == ".json":
        return json.dumps(_round(json.loads(path.read_text())), separators=(",", ":")).encode()
    return path.read_bytes()


def pack(out: Path, archive: Path) -> int:
    """Write ``archive`` (a .tar.gz) from ``out``; returns the number of files packed."""
    if not out.is_dir():
        raise SystemExit(f"{out}: no such directory (expected the --out of `robolearn ablate` or `robolearn delay`)")
    files = _kept(out)
    if not files:
        raise SystemExit(f"{out}: nothing to pack (no file outside train/ and data/)")
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for p in files:
            data = _payload(p)
            info = tarfile.TarInfo(p.relative_to(out).as_posix())
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(archive)
    return len(files)


def unpack(archive: Path, out: Path) -> tuple[int, list[str]]:
    """Write the archive's files that ``out`` lacks; returns (files written, files left because they differ)."""
    if not archive.is_file():
        raise SystemExit(f"{archive}: no such file (expected an archive written by `results_archive.py pack`)")
    written, differ = 0, []
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            rel = Path(m.name)
            if not m.isfile() or rel.is_absolute() or ".." in rel.parts or rel.parts[0] in SKIP:
                raise SystemExit(f"{archive}: member {m.name!r}: expected a relative results file, found another")
            data = tar.extractfile(m).read()
            dest = out / rel
            if dest.exists():
                if _payload(dest) != data:
                    differ.append(m.name)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(dest)
            written += 1
    return written, differ


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="OUT ARCHIVE: archive the finished cells of an output directory")
    p.add_argument("out", type=Path)
    p.add_argument("archive", type=Path)
    u = sub.add_parser("unpack", help="ARCHIVE OUT: restore the cells an output directory lacks")
    u.add_argument("archive", type=Path)
    u.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        n = pack(a.out, a.archive)
        print(f"{a.archive}: {n} files from {a.out} ({a.archive.stat().st_size / 1e6:.2f} MB)")
        return 0
    n, differ = unpack(a.archive, a.out)
    print(f"{a.out}: {n} files written from {a.archive}")
    for name in differ:
        print(f"{a.out / name}: kept as it is (differs from the archive's copy)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
