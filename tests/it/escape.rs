//! The sandbox escape suite of issue 8: each reproduction found against the sandbox, run as a real `hstore build`
//! whose script attempts the escape, asserting that it fails.
//!
//! Every case runs twice: as the user running the tests (root in CI and on the dev machines, where hstore's
//! sandbox once let a build remount `/usr` writable) and as an unprivileged user (`nobody`, through `setpriv`),
//! with a copy of the `hstore` binary and a store that user owns. A case that cannot switch users fails; it does
//! not skip. Scripts report each attempt as `<name> refused` or `<name> ESCAPED` into `$out/report` (or
//! `/build/report` for builds that must fail); the test asserts every expected line says `refused`, so a script
//! that silently skipped an attempt fails too.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hstore_test_support::TestEnv;

mod scratch;

/// Who runs `hstore`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum As {
    /// The user running the tests.
    Caller,
    /// uid/gid 65534 with no supplementary groups.
    Nobody,
}

const NOBODY: u32 = 65534;

/// A shell function the scripts use: `try NAME COMMAND…` prints `NAME refused` when COMMAND fails.
const TRY: &str = r#"try() { name=$1; shift; if "$@" > /dev/null 2>&1; then echo "$name ESCAPED"; else echo "$name refused"; fi; }"#;

/// One project owned by the user the case runs as: `src/a` stored as a `path` source, recipes, a lockfile.
struct Attack {
    env: TestEnv,
    who: As,
    hstore: PathBuf,
}

impl Attack {
    fn new(who: As) -> Self {
        let env = TestEnv::new();
        let project = env.root().join("project");
        for dir in ["recipes", "src"] {
            std::fs::create_dir_all(project.join(dir)).expect("create project dir");
        }
        std::fs::write(project.join("src/a"), "original\n").expect("write source");
        let hstore = match who {
            As::Caller => PathBuf::from(env!("CARGO_BIN_EXE_hstore")),
            As::Nobody => {
                // The build tree may sit under a 0700 home; nobody runs its own copy.
                // Copied by a `cp` process, not through a descriptor of ours: a write descriptor open here would be
                // inherited by any child another test thread forks meanwhile, and exec of the copy would then fail
                // with ETXTBSY ("Text file busy") until that child execs.
                let copy = env.root().join("hstore");
                let copied = std::process::Command::new("cp")
                    .arg(env!("CARGO_BIN_EXE_hstore"))
                    .arg(&copy)
                    .status()
                    .expect("run cp");
                assert!(copied.success(), "cp hstore: {copied}");
                copy
            }
        };
        let attack = Attack { env, who, hstore };
        if who == As::Nobody {
            chown_tree(attack.env.root(), NOBODY);
        }
        let stored = attack.run(&["store", "add", "src"]);
        assert_success(&stored, "store add");
        let address = String::from_utf8_lossy(&stored.stdout).trim().to_owned();
        std::fs::write(
            attack.project().join("lockfile.json"),
            format!(
                r#"{{"version":1,"recipes":[{recipes}],"artifacts":[{{"kind":"path","id":"path+src","path":"src","address":"{address}","size":9}}]}}"#,
                recipes = ["attack", "victim"]
                    .map(|name| format!(
                        r#"{{"name":"{name}","sources":[{{"name":"code","spec":{{"kind":"path","path":"../src","exclude":[]}},"artifacts":["path+src"]}}]}}"#
                    ))
                    .join(",")
            ),
        )
        .expect("write lockfile");
        attack.recipe("victim", "", r#"cat "$src_code/a" > "$out/a""#);
        attack
    }

    fn project(&self) -> PathBuf {
        self.env.root().join("project")
    }

    /// Writes `recipes/<name>.toml` with a `cpu` target (plus `target_extra` TOML) running `script`.
    fn recipe(&self, name: &str, target_extra: &str, script: &str) {
        let path = self.project().join("recipes").join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[recipe]\nname = \"{name}\"\n\n[sources.code]\npath = \"../src\"\n\n[targets.cpu]\n{target_extra}\n\n\
                 [build]\nscript = '''\n{TRY}\n{script}\n'''\n"
            ),
        )
        .expect("write recipe");
        if self.who == As::Nobody {
            chown_tree(&path, NOBODY);
        }
    }

    /// `hstore ARGS` in the project, as the case's user, with `wrap` around it (`script`, a shell) if given.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.env.command(&self.hstore);
        command.current_dir(self.project()).args(args);
        if self.who == As::Nobody {
            self.as_nobody(&mut command);
        }
        command
    }

    fn as_nobody(&self, command: &mut Command) {
        // `setpriv` rather than `Command::uid`, so that the user switch is an observable program that must exist.
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        let mut wrapped = self.env.command("setpriv");
        wrapped
            .current_dir(self.project())
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--",
            ])
            .arg(program)
            .args(args);
        *command = wrapped;
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = self
            .command(args)
            .output()
            .unwrap_or_else(|error| panic!("run hstore {args:?} as {:?}: {error}", self.who));
        if self.who == As::Nobody {
            self.assert_store_owned_by_nobody();
        }
        output
    }

    /// Proves the user switch happened: everything hstore wrote in the store belongs to nobody.
    fn assert_store_owned_by_nobody(&self) {
        let mut pending = vec![self.env.store()];
        while let Some(path) = pending.pop() {
            let meta = std::fs::symlink_metadata(&path).expect("stat store entry");
            assert_eq!(
                meta.uid(),
                NOBODY,
                "`{}` was not written by nobody: the user switch did not happen",
                path.display()
            );
            if meta.is_dir() {
                for entry in std::fs::read_dir(&path).expect("list store dir") {
                    pending.push(entry.expect("entry").path());
                }
            }
        }
    }

    fn build(&self, recipe: &str, extra: &[&str]) -> Output {
        let link = format!("out-{recipe}");
        let mut args = vec!["build", recipe, "--target", "cpu", "--out-link", &link];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn output_file(&self, recipe: &str, name: &str) -> String {
        let path = self.project().join(format!("out-{recipe}")).join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }
}

fn chown_tree(root: &Path, uid: u32) {
    let status = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(root)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown -R {uid} {}", root.display());
}

#[track_caller]
fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts that `report` holds exactly `expected` attempts, each refused.
#[track_caller]
fn assert_all_refused(report: &str, expected: &[&str], who: As) {
    for name in expected {
        assert!(
            report.lines().any(|line| line == format!("{name} refused")),
            "as {who:?}: attempt `{name}` was not refused:\n{report}"
        );
    }
    assert!(
        !report.contains("ESCAPED") && report.lines().count() == expected.len(),
        "as {who:?}: unexpected report:\n{report}"
    );
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn both(case: impl Fn(As)) {
    case(As::Caller);
    case(As::Nobody);
}

/// Defect 1: `mount -o remount,bind,rw` of an input rewrote the store's materialized tree, and `/usr` became
/// writable when hstore ran as root. The build holds no capability and the seccomp filter refuses mount and
/// namespace calls.
#[test]
fn a_build_cannot_remount_inputs_or_the_base_system_writable() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            r#"{
  try remount-input mount -o remount,bind,rw "$src_code"
  try write-input sh -c 'echo TAMPERED > "$src_code/a"'
  try remount-usr mount -o remount,bind,rw /usr
  try write-usr touch /usr/hstore-escape
  try mount-tmpfs mount -t tmpfs none "$src_code"
  try unshare-user unshare -r sh -c 'mount -o remount,bind,rw "$src_code" && echo TAMPERED > "$src_code/a"'
  try unshare-mount unshare -m true
  try capabilities sh -c 'grep -q "^CapEff:\s*0*[1-9a-f]" /proc/self/status || grep -q "^CapBnd:\s*0*[1-9a-f]" /proc/self/status'
  try no-new-privs-off sh -c '! grep -q "^NoNewPrivs:\s*1" /proc/self/status'
} > "$out/report""#,
        );
        assert_success(&attack.build("attack", &[]), "the attack build");
        assert_all_refused(
            &attack.output_file("attack", "report"),
            &[
                "remount-input",
                "write-input",
                "remount-usr",
                "write-usr",
                "mount-tmpfs",
                "unshare-user",
                "unshare-mount",
                "capabilities",
                "no-new-privs-off",
            ],
            who,
        );
        // Another recipe built from the same stored input still sees the original.
        assert_success(&attack.build("victim", &[]), "the victim build");
        assert_eq!(attack.output_file("victim", "a"), "original\n");
        assert!(!Path::new("/usr/hstore-escape").exists());
    });
}

/// Defect 1, on a declared host path: a read-only bind of a host directory stays read-only.
#[test]
fn a_declared_host_path_cannot_be_remounted_writable() {
    both(|who| {
        let attack = Attack::new(who);
        let sdk = attack.env.root().join("sdk");
        std::fs::create_dir(&sdk).expect("create sdk");
        std::fs::write(sdk.join("tool"), "sdk\n").expect("write sdk");
        if who == As::Nobody {
            chown_tree(&sdk, NOBODY);
        }
        attack.recipe(
            "attack",
            &format!("host_paths = [\"{}\"]", sdk.display()),
            &format!(
                r#"{{
  try remount-sdk mount -o remount,bind,rw "{sdk}"
  try write-sdk sh -c 'echo TAMPERED > "{sdk}/tool"'
}} > "$out/report""#,
                sdk = sdk.display()
            ),
        );
        assert_success(&attack.build("attack", &[]), "the attack build");
        assert_all_refused(
            &attack.output_file("attack", "report"),
            &["remount-sdk", "write-sdk"],
            who,
        );
        assert_eq!(
            std::fs::read_to_string(sdk.join("tool")).expect("read sdk"),
            "sdk\n"
        );
    });
}

/// Defect 2: `hstore build … 7</ 8>>hostlog` let the build read the host root through `/proc/1/fd/7` and append
/// to a host file through fd 8. Only stdin (`/dev/null`), stdout and stderr cross.
#[test]
fn the_callers_descriptors_do_not_reach_the_build() {
    both(|who| {
        let attack = Attack::new(who);
        let host_log = attack.env.root().join("hostlog");
        std::fs::write(&host_log, "host\n").expect("write host log");
        if who == As::Nobody {
            chown_tree(&host_log, NOBODY);
        }
        attack.recipe(
            "attack",
            "",
            r#"{
  try fd7-self ls /proc/self/fd/7/
  try fd7-init ls /proc/1/fd/7/
  try fd7-shadow cat /proc/1/fd/7/etc/hostname
  try fd8-self sh -c 'echo TAMPERED >&8'
  try fd8-init sh -c 'echo TAMPERED >> /proc/1/fd/8'
  try extra-fds sh -c 'test "$(ls /proc/self/fd | wc -l)" -gt 4'
  try stdin-not-null sh -c '! test "$(readlink /proc/self/fd/0)" = /dev/null'
} > "$out/report""#,
        );
        let mut command = attack.command(&[
            "build",
            "attack",
            "--target",
            "cpu",
            "--out-link",
            "out-attack",
        ]);
        // The shell opens the two descriptors the attack expects, then becomes the command.
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        let mut shell = attack.env.command("bash");
        shell
            .current_dir(attack.project())
            .arg("-c")
            .arg(r#"exec "$@" 7</ 8>>"$HOSTLOG""#)
            .arg("bash")
            .arg(program)
            .args(args)
            .env("HOSTLOG", &host_log);
        command = shell;
        let output = command.output().expect("run hstore through bash");
        assert_success(&output, "the attack build");
        assert_all_refused(
            &attack.output_file("attack", "report"),
            &[
                "fd7-self",
                "fd7-init",
                "fd7-shadow",
                "fd8-self",
                "fd8-init",
                "extra-fds",
                "stdin-not-null",
            ],
            who,
        );
        assert_eq!(
            std::fs::read_to_string(&host_log).expect("read host log"),
            "host\n"
        );
    });
}

/// Defect 3: the build kept the caller's terminal and injected keystrokes with TIOCSTI. It now runs in a session
/// of its own: no controlling terminal, `/dev/tty` unopenable, TIOCSTI refused.
#[test]
fn the_build_cannot_reach_the_callers_terminal() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            r#"{
  try open-dev-tty sh -c ': < /dev/tty'
  try tiocsti-dev-tty python3 -c 'import fcntl, termios; fcntl.ioctl(open("/dev/tty", "w"), termios.TIOCSTI, b"x")'
  try tiocsti-stderr python3 -c 'import fcntl, termios; fcntl.ioctl(2, termios.TIOCSTI, b"x")'
  try controlling-tty sh -c 'test "$(cut -d" " -f7 /proc/self/stat)" != 0'
} > "$out/report""#,
        );
        // `script` gives hstore a pseudo-terminal as its controlling terminal, as an interactive shell would.
        let command = attack.command(&[
            "build",
            "attack",
            "--target",
            "cpu",
            "--out-link",
            "out-attack",
        ]);
        let line = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|arg| shell_quote(&arg.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut under_pty = attack.env.command("script");
        under_pty.current_dir(attack.project()).args([
            "--quiet",
            "--return",
            "--command",
            &line,
            "/dev/null",
        ]);
        let output = under_pty.output().expect("run hstore under script(1)");
        assert_success(&output, "the attack build under a terminal");
        assert_all_refused(
            &attack.output_file("attack", "report"),
            &[
                "open-dev-tty",
                "tiocsti-dev-tty",
                "tiocsti-stderr",
                "controlling-tty",
            ],
            who,
        );
    });
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Defect 4: a failed build that did `cp python3 $out/py; chmod 4755 $out/py` left a root setuid binary in a
/// 0755 temp directory. The mode change is refused, the writable mounts are nosuid,nodev, the scratch
/// directories are 0700, and no setuid/setgid file is left anywhere in the store.
#[test]
fn a_failed_build_leaves_no_setuid_file_behind() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            r#"cp "$(command -v python3)" "$out/py"
{
  try chmod-setuid chmod 4755 "$out/py"
  try chmod-setgid chmod 2755 "$out/py"
  try install-setuid install -m 4755 /bin/sh /build/sh
  try creat-setuid python3 -c 'import os; os.close(os.open(os.environ["out"] + "/c", os.O_CREAT | os.O_WRONLY, 0o4755))'
  try mknod-setuid python3 -c 'import os, stat; os.mknod("/build/n", stat.S_IFREG | 0o6755)'
  for dir in /build "$out" /tmp "$HOME"; do
    try "suid-$dir" sh -c "! awk '\$5 == \"$dir\" { print \$6 }' /proc/self/mountinfo | grep -q nosuid,nodev"
  done
} > /build/report
exit 1"#,
        );
        let output = attack.build("attack", &[]);
        assert!(
            !output.status.success(),
            "as {who:?}: the build should fail with the script's exit 1"
        );
        let mut reports = Vec::new();
        let mut pending = vec![attack.env.store()];
        while let Some(path) = pending.pop() {
            let meta = std::fs::symlink_metadata(&path).expect("stat store entry");
            let mode = meta.permissions().mode();
            assert_eq!(
                mode & 0o6000,
                0,
                "as {who:?}: `{}` has mode {mode:o}",
                path.display()
            );
            if meta.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("dir-"))
                {
                    assert_eq!(
                        mode & 0o777,
                        0o700,
                        "as {who:?}: scratch `{}`",
                        path.display()
                    );
                }
                for entry in std::fs::read_dir(&path).expect("list store dir") {
                    pending.push(entry.expect("entry").path());
                }
            } else if path.ends_with("build/report") {
                reports.push(std::fs::read_to_string(&path).expect("read report"));
            }
        }
        assert_eq!(
            reports.len(),
            1,
            "as {who:?}: the failed build's kept report"
        );
        let home = "/homeless";
        assert_all_refused(
            &reports[0],
            &[
                "chmod-setuid",
                "chmod-setgid",
                "install-setuid",
                "creat-setuid",
                "mknod-setuid",
                "suid-/build",
                "suid-/out",
                "suid-/tmp",
                &format!("suid-{home}"),
            ],
            who,
        );
    });
}

/// Defect 11: a build over its wall-clock or log limit fails with an error naming the limit and its flag.
#[test]
fn limits_stop_a_build_and_are_named() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe("attack", "", "sleep 300");
        let output = attack.build("attack", &["--timeout", "2s"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success()
                && stderr.contains("wall-clock time limit of 2s")
                && stderr.contains("--timeout"),
            "as {who:?}: {stderr}"
        );
        attack.recipe("attack", "", "yes hstore-flood");
        let output = attack.build("attack", &["--max-log-size", "1M"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success()
                && stderr.contains("log size limit of 1 MiB")
                && stderr.contains("--max-log-size"),
            "as {who:?}: {stderr}"
        );
        attack.recipe(
            "attack",
            "",
            r#"grep -E '^Max (processes|data size)' /proc/self/limits | awk '{ $1 = $1; print }' > "$out/limits"
python3 -c '
import os
pids = []
try:
    for _ in range(128):
        pid = os.fork()
        if pid == 0:
            os.pause()
        pids.append(pid)
    print("fork ESCAPED")
except OSError:
    print("fork refused")
for pid in pids:
    os.kill(pid, 9)
' > "$out/fork""#,
        );
        assert_success(
            &attack.build("attack", &["--max-processes", "64", "--max-memory", "1G"]),
            "the build under limits",
        );
        assert_eq!(
            attack.output_file("attack", "limits"),
            "Max data size 1073741824 1073741824 bytes\nMax processes 64 64 processes\n"
        );
        // A root-run build is a build user, not host root (whom the kernel exempts from RLIMIT_NPROC).
        assert_eq!(attack.output_file("attack", "fork"), "fork refused\n");
    });
}

/// Defect 11: a recipe's `limits` tables set limits (the target's over `[build]`'s), flags override both, and a
/// bad value is named with its table and key.
#[test]
fn recipe_limits_apply_and_flags_override_them() {
    let attack = Attack::new(As::Caller);
    attack.recipe(
        "attack",
        "[targets.cpu.limits]\nmax_processes = 50\ntimeout = \"2s\"",
        r#"grep -E '^Max processes' /proc/self/limits | awk '{ $1 = $1; print }' > "$out/limits"
test -z "$SLEEP" || sleep "$SLEEP""#,
    );
    assert_success(
        &attack.build("attack", &[]),
        "the build under recipe limits",
    );
    assert_eq!(
        attack.output_file("attack", "limits"),
        "Max processes 50 50 processes\n"
    );
    // Limits are not part of the key: `--check` rebuilds the same key with the flag's limit, and the only
    // difference it finds is the file recording that limit.
    let output = attack.build("attack", &["--max-processes", "64", "--check"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains("not reproducible")
            && stderr.contains("limits (contents differ)")
            && stderr.matches("(contents differ)").count() == 1,
        "{stderr}"
    );

    attack.recipe(
        "attack",
        "[targets.cpu.limits]\ntimeout = \"2s\"",
        "echo started > \"$out/s\"; sleep 300",
    );
    let output = attack.build("attack", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("wall-clock time limit of 2s"),
        "{stderr}"
    );

    attack.recipe("attack", "[targets.cpu.limits]\ntimeout = \"soon\"", "true");
    let output = attack.build("attack", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains("`targets.cpu.limits.timeout` is invalid")
            && stderr.contains("`soon` is not a duration")
            && stderr.contains("hint:"),
        "{stderr}"
    );
}

/// Issue 20, attack 1: run as root, a build wrote `/proc/sys/kernel/core_pattern = "|/bin/sh -c …"`, and the next
/// crash ran the command on the host as real root (`kernel.panic`, `fs.file-max`, `vm.drop_caches` were writable
/// too). A root-run build is a build user, never host uid 0, and `/proc/sys`, `/proc/sysrq-trigger` are read-only:
/// every write is refused. Each setting is written back with the value just read, and the files that act on any
/// write are only opened, so even a failing protection would change nothing on the machine running the tests.
#[test]
fn a_build_cannot_write_the_hosts_kernel_settings() {
    let read_core_pattern =
        || std::fs::read_to_string("/proc/sys/kernel/core_pattern").expect("read core_pattern");
    both(|who| {
        let before = read_core_pattern();
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            r#"{
  for setting in kernel/core_pattern kernel/panic fs/file-max; do
    cat "/proc/sys/$setting" > /tmp/value
    try "$setting" sh -c "cat /tmp/value > /proc/sys/$setting"
  done
  try open-drop-caches python3 -c 'import os; os.close(os.open("/proc/sys/vm/drop_caches", os.O_WRONLY))'
  try open-sysrq-trigger python3 -c 'import os; os.close(os.open("/proc/sysrq-trigger", os.O_WRONLY))'
  try host-uid-0 sh -c 'awk "\$1 == 0 && \$2 == 0" /proc/self/uid_map | grep -q .'
} > "$out/report""#,
        );
        assert_success(&attack.build("attack", &[]), "the attack build");
        assert_all_refused(
            &attack.output_file("attack", "report"),
            &[
                "kernel/core_pattern",
                "kernel/panic",
                "fs/file-max",
                "open-drop-caches",
                "open-sysrq-trigger",
                "host-uid-0",
            ],
            who,
        );
        assert_eq!(
            read_core_pattern(),
            before,
            "as {who:?}: core_pattern changed"
        );
    });
}

/// A uniquely named file planted in the host's `/etc/ssl/private`, removed again when dropped (a failing test
/// unwinds through the drop too), with the directory if it was created for it.
struct PlantedKey {
    path: PathBuf,
    created_dir: bool,
}

impl PlantedKey {
    fn new() -> Self {
        assert!(
            is_root(),
            "planting a key in /etc/ssl/private needs root: run the suite as root, as CI does"
        );
        let dir = Path::new("/etc/ssl/private");
        let created_dir = !dir.exists();
        if created_dir {
            std::fs::create_dir_all(dir).expect("create /etc/ssl/private");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .expect("chmod /etc/ssl/private");
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let path = dir.join(format!("hstore-test-{}-{nanos}.key", std::process::id()));
        let key = PlantedKey { path, created_dir };
        std::fs::write(&key.path, "-----BEGIN PRIVATE KEY-----\nhstore test\n")
            .expect("plant the key");
        std::fs::set_permissions(&key.path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the key");
        key
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .expect("key name")
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for PlantedKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if self.created_dir {
            let _ = std::fs::remove_dir(self.path.parent().expect("key dir"));
        }
    }
}

/// Issue 20, attack 4: run as root, the build read `/etc/ssl/private/*.key` (the sandbox bound all of `/etc/ssl`
/// and `/etc/pki`), and the host's TLS private key landed world-readable in the store. Only the CA certificates of
/// `/etc` (and OpenSSL's configuration) are bound now: a key planted in the host's `/etc/ssl/private` is not there,
/// while `/etc/ssl/certs` is.
#[test]
fn a_build_cannot_read_the_hosts_tls_private_keys() {
    let key = PlantedKey::new();
    let name = key.name();
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            &format!(
                r#"{{
  try read-key cat /etc/ssl/private/{name}
  try list-ssl-private ls /etc/ssl/private
  try list-pki-private ls /etc/pki/tls/private
  try find-key sh -c 'find / -xdev -name {name} 2>/dev/null | grep -q . || find /etc -name {name} | grep -q .'
}} > "$out/report"
ls /etc/ssl > "$out/ssl" 2>/dev/null || true"#
            ),
        );
        assert_success(&attack.build("attack", &[]), "the attack build");
        assert_all_refused(
            &attack.output_file("attack", "report"),
            &[
                "read-key",
                "list-ssl-private",
                "list-pki-private",
                "find-key",
            ],
            who,
        );
        // `ls` sorts bytewise here: the build's environment sets no locale.
        let mut expected: Vec<&str> = ["ca-bundle.pem", "cert.pem", "certs", "openssl.cnf"]
            .into_iter()
            .filter(|entry| Path::new("/etc/ssl").join(entry).exists())
            .collect();
        expected.sort_unstable();
        assert_eq!(
            attack.output_file("attack", "ssl"),
            expected
                .iter()
                .flat_map(|entry| [entry, "\n"])
                .collect::<String>(),
            "as {who:?}: /etc/ssl inside holds the host's CA certificates and OpenSSL's configuration, nothing else"
        );
    });
    assert!(key.path.exists(), "the planted key is still on the host");
}

/// Issue 20, attack 10: run as root with `--max-processes 64`, 400 processes ran (the kernel exempts host uid 0
/// from `RLIMIT_NPROC`). A root-run build is a build user, so the limit holds.
#[test]
fn max_processes_holds_for_a_root_run_build() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            r#"python3 -c '
import os
pids = []
try:
    for _ in range(400):
        pid = os.fork()
        if pid == 0:
            os.pause()
            os._exit(0)
        pids.append(pid)
    print("fork-400 ESCAPED")
except OSError:
    print("fork-400 refused")
for pid in pids:
    os.kill(pid, 9)
' > "$out/report""#,
        );
        assert_success(
            &attack.build("attack", &["--max-processes", "64"]),
            "the build under --max-processes 64",
        );
        assert_all_refused(&attack.output_file("attack", "report"), &["fork-400"], who);
    });
}

/// Issue 20, item 1: a root hstore in a user namespace without the build users' ids (`unshare --map-root-user`, as
/// `scripts/demo.sh` runs the air-gapped side) has no other id to give its builds: it says so once and builds as
/// its own uid 0, like an unprivileged caller; `/proc/sys` stays read-only.
#[test]
fn a_root_hstore_in_a_namespace_without_build_users_warns_and_builds() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            r#"{
  cat /proc/sys/kernel/core_pattern > /tmp/value
  try core-pattern sh -c "cat /tmp/value > /proc/sys/kernel/core_pattern"
} > "$out/report""#,
        );
        let mut command = attack.env.command("unshare");
        command
            .current_dir(attack.project())
            .args(["--map-root-user", "--"])
            .arg(&attack.hstore)
            .args([
                "build",
                "attack",
                "--target",
                "cpu",
                "--out-link",
                "out-attack",
            ]);
        if who == As::Nobody {
            attack.as_nobody(&mut command);
        }
        let output = command.output().expect("run hstore under unshare");
        if who == As::Nobody {
            attack.assert_store_owned_by_nobody();
        }
        assert_success(&output, "the build under unshare --map-root-user");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr
                .matches("are not mapped in this user namespace (`/proc/self/uid_map`: 0 ")
                .count(),
            1,
            "as {who:?}: {stderr}"
        );
        assert_all_refused(
            &attack.output_file("attack", "report"),
            &["core-pattern"],
            who,
        );
    });
}

mod confine;
