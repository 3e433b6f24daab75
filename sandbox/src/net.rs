//! Bringing the loopback interface up in the sandbox's fresh network namespace.
//!
//! A new network namespace has exactly one interface, `lo`, and it is down. Builds expect `127.0.0.1` to work
//! (test suites start local servers), so we set `IFF_UP` with the classic `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls on
//! a datagram socket; that is a dozen lines against a netlink client. The kernel assigns `127.0.0.1/8` and `::1`
//! to `lo` by itself once it is up. No other interface exists, so nothing can leave the namespace.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// Sets `IFF_UP` on `lo`. Must run inside the new network namespace, as its root.
pub(crate) fn bring_loopback_up() -> Result<(), Errno> {
    // SAFETY: `socket` has no memory-safety preconditions; we check its result before using it.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns; `OwnedFd` closes it exactly once.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };

    // SAFETY: `ifreq` is plain old data (arrays, integers, a union of those and a raw pointer); all-zero is valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        // `c_char` is `i8` or `u8` depending on the architecture.
        *slot = libc::c_char::from_ne_bytes([*byte]);
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes `ifru_flags` within the `ifreq` we own.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &raw mut request) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: SIOCGIFFLAGS just initialized `ifru_flags`, the union field we read and write.
    unsafe { request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS only reads the `ifreq` we own.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &raw const request) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}
