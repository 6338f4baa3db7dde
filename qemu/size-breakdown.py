#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Per-crate size of an unstripped mailbag binary (what `cargo bloat --crates` shows, for
cross targets it cannot build): sums the sizes of the text and read-only data symbols by
the crate their demangled name starts with.

    qemu/size-breakdown.py BINARY [NM]      NM: an nm for the binary's architecture
                                            (default: mips-linux-gnu-nm for MIPS, else nm)

Generic code is counted under the crate named first in the symbol (for `<A as B>::f`, A's
crate): a tokio future polled by mailbag shows as tokio. C code (littlefs, ring's C and
assembly) has unmangled names and is grouped by prefix. Sections without symbols
(.eh_frame, string literals merged by the linker) are reported as a last line.
"""
import collections
import re
import subprocess
import sys

path = sys.argv[1]
nm = sys.argv[2] if len(sys.argv) > 2 else "nm"
out = subprocess.run([nm, "-S", "-C", "--defined-only", "--size-sort", path],
                     capture_output=True, text=True, check=True).stdout
sizes = collections.Counter()
total = 0
for line in out.splitlines():
    parts = line.split(" ", 3)
    if len(parts) < 4 or parts[2].lower() not in "trd":
        continue
    size = int(parts[1], 16)
    name = parts[3]
    total += size
    if name.startswith("ring_core_") or name.startswith("GFp") or "ring" in name[:12]:
        crate = "ring (C/asm)"
    elif name.startswith("lfs_") or name.startswith("lfs2_"):
        crate = "littlefs (C)"
    else:
        m = re.match(r"[<&*\s]*(?:dyn |mut |const )*([A-Za-z_][A-Za-z0-9_]*)::", name)
        crate = m.group(1) if m else "[C/other: " + name.split("(")[0][:20] + "]"
        if crate in ("core", "alloc", "std", "std_detect", "panic_unwind", "panic_abort",
                     "unwind", "compiler_builtins", "rustc_demangle", "gimli", "addr2line",
                     "miniz_oxide", "object", "memchr_std"):
            crate = "std+core+alloc" if crate in ("core", "alloc", "std") else crate
        if crate.startswith("_") or crate[0].isupper() and "::" not in name:
            crate = "[other]"
    sizes[crate] += size
secs = subprocess.run([nm.replace("nm", "size") if nm.endswith("nm") else "size", "-A", path],
                      capture_output=True, text=True).stdout
print(f"{'crate':<28} {'bytes':>10} {'share':>6}")
for crate, size in sizes.most_common(30):
    print(f"{crate:<28} {size:>10} {100.0 * size / total:>5.1f}%")
rest = sum(s for _, s in sizes.most_common()[30:])
print(f"{'(others)':<28} {rest:>10}")
print(f"{'symbols total':<28} {total:>10}")
print(secs)
