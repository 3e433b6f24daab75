//! Issue 20, attacks 6, 7 and 9 (outputs), and the default memory cap: the system calls and socket families the
//! seccomp filter refuses, a host path holding a socket, and the cap on what `/build` and `$out` may hold. Each case
//! runs as the caller (root in CI) and as `nobody`, through the escape suite's [`Attack`].

use super::{As, Attack, NOBODY, assert_all_refused, assert_success, both, chown_tree};

/// A C program trying each call the filter refuses, printing `NAME refused` when the call failed with the error
/// the filter gives (the kernel's own answer differs for each: a socket, `EPERM` for lack of a capability, `EBADF`,
/// `EFAULT`, a pid) and the sockets a build keeps into `allowed`.
const PROBE_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void expect(const char *name, long rc, int want) {
    if (rc == -1 && errno == want) printf("%s refused\n", name);
    else printf("%s ESCAPED (returned %ld, errno %s)\n", name, rc, rc == -1 ? strerror(errno) : "-");
}

int main(int argc, char **argv) {
    int pair[2];
    char buffer[256];
    FILE *allowed = fopen(argv[1], "w");
    int families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
    int types[] = {SOCK_STREAM, SOCK_STREAM, SOCK_STREAM, SOCK_DGRAM};
    for (int i = 0; i < 4; i++) {
        int fd = socket(families[i], types[i], 0);
        fprintf(allowed, "family %d %s\n", families[i], fd >= 0 ? "allowed" : strerror(errno));
    }
    fprintf(allowed, "unix pair %s\n", socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0 ? "allowed" : strerror(errno));
    fclose(allowed);

    expect("vsock", socket(AF_VSOCK, SOCK_STREAM, 0), EAFNOSUPPORT);
    expect("vsock-pair", socketpair(AF_VSOCK, SOCK_STREAM, 0, pair), EAFNOSUPPORT);
    expect("packet", socket(AF_PACKET, SOCK_RAW, 0), EAFNOSUPPORT);
    expect("packet-pair", socketpair(AF_PACKET, SOCK_RAW, 0, pair), EAFNOSUPPORT);
    expect("alg", socket(AF_ALG, SOCK_SEQPACKET, 0), EAFNOSUPPORT);
    expect("key", socket(AF_KEY, SOCK_RAW, 2), EAFNOSUPPORT);
    memset(buffer, 0, sizeof buffer);
    expect("io_uring_setup", syscall(425, 4, buffer), ENOSYS);
    expect("io_uring_enter", syscall(426, -1, 0, 0, 0, NULL, 0), ENOSYS);
    expect("io_uring_register", syscall(427, -1, 0, NULL, 0), ENOSYS);
    expect("statmount", syscall(457, NULL, NULL, 0, 0), ENOSYS);
    expect("listmount", syscall(458, NULL, NULL, 0, 0), ENOSYS);
    expect("open_tree_attr", syscall(467, AT_FDCWD, "/", 0, NULL, 0), EPERM);
#ifdef __x86_64__
    expect("modify_ldt", syscall(SYS_modify_ldt, 0, buffer, sizeof buffer), EPERM);
    /* getpid through the x32 ABI: a kernel without x32 answers ENOSYS; the filter kills the caller. */
    pid_t child = fork();
    if (child == 0) {
        syscall(0x40000000 | SYS_getpid);
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) printf("x32 refused\n");
    else printf("x32 ESCAPED (status %d)\n", status);
#else
    printf("modify_ldt refused\nx32 refused\n");
#endif
    return 0;
}
"#;

/// Issue 20, attacks 6 and 11: `socket(AF_VSOCK)` + `bind` shared the host's vsock port space; io_uring created a
/// 06755 file past the filter; x32 call numbers passed it; `open_tree_attr`, `listmount`, `statmount` and
/// `modify_ldt` were allowed. Each is refused, and the socket families a build uses still work.
#[test]
fn the_filter_refuses_foreign_socket_families_io_uring_x32_and_new_mount_calls() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            &format!(
                "cat > /build/probe.c <<'EOF'\n{PROBE_C}\nEOF\ncc -o /build/probe /build/probe.c\n\
                 /build/probe \"$out/allowed\" > \"$out/report\""
            ),
        );
        assert_success(&attack.build("attack", &[]), "the probe build");
        assert_all_refused(
            &attack.output_file("attack", "report"),
            &[
                "vsock",
                "vsock-pair",
                "packet",
                "packet-pair",
                "alg",
                "key",
                "io_uring_setup",
                "io_uring_enter",
                "io_uring_register",
                "statmount",
                "listmount",
                "open_tree_attr",
                "modify_ldt",
                "x32",
            ],
            who,
        );
        assert_eq!(
            attack.output_file("attack", "allowed"),
            "family 1 allowed\nfamily 2 allowed\nfamily 10 allowed\nfamily 16 allowed\nunix pair allowed\n",
            "as {who:?}"
        );
    });
}

/// Issue 20, attack 7: a listening unix socket under a declared host path let the build connect to the host
/// service (a read-only bind does not stop `connect`). The build is refused before it runs, naming the socket.
#[test]
fn a_host_path_holding_a_socket_is_refused_before_the_build_runs() {
    both(|who| {
        let attack = Attack::new(who);
        let sdk = attack.env.root().join("sdk");
        std::fs::create_dir_all(sdk.join("run")).expect("create sdk");
        std::fs::write(sdk.join("tool"), "sdk\n").expect("write sdk");
        let socket = sdk.join("run/agent.sock");
        let listener =
            std::os::unix::net::UnixListener::bind(&socket).expect("bind the host socket");
        listener.set_nonblocking(true).expect("non-blocking");
        if who == As::Nobody {
            chown_tree(&sdk, NOBODY);
        }
        attack.recipe(
            "attack",
            &format!("host_paths = [\"{}\"]", sdk.display()),
            &format!(
                "{{ try connect python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"{}\")'; }} \
                 > \"$out/report\"",
                socket.display()
            ),
        );
        let output = attack.build("attack", &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success()
                && stderr.contains(&format!(
                    "declared host path `{}` holds a socket, `{}`",
                    sdk.display(),
                    socket.display()
                ))
                && stderr.contains("hint: declare only the subdirectories"),
            "as {who:?}: {stderr}"
        );
        assert!(
            matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "as {who:?}: the build reached the host listener"
        );
        // Without the socket the same recipe builds, and finds nothing to connect to.
        drop(listener);
        std::fs::remove_file(&socket).expect("remove the socket");
        assert_success(&attack.build("attack", &[]), "the build without the socket");
        assert_all_refused(&attack.output_file("attack", "report"), &["connect"], who);
    });
}

/// Issue 20, attack 9 (outputs): `truncate -s 1G "$out/sparse"` became a dense 1 GiB store object, and nothing
/// bounded what a build wrote into `/build`. A sparse file counts at its apparent size; writing past the cap stops
/// the build while it runs (the timeout is there to prove it: without the watchdog the build would sleep into it);
/// a recipe's `max_output_size` sets the cap and `--max-output-size none` lifts it.
#[test]
fn outputs_and_scratch_are_capped_and_sparse_files_count_at_their_apparent_size() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe("attack", "", "truncate -s 1G \"$out/sparse\"");
        let output = attack.build("attack", &["--max-output-size", "64M"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success()
                && stderr.contains("the build exceeded its max-output-size of 64 MiB")
                && stderr.contains("--max-output-size"),
            "as {who:?}: {stderr}"
        );
        assert!(
            store_bytes(&attack) < 64 << 20,
            "as {who:?}: the store holds {} bytes after the refused build",
            store_bytes(&attack)
        );

        attack.recipe(
            "attack",
            "",
            "dd if=/dev/zero of=/build/fill bs=1M count=1024 2> /dev/null; sleep 300",
        );
        let output = attack.build("attack", &["--max-output-size", "16M", "--timeout", "120s"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("max-output-size of 16 MiB"),
            "as {who:?}: {stderr}"
        );

        attack.recipe(
            "attack",
            "[targets.cpu.limits]\nmax_output_size = \"8M\"",
            "truncate -s 32M \"$out/sparse\"",
        );
        let output = attack.build("attack", &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("max-output-size of 8 MiB"),
            "as {who:?}: {stderr}"
        );
        assert_success(
            &attack.build("attack", &["--max-output-size", "none"]),
            "the build with the cap lifted",
        );
    });
}

/// The apparent size of everything in the case's store.
fn store_bytes(attack: &Attack) -> u64 {
    let mut total = 0;
    let mut pending = vec![attack.env.store()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("stat store entry");
        total += meta.len();
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("list store dir") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    total
}

/// Issue 20, attack 10: no default memory cap. Each process of a build gets `RLIMIT_DATA` at half the machine's
/// RAM unless the recipe or the command line lifts it.
#[test]
fn memory_is_capped_by_default_and_none_lifts_it() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    let kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    let half = kib * 1024 / 2;
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            r#"grep -E '^Max data size' /proc/self/limits | awk '{ $1 = $1; print }' > "$out/limits""#,
        );
        assert_success(
            &attack.build("attack", &[]),
            "the build under the default cap",
        );
        assert_eq!(
            attack.output_file("attack", "limits"),
            format!("Max data size {half} {half} bytes\n"),
            "as {who:?}"
        );
        // Limits are not part of the key: a changed script makes the second build run rather than hit the cache.
        attack.recipe(
            "attack",
            "",
            r#"grep -E '^Max data size' /proc/self/limits | awk '{ $1 = $1; print }' > "$out/limits" # lifted"#,
        );
        assert_success(
            &attack.build("attack", &["--max-memory", "none"]),
            "the build with the cap lifted",
        );
        assert_eq!(
            attack.output_file("attack", "limits"),
            "Max data size unlimited unlimited bytes\n",
            "as {who:?}"
        );
    });
}
