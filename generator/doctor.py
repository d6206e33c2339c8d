"""`dbgscaffold doctor`: is this machine ready for `dbgscaffold test`? Each item with its fix."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError


@dataclass(frozen=True)
class DoctorItem:
    what: str
    state: str  # "ok", "warn" (works, but slower or partial) or "fail" (test cannot run)
    detail: str
    fix: str = ""


def _tool(name: str, package: str, why: str) -> DoctorItem:
    path = shutil.which(name)
    if path:
        return DoctorItem(name, "ok", path)
    return DoctorItem(name, "fail", f"not on PATH ({why})", f"sudo apt-get install {package}")


def _busybox(path: Path) -> DoctorItem:
    from .vm.initramfs import is_dynamic

    try:
        data = path.read_bytes()
    except OSError:
        return DoctorItem("static busybox", "fail", f"{path} is missing (the guest's shell and tools)", "sudo apt-get install busybox-static")
    if data[:4] != b"\x7fELF" or is_dynamic(data):
        return DoctorItem("static busybox", "fail", f"{path} is dynamically linked; the guest has no libc", "sudo apt-get install busybox-static")
    return DoctorItem("static busybox", "ok", str(path))


def _kernels() -> list[DoctorItem]:
    from .vm import images

    scan = images.scan_pairs()
    default, reason = images.choose_default(scan.pairs, os.uname().release)
    items = []
    if not scan.pairs:
        items.append(DoctorItem("kernel", "fail", reason, "sudo apt-get install linux-image-amd64 linux-headers-amd64"))
    for pair in scan.pairs:
        label = f"kernel {pair.release}" + (" (default)" if pair == default else "")
        try:
            images.read_image(pair.image, limit=64 * 1024)
        except UserError as exc:
            items.append(DoctorItem(label, "fail", str(exc).split(". Fix: ")[0], str(exc).split("Fix: ", 1)[-1]))
            continue
        hdr = images.headers_release(pair.build_dir)
        if hdr is not None and hdr != pair.release:
            items.append(DoctorItem(label, "fail", f"headers {pair.build_dir} say {hdr}, not {pair.release}: a module built there will not load (vermagic)",
                                    f"sudo apt-get install --reinstall linux-headers-{pair.release}"))
            continue
        try:
            boot = images.boot_image(pair.image, pair.release)
        except UserError as exc:
            items.append(DoctorItem(label, "fail", str(exc)))
            continue
        if boot.kind == "pvh-elf":
            items.append(DoctorItem(label, "ok", f"image {pair.image}, headers {pair.build_dir}, fast boot (PVH vmlinux)"))
        else:
            fix = "sudo apt-get install zstd" if "zstd" in boot.note else ""
            items.append(DoctorItem(label, "warn", f"boots the slower bzImage: {boot.note}", fix))
    for problem in scan.problems:
        text, _, fix = problem.partition(" (Fix: ")
        items.append(DoctorItem("incomplete kernel", "warn" if scan.pairs else "fail", text, ("sudo " + fix.rstrip(")")) if fix else ""))
    if default is not None:
        items.append(DoctorItem("default kernel", "ok", reason))
    return items


def _kvm() -> DoctorItem:
    from .vm.qemu import probe_accel

    if shutil.which("qemu-system-x86_64") is None:
        return DoctorItem("/dev/kvm", "warn", "not probed: no qemu")
    choice = probe_accel("auto")
    if choice.accel == "kvm":
        return DoctorItem("/dev/kvm", "ok", choice.reason)
    if "missing or not read-writable" in choice.reason and Path("/dev/kvm").exists():
        fix = "sudo usermod -aG kvm $USER, then log in again"
    elif "missing" in choice.reason:
        fix = "enable VT-x/AMD-V in the firmware (or nested virtualization on the VM host) and load kvm_intel/kvm_amd"
    else:
        fix = "enable VT-x/AMD-V (or nested virtualization) for this machine; TCG works meanwhile, only slower"
    return DoctorItem("/dev/kvm", "warn", f"not usable, tests run under TCG: {choice.reason}", fix)


def _sandbox() -> DoctorItem:
    from .sandbox import available

    why = available()
    if not why:
        return DoctorItem("sandbox", "ok", "bubblewrap works: lab grade and --untrusted build untrusted code in it")
    fix = "sudo apt-get install bubblewrap" if "not installed" in why else "run where unprivileged user namespaces are allowed"
    return DoctorItem("sandbox", "warn", f"{why}: lab grade refuses (exit 4) unless --no-sandbox", fix)


def _cache() -> DoctorItem:
    from .paths import cache_dir

    try:
        root = cache_dir()
    except UserError as exc:
        return DoctorItem("cache", "fail", str(exc).split(". Fix: ")[0], str(exc).split("Fix: ", 1)[-1])
    writable = os.access(root, os.W_OK)
    return DoctorItem("cache", "ok" if writable else "fail", f"{root} (private, 0700)" if writable else f"{root} is not writable",
                      "" if writable else "set DBGSCAFFOLD_CACHE to a directory of yours")


def diagnose() -> list[DoctorItem]:
    from .vm.initramfs import BUSYBOX

    return [
        _tool("qemu-system-x86_64", "qemu-system-x86", "boots the test VM"),
        _tool("make", "build-essential", "kbuild"),
        _tool("strip", "binutils", "keeps the test initramfs small"),
        _busybox(BUSYBOX),
        *_kernels(),
        _kvm(),
        _sandbox(),
        _cache(),
    ]
