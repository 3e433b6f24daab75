//! Real namespace tests of hstore-sandbox: every case starts actual sandboxes on this machine.
//!
//! This is a `harness = false` binary because the sandbox needs a helper executable whose `main` dispatches
//! [`HELPER_ARG`]: this binary is its own helper. It also re-executes itself once with a marker variable set, so
//! that "the host environment is invisible" is tested against a variable really present in the caller.
//! Network traffic is only ever aimed at 127.0.0.1.

// clippy.toml's house rules are the product's: tests read their own switches and clean up fixtures by path.
#![allow(clippy::disallowed_methods)]
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test runner reports on the terminal"
)]

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use hstore_sandbox::build_users::{BUILD_ID_COUNT, FIRST_BUILD_ID};
use hstore_sandbox::{
    Bind, BuildOutput, BuildStatus, BuildUser, Error, HELPER_ARG, Limits, Sandbox, SandboxSpec,
    check_available, helper_main,
};

/// Set in the runner's own environment; the build must not see it.
const SECRET_VAR: &str = "HSTORE_SANDBOX_TEST_SECRET";
const SECRET_VALUE: &str = "host-secret-value";
/// Second argument that makes this binary probe for namespaces (run inside a restricted user namespace).
const PROBE_ARG: &str = "__probe-for-test";

type Outcome = Result<(), String>;
type Case = (&'static str, fn(&Sandbox) -> Outcome);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(HELPER_ARG) {
        helper_main();
    }
    if args.get(1).map(String::as_str) == Some(PROBE_ARG) {
        return probe_and_print();
    }
    let Ok(me) = std::env::current_exe() else {
        eprintln!("cannot find the test binary");
        return ExitCode::FAILURE;
    };
    if std::env::var_os(SECRET_VAR).is_none() {
        // Re-run with the secret in the environment; `set_var` is unsafe and this crate forbids unsafe code.
        return match Command::new(&me)
            .args(&args[1..])
            .env(SECRET_VAR, SECRET_VALUE)
            .status()
        {
            Ok(status) if status.success() => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        };
    }

    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let cases: &[Case] = &[
        ("namespaces_are_available", namespaces_are_available),
        ("script_writes_output_and_log", script_writes_output_and_log),
        (
            "exit_status_and_signal_are_reported",
            exit_status_and_signal_are_reported,
        ),
        (
            "only_loopback_exists_and_is_up",
            only_loopback_exists_and_is_up,
        ),
        ("host_loopback_is_unreachable", host_loopback_is_unreachable),
        (
            "inputs_are_read_only_and_host_is_hidden",
            inputs_are_read_only_and_host_is_hidden,
        ),
        (
            "environment_is_exactly_the_spec",
            environment_is_exactly_the_spec,
        ),
        ("identity_pid_and_devices", identity_pid_and_devices),
        (
            "missing_host_path_fails_before_running",
            missing_host_path_fails_before_running,
        ),
        (
            "declared_host_path_is_bound_read_only",
            declared_host_path_is_bound_read_only,
        ),
        ("setup_failure_is_readable", setup_failure_is_readable),
        ("exec_failure_is_readable", exec_failure_is_readable),
        (
            "helper_without_hook_is_diagnosed",
            helper_without_hook_is_diagnosed,
        ),
        (
            "disabled_user_namespaces_are_diagnosed",
            disabled_user_namespaces_are_diagnosed,
        ),
        ("c_compiler_works_inside", c_compiler_works_inside),
        (
            "leftover_processes_are_killed",
            leftover_processes_are_killed,
        ),
        ("concurrent_runs_from_threads", concurrent_runs_from_threads),
        (
            "build_holds_no_capabilities_and_cannot_remount",
            build_holds_no_capabilities_and_cannot_remount,
        ),
        (
            "caller_descriptors_do_not_reach_the_build",
            caller_descriptors_do_not_reach_the_build,
        ),
        (
            "build_has_no_controlling_terminal",
            build_has_no_controlling_terminal,
        ),
        (
            "setuid_bits_are_refused_and_stripped",
            setuid_bits_are_refused_and_stripped,
        ),
        (
            "wall_clock_limit_stops_the_build",
            wall_clock_limit_stops_the_build,
        ),
        (
            "log_size_limit_stops_the_build",
            log_size_limit_stops_the_build,
        ),
        ("cpu_limit_is_named", cpu_limit_is_named),
        (
            "process_memory_and_tmpfs_limits_apply",
            process_memory_and_tmpfs_limits_apply,
        ),
        (
            "a_root_callers_build_runs_as_a_build_user",
            a_root_callers_build_runs_as_a_build_user,
        ),
        (
            "concurrent_builds_never_share_a_build_user",
            concurrent_builds_never_share_a_build_user,
        ),
        (
            "a_store_under_a_root_only_directory_is_bound",
            a_store_under_a_root_only_directory_is_bound,
        ),
        (
            "host_kernel_settings_cannot_be_written",
            host_kernel_settings_cannot_be_written,
        ),
        (
            "etc_holds_only_loader_files_and_ca_certificates",
            etc_holds_only_loader_files_and_ca_certificates,
        ),
        (
            "host_cgroup_command_line_and_paths_are_hidden",
            host_cgroup_command_line_and_paths_are_hidden,
        ),
        (
            "a_base_root_replaces_the_host_base_system",
            a_base_root_replaces_the_host_base_system,
        ),
        (
            "a_missing_or_invalid_base_root_is_named_with_a_hint",
            a_missing_or_invalid_base_root_is_named_with_a_hint,
        ),
        (
            "start_up_with_a_base_root_and_the_host_root",
            start_up_with_a_base_root_and_the_host_root,
        ),
    ];
    let sandbox = Sandbox::new(&me);
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match case(&sandbox) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(why) => {
                println!(
                    "test {name} ... FAILED\n    {}",
                    why.replace('\n', "\n    ")
                );
                failed += 1;
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!("\ntest result: {verdict}. {passed} passed; {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A temporary build: a host build directory, a host output directory at `/out` inside, and the log file.
struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
    build: PathBuf,
    out: PathBuf,
    log: PathBuf,
}

impl Scratch {
    fn new() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let root = dir.path().to_path_buf();
        let (build, out) = (root.join("build"), root.join("out"));
        for d in [&build, &out] {
            fs::create_dir(d).map_err(|e| e.to_string())?;
        }
        Ok(Scratch {
            log: root.join("build.log"),
            _dir: dir,
            root,
            build,
            out,
        })
    }

    fn spec(&self, script: &str) -> SandboxSpec {
        SandboxSpec::shell(script, &self.build, Bind::new(&self.out, "/out"))
    }

    fn run(&self, sandbox: &Sandbox, spec: &SandboxSpec) -> Result<BuildStatus, String> {
        sandbox
            .run(spec, BuildOutput::LogFile(self.log.clone()))
            .map_err(|e| format!("sandbox error: {}", chain(&e)))
    }

    /// Runs a script that must succeed; returns its log.
    fn ok(&self, sandbox: &Sandbox, spec: &SandboxSpec) -> Result<String, String> {
        let status = self.run(sandbox, spec)?;
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        if status.success() {
            Ok(log)
        } else {
            Err(format!("build ended with {status}; log:\n{log}"))
        }
    }

    fn output(&self, name: &str) -> Result<String, String> {
        fs::read_to_string(self.out.join(name)).map_err(|e| format!("output `{name}`: {e}"))
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, "\n  caused by: {cause}");
        source = cause.source();
    }
    text
}

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Outcome {
    if condition { Ok(()) } else { Err(what()) }
}

fn namespaces_are_available(sandbox: &Sandbox) -> Outcome {
    let started = std::time::Instant::now();
    check_available(sandbox.helper_exe()).map_err(|e| chain(&e))?;
    println!("    (probe took {:?})", started.elapsed());
    Ok(())
}

fn script_writes_output_and_log(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let log = s.ok(
        sandbox,
        &s.spec("echo hello > \"$out/result\"; echo to-stdout; echo to-stderr >&2; echo scratch > /build/file"),
    )?;
    ensure(s.output("result")? == "hello\n", || {
        "wrong output content".into()
    })?;
    ensure(
        log.contains("to-stdout") && log.contains("to-stderr"),
        || format!("log lacks output: {log:?}"),
    )?;
    ensure(s.build.join("file").exists(), || {
        "the build directory is not the host's".into()
    })
}

fn exit_status_and_signal_are_reported(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let status = s.run(sandbox, &s.spec("echo partial > \"$out/p\"; exit 3"))?;
    ensure(status == BuildStatus::Exited(3), || {
        format!("expected exit 3, got {status}")
    })?;
    let status = s.run(sandbox, &s.spec("kill -TERM $$"))?;
    ensure(status == BuildStatus::Signaled(15), || {
        format!("expected signal 15, got {status}")
    })?;
    // SIGPIPE must have its default action in the build, even though the helper is a Rust program.
    let log = s.ok(sandbox, &s.spec("yes | head -n 2; echo done"))?;
    ensure(log == "y\ny\ndone\n", || {
        format!("pipeline output: {log:?}")
    })
}

fn only_loopback_exists_and_is_up(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    s.ok(
        sandbox,
        &s.spec("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > \"$out/ifaces\"; ip -o link > \"$out/link\""),
    )?;
    let interfaces = s.output("ifaces")?;
    ensure(interfaces == "lo\n", || {
        format!("interfaces inside: {interfaces:?}")
    })?;
    let link = s.output("link")?;
    ensure(
        link.lines().count() == 1 && link.contains("lo:") && link.contains(",UP"),
        || format!("`ip -o link` inside: {link:?}"),
    )
}

fn host_loopback_is_unreachable(sandbox: &Sandbox) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let probe = format!("echo hi > /dev/tcp/127.0.0.1/{port}");
    // Control: the same probe from the host reaches the listener, so a failure inside means isolation.
    let host = Command::new("/bin/bash")
        .args(["-c", &probe])
        .status()
        .map_err(|e| e.to_string())?;
    ensure(host.success(), || {
        "control: bash could not reach the host listener from the host".into()
    })?;
    let _ = listener.accept().map_err(|e| e.to_string())?;

    let s = Scratch::new()?;
    let mut spec = s.spec(&format!("if /bin/bash -c '{probe}' 2>\"$out/err\"; then echo reached; else echo refused; fi > \"$out/r\""));
    spec.env.insert("PATH".into(), "/usr/bin:/bin".into());
    s.ok(sandbox, &spec)?;
    let result = s.output("r")?;
    ensure(result == "refused\n", || {
        format!("connect from inside: {result:?}")
    })?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    ensure(listener.accept().is_err(), || {
        "the host listener got a connection from inside".into()
    })
}

fn inputs_are_read_only_and_host_is_hidden(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let input = s.root.join("store-object");
    fs::create_dir(&input).map_err(|e| e.to_string())?;
    fs::write(input.join("data"), "input").map_err(|e| e.to_string())?;
    let mut spec = s.spec(
        "cat /store/obj/data > \"$out/read\"
         if { echo x > /store/obj/data; } 2>\"$out/write-err\"; then echo writable; else echo denied; fi > \"$out/write\"
         if touch /newfile 2>/dev/null; then echo writable; else echo denied; fi > \"$out/root\"
         if touch /usr/hstore-x 2>/dev/null; then echo writable; else echo denied; fi > \"$out/usr\"
         for p in /root/.cargo /root /work \"$HOST_TMP\"; do test -e \"$p\" && echo \"visible $p\"; done > \"$out/visible\"
         true",
    );
    spec.inputs.push(Bind::new(&input, "/store/obj"));
    spec.env
        .insert("HOST_TMP".into(), s.root.display().to_string());
    s.ok(sandbox, &spec)?;
    ensure(s.output("read")? == "input", || "input not readable".into())?;
    let err = s.output("write-err")?;
    ensure(
        s.output("write")? == "denied\n" && err.contains("Read-only file system"),
        || format!("write into input: {err:?}"),
    )?;
    ensure(s.output("root")? == "denied\n", || {
        "the root is writable".into()
    })?;
    ensure(s.output("usr")? == "denied\n", || "/usr is writable".into())?;
    let visible = s.output("visible")?;
    ensure(visible.is_empty(), || {
        format!("host paths visible inside: {visible:?}")
    })?;
    ensure(
        fs::read_to_string(input.join("data")).ok().as_deref() == Some("input"),
        || "input changed".into(),
    )
}

fn environment_is_exactly_the_spec(sandbox: &Sandbox) -> Outcome {
    ensure(
        std::env::var(SECRET_VAR).ok().as_deref() == Some(SECRET_VALUE),
        || "runner lacks the secret".into(),
    )?;
    let s = Scratch::new()?;
    let mut spec = s.spec("env > \"$out/env\"; ls -A \"$HOME\" > \"$out/home\"; test -d \"$HOME\" && echo dir > \"$out/home-kind\"");
    spec.env.insert("FROM_SPEC".into(), "yes".into());
    spec.source_date_epoch = 1_700_000_000;
    s.ok(sandbox, &spec)?;
    let env = s.output("env")?;
    let mut names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    names.sort_unstable();
    // `PWD` is added by the shell itself.
    let expected = [
        "FROM_SPEC",
        "HOME",
        "PATH",
        "PWD",
        "SOURCE_DATE_EPOCH",
        "TERM",
        "TMPDIR",
        "out",
    ];
    ensure(names == expected, || format!("environment inside:\n{env}"))?;
    for line in [
        "SOURCE_DATE_EPOCH=1700000000",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "out=/out",
        "TERM=dumb",
    ] {
        ensure(env.lines().any(|l| l == line), || {
            format!("missing `{line}` in:\n{env}")
        })?;
    }
    ensure(!env.contains(SECRET_VALUE), || {
        "the host environment leaked".into()
    })?;
    ensure(
        s.output("home")?.is_empty() && s.output("home-kind")? == "dir\n",
        || "HOME is not an empty dir".into(),
    )?;
    let s = Scratch::new()?;
    s.ok(sandbox, &s.spec("echo $SOURCE_DATE_EPOCH > \"$out/sde\""))?;
    ensure(s.output("sde")? == "315532800\n", || {
        "default SOURCE_DATE_EPOCH".into()
    })
}

fn identity_pid_and_devices(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    s.ok(
        sandbox,
        &s.spec(
            "echo $$ > \"$out/pid\"; id -u > \"$out/uid\"; whoami > \"$out/user\"; hostname > \"$out/host\"
             grep NoNewPrivs /proc/self/status | tr -d '\\t ' > \"$out/nnp\"
             ls /proc | grep -c '^[0-9]' > \"$out/procs\"
             echo x > /dev/null; head -c 4 /dev/urandom | wc -c > \"$out/random\"
             ls /dev > \"$out/dev\"; pwd > \"$out/pwd\"; echo tmp > /tmp/t && cat /tmp/t > \"$out/tmp\"",
        ),
    )?;
    let pid: u32 = s
        .output("pid")?
        .trim()
        .parse()
        .map_err(|e| format!("pid: {e}"))?;
    ensure(pid <= 3, || {
        format!("pid inside is {pid}, expected a new pid namespace")
    })?;
    ensure(
        s.output("uid")? == "0\n" && s.output("user")? == "root\n",
        || "build user".into(),
    )?;
    ensure(s.output("host")? == "hstore-build\n", || "hostname".into())?;
    ensure(s.output("nnp")? == "NoNewPrivs:1\n", || {
        format!("no_new_privs: {:?}", s.output("nnp"))
    })?;
    let procs: u32 = s
        .output("procs")?
        .trim()
        .parse()
        .map_err(|e| format!("procs: {e}"))?;
    ensure(procs < 10, || {
        format!("{procs} processes visible: /proc is not the sandbox's")
    })?;
    ensure(s.output("random")? == "4\n", || "/dev/urandom".into())?;
    let dev = s.output("dev")?;
    for name in ["null", "zero", "urandom", "fd", "shm", "stdin"] {
        ensure(dev.lines().any(|l| l == name), || {
            format!("/dev lacks {name}: {dev:?}")
        })?;
    }
    ensure(
        !dev.lines()
            .any(|l| l.starts_with("sd") || l.starts_with("vd")),
        || "real devices in /dev".into(),
    )?;
    ensure(
        s.output("pwd")? == "/build\n" && s.output("tmp")? == "tmp\n",
        || "workdir or /tmp".into(),
    )
}

fn missing_host_path_fails_before_running(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let mut spec = s.spec("echo ran > \"$out/ran\"");
    spec.host_paths
        .push(PathBuf::from("/opt/hstore-test-missing-sdk"));
    match sandbox.run(&spec, BuildOutput::Null) {
        Err(Error::MissingHostPath { path, .. })
            if path == Path::new("/opt/hstore-test-missing-sdk") => {}
        other => return Err(format!("expected MissingHostPath, got {other:?}")),
    }
    ensure(!s.out.join("ran").exists(), || {
        "the build ran despite the missing host path".into()
    })
}

fn declared_host_path_is_bound_read_only(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let sdk = s.root.join("opt-sdk");
    fs::create_dir(&sdk).map_err(|e| e.to_string())?;
    fs::write(sdk.join("version"), "sdk 1.0").map_err(|e| e.to_string())?;
    let mut spec = s.spec(&format!(
        "cat {0}/version > \"$out/v\"; if touch {0}/x 2>/dev/null; then echo writable; else echo denied; fi > \"$out/w\"",
        sdk.display()
    ));
    spec.host_paths.push(sdk.clone());
    s.ok(sandbox, &spec)?;
    ensure(
        s.output("v")? == "sdk 1.0" && s.output("w")? == "denied\n",
        || "host path binding".into(),
    )
}

fn setup_failure_is_readable(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let input = s.root.join("input");
    fs::create_dir(&input).map_err(|e| e.to_string())?;
    // The mount point would have to be created inside the read-only `/usr`.
    let mut spec = s.spec("echo ran > \"$out/ran\"");
    spec.inputs
        .push(Bind::new(&input, "/usr/hstore-no-such-dir/input"));
    match sandbox.run(&spec, BuildOutput::Null) {
        Err(e @ Error::Setup { .. }) => {
            let text = chain(&e);
            println!("    (reported: {})", text.replace('\n', " /"));
            ensure(
                text.contains("/usr/hstore-no-such-dir/input")
                    && text.contains("Read-only file system"),
                || format!("unhelpful message: {text}"),
            )?;
        }
        other => return Err(format!("expected Error::Setup, got {other:?}")),
    }
    ensure(!s.out.join("ran").exists(), || {
        "the build ran despite the failed setup".into()
    })
}

fn exec_failure_is_readable(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let spec = SandboxSpec::new(
        vec!["/nonexistent/prog".into()],
        &s.build,
        Bind::new(&s.out, "/out"),
    );
    match sandbox.run(&spec, BuildOutput::Null) {
        Err(e @ Error::Setup { .. }) => {
            let text = chain(&e);
            ensure(
                text.contains("execute `/nonexistent/prog`") && text.contains("No such file"),
                || text.clone(),
            )
        }
        other => Err(format!("expected Error::Setup, got {other:?}")),
    }
}

fn helper_without_hook_is_diagnosed(_: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    match Sandbox::new("/bin/true").run(&s.spec("true"), BuildOutput::Null) {
        Err(Error::HelperSilent { .. }) => Ok(()),
        other => Err(format!("expected HelperSilent, got {other:?}")),
    }
}

/// Inside a user namespace whose `user.max_user_namespaces` is 0, the probe must fail naming that sysctl.
fn disabled_user_namespaces_are_diagnosed(sandbox: &Sandbox) -> Outcome {
    let me = sandbox.helper_exe().display().to_string();
    let script = format!("echo 0 > /proc/sys/user/max_user_namespaces && exec '{me}' {PROBE_ARG}");
    let output = Command::new("unshare")
        .args(["-Ur", "sh", "-c", &script])
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure(output.status.code() == Some(3), || {
        format!("probe child: {:?} {stdout}", output.status)
    })?;
    ensure(
        stdout.contains("user.max_user_namespaces") && stdout.contains("sysctl -w"),
        || stdout.to_string(),
    )
}

/// Run as `PROBE_ARG`: prints the probe's error and hint; exit code 3 for `NamespacesUnavailable`.
fn probe_and_print() -> ExitCode {
    use hstore_store::Hint;
    let Ok(me) = std::env::current_exe() else {
        return ExitCode::FAILURE;
    };
    match check_available(&me) {
        Ok(()) => {
            println!("available");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "error: {}\nhint: {}",
                chain(&e),
                e.hint().unwrap_or_default()
            );
            ExitCode::from(if matches!(e, Error::NamespacesUnavailable { .. }) {
                3
            } else {
                4
            })
        }
    }
}

fn c_compiler_works_inside(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    s.ok(
        sandbox,
        &s.spec(
            "printf '#include <stdio.h>\\nint main(void){puts(\"compiled\");return 0;}\\n' > hello.c
             cc -o \"$out/hello\" hello.c && \"$out/hello\" > \"$out/said\"",
        ),
    )?;
    ensure(s.output("said")? == "compiled\n", || {
        "compiled program output".into()
    })
}

fn concurrent_runs_from_threads(sandbox: &Sandbox) -> Outcome {
    let results: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                scope.spawn(move || {
                    let s = Scratch::new()?;
                    s.ok(
                        sandbox,
                        &s.spec(&format!("sleep 0.2; echo {i} > \"$out/i\"")),
                    )?;
                    s.output("i")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    for (i, result) in results.into_iter().enumerate() {
        ensure(result? == format!("{i}\n"), || {
            format!("run {i} got another run's output")
        })?;
    }
    Ok(())
}

/// A daemon the build leaves behind dies with the namespace's init; the run does not wait for it.
fn leftover_processes_are_killed(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    // Unique to this run: other checkouts on the machine run this test too, and `pgrep` sees all of them.
    let daemon = format!("sleep 60.{}", std::process::id());
    let started = std::time::Instant::now();
    s.ok(
        sandbox,
        &s.spec(&format!(
            "({daemon} > /dev/null 2>&1 &); echo started > \"$out/s\""
        )),
    )?;
    let elapsed = started.elapsed();
    ensure(elapsed.as_secs() < 20, || {
        format!("the run waited for a leftover process ({elapsed:?})")
    })?;
    let survivors = Command::new("pgrep")
        .args(["-x", "-f", &daemon])
        .output()
        .map_err(|e| e.to_string())?;
    ensure(survivors.stdout.is_empty(), || {
        format!(
            "`{daemon}` survived the sandbox: pids {}",
            String::from_utf8_lossy(&survivors.stdout)
        )
    })
}

/// Defect 1 of issue 8: the build keeps no capability, so a read-only bind cannot be remounted writable, and the
/// seccomp filter refuses mount and namespace calls outright.
fn build_holds_no_capabilities_and_cannot_remount(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let input = s.root.join("store-object");
    fs::create_dir(&input).map_err(|e| e.to_string())?;
    fs::write(input.join("data"), "input").map_err(|e| e.to_string())?;
    let mut spec = s.spec(
        r#"grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status > "$out/status"
        try() { name=$1; shift; if "$@" > /dev/null 2>&1; then echo "$name ESCAPED"; else echo "$name refused"; fi; }
        {
          try remount mount -o remount,bind,rw /store/obj
          try remount-usr mount -o remount,bind,rw /usr
          try new-mount mount -t tmpfs none /build
          try unshare-user unshare -r true
          try unshare-mount unshare -m true
          try nested-userns unshare -U true
          try write-input sh -c 'echo TAMPERED > /store/obj/data'
          try write-usr touch /usr/hstore-escape
          try keyctl python3 -c 'import ctypes, sys; sys.exit(ctypes.CDLL(None, use_errno=True).syscall(250, 0, -3, 0) < 0)'
          try ptrace-init python3 -c 'import ctypes, sys; sys.exit(ctypes.CDLL(None).ptrace(16, 1, 0, 0) != 0)'
        } > "$out/attempts""#,
    );
    spec.inputs.push(Bind::new(&input, "/store/obj"));
    s.ok(sandbox, &spec)?;
    let status = s.output("status")?;
    for line in [
        "CapInh:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        ensure(status.lines().any(|l| l == line), || {
            format!("expected `{line}` in the build's /proc/self/status:\n{status}")
        })?;
    }
    let attempts = s.output("attempts")?;
    ensure(
        !attempts.contains("ESCAPED") && attempts.lines().count() == 10,
        || format!("escape attempts:\n{attempts}"),
    )?;
    ensure(
        fs::read_to_string(input.join("data")).ok().as_deref() == Some("input"),
        || "the input was changed".into(),
    )
}

/// Defect 2: a descriptor the caller leaked (not close-on-exec) reaches neither the build nor init.
fn caller_descriptors_do_not_reach_the_build(sandbox: &Sandbox) -> Outcome {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::fd::AsRawFd;
    let s = Scratch::new()?;
    let host_file = s.root.join("host-file");
    fs::write(&host_file, "host secret\n").map_err(|e| e.to_string())?;
    let leaked_root = fs::File::open("/").map_err(|e| e.to_string())?;
    let leaked_file = fs::OpenOptions::new()
        .append(true)
        .open(&host_file)
        .map_err(|e| e.to_string())?;
    for file in [&leaked_root, &leaked_file] {
        fcntl(file, FcntlArg::F_SETFD(FdFlag::empty())).map_err(|e| e.to_string())?;
    }
    let (root_fd, file_fd) = (leaked_root.as_raw_fd(), leaked_file.as_raw_fd());
    let script = format!(
        r#"ls /proc/self/fd > "$out/fds"
        for pid in self 1; do for fd in {root_fd} {file_fd}; do
          if ls /proc/$pid/fd/{root_fd}/etc > /dev/null 2>&1 || echo TAMPERED 2>/dev/null >> /proc/$pid/fd/$fd; then
            echo "$pid/$fd ESCAPED"; else echo "$pid/$fd refused"; fi
        done; done > "$out/attempts""#
    );
    let result = s.ok(sandbox, &s.spec(&script));
    drop((leaked_root, leaked_file));
    result?;
    // `ls` itself opens the directory it lists, so its listing shows 0, 1, 2 and that one.
    let fds = s.output("fds")?;
    ensure(
        fds.lines().count() <= 4
            && fds
                .lines()
                .all(|fd| fd.parse::<i32>().is_ok_and(|n| n <= 3)),
        || format!("descriptors open in the build: {fds:?}"),
    )?;
    let attempts = s.output("attempts")?;
    ensure(
        !attempts.contains("ESCAPED") && attempts.lines().count() == 4,
        || format!("attempts through leaked descriptors:\n{attempts}"),
    )?;
    ensure(
        fs::read_to_string(&host_file).ok().as_deref() == Some("host secret\n"),
        || "the host file was written through a leaked descriptor".into(),
    )
}

/// Defect 3: the build runs in a session of its own, without a controlling terminal, and TIOCSTI is refused.
fn build_has_no_controlling_terminal(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    s.ok(
        sandbox,
        &s.spec(
            r#"python3 - > "$out/report" <<'EOF'
import fcntl, os, termios
stat = open('/proc/self/stat').read().rsplit(')', 1)[1].split()
print('session-leader', int(stat[3]) == os.getppid() or int(stat[3]) == os.getpid() or int(stat[3]) == os.getsid(0))
print('tty_nr', stat[4])
try:
    os.open('/dev/tty', os.O_RDWR)
    print('dev-tty ESCAPED')
except OSError as e:
    print('dev-tty refused', e.errno)
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b'x')
        print('tiocsti ESCAPED')
    except OSError as e:
        print('tiocsti refused', e.errno)
EOF"#,
        ),
    )?;
    let report = s.output("report")?;
    ensure(
        report.contains("tty_nr 0\n")
            && report.contains("dev-tty refused 6\n")
            && !report.contains("ESCAPED"),
        || format!("terminal report:\n{report}"),
    )
}

/// Defect 4: setuid/setgid bits cannot be set inside, the writable mounts are nosuid,nodev, and a bit planted
/// in the build directory is stripped when the build ends, failed or not.
fn setuid_bits_are_refused_and_stripped(sandbox: &Sandbox) -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new()?;
    let planted = s.build.join("planted");
    fs::copy("/bin/sh", &planted).map_err(|e| e.to_string())?;
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o4755)).map_err(|e| e.to_string())?;
    let status = s.run(
        sandbox,
        &s.spec(
            r#"try() { name=$1; shift; if "$@" > /dev/null 2>&1; then echo "$name ESCAPED"; else echo "$name refused"; fi; }
            cp /bin/sh "$out/py"
            {
              try chmod chmod 4755 "$out/py"
              try chmod-setgid chmod 2755 "$out/py"
              try open-creat python3 -c 'import os; os.close(os.open(os.environ["out"] + "/c", os.O_CREAT | os.O_WRONLY, 0o4755))'
              try mknod python3 -c 'import os, stat; os.mknod(os.environ["out"] + "/n", stat.S_IFREG | 0o6755)'
            } > /build/attempts
            awk '$5 == "/build" || $5 == "/out" || $5 == "/tmp" || $5 == "/homeless" { print $5, $6 }' /proc/self/mountinfo > /build/mounts
            exit 1"#,
        ),
    )?;
    ensure(status == BuildStatus::Exited(1), || {
        format!("expected the build to fail with exit 1, got {status}")
    })?;
    let attempts = fs::read_to_string(s.build.join("attempts")).map_err(|e| e.to_string())?;
    ensure(
        !attempts.contains("ESCAPED") && attempts.lines().count() == 4,
        || format!("setuid attempts:\n{attempts}"),
    )?;
    let mounts = fs::read_to_string(s.build.join("mounts")).map_err(|e| e.to_string())?;
    ensure(
        mounts.lines().count() == 4
            && mounts
                .lines()
                .all(|l| l.contains("nosuid") && l.contains("nodev")),
        || format!("writable mounts must be nosuid,nodev:\n{mounts}"),
    )?;
    for dir in [&s.build, &s.out] {
        let mode = fs::metadata(dir)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        ensure(mode & 0o777 == 0o700, || {
            format!("`{}` is {mode:o}, expected 0700", dir.display())
        })?;
        for entry in fs::read_dir(dir).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let mode = fs::symlink_metadata(&path)
                .map_err(|e| e.to_string())?
                .permissions()
                .mode();
            ensure(mode & 0o6000 == 0, || {
                format!("`{}` kept mode {mode:o} after the build", path.display())
            })?;
        }
    }
    Ok(())
}

fn limited(sandbox: &Sandbox, change: impl FnOnce(&mut Limits)) -> Sandbox {
    let mut limits = Limits::default();
    change(&mut limits);
    sandbox.clone().with_limits(limits)
}

fn expect_limit(result: Result<BuildStatus, Error>, limit: &str, flag: &str) -> Outcome {
    match result {
        Err(error @ Error::LimitExceeded { .. }) => {
            let text = error.to_string();
            let hint = hstore_store::Hint::hint(&error).unwrap_or_default();
            ensure(text.contains(limit) && hint.contains(flag), || {
                format!("the error must name the {limit} and `{flag}`: {text} / {hint}")
            })
        }
        other => Err(format!(
            "expected the {limit} to stop the build, got {other:?}"
        )),
    }
}

/// Defect 11: the wall-clock limit stops a build that runs too long, with every process in it.
fn wall_clock_limit_stops_the_build(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let sandbox = limited(sandbox, |l| {
        l.timeout = Some(std::time::Duration::from_secs(2));
    });
    let started = std::time::Instant::now();
    let result = sandbox.run(
        &s.spec("echo started; sleep 120 & sleep 120"),
        BuildOutput::LogFile(s.log.clone()),
    );
    let elapsed = started.elapsed();
    expect_limit(result, "wall-clock time limit of 2s", "--timeout")?;
    // Not a timing assertion: 120 s would mean the limit did nothing.
    ensure(elapsed.as_secs() < 60, || {
        format!("the build ran {elapsed:?}")
    })
}

/// Defect 11: the log is cut at its limit and the build stopped.
fn log_size_limit_stops_the_build(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let sandbox = limited(sandbox, |l| l.max_log_bytes = 1 << 20);
    let result = sandbox.run(
        &s.spec("yes hstore-log-flood"),
        BuildOutput::LogFile(s.log.clone()),
    );
    expect_limit(result, "log size limit of 1 MiB", "--max-log-size")?;
    let size = fs::metadata(&s.log).map_err(|e| e.to_string())?.len();
    ensure((1 << 20..(1 << 20) + 200).contains(&size), || {
        format!("the log holds {size} bytes")
    })
}

/// Defect 11: a script over its CPU time gets SIGXCPU, reported as the CPU limit.
fn cpu_limit_is_named(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let sandbox = limited(sandbox, |l| l.max_cpu_seconds = Some(1));
    let result = sandbox.run(
        &s.spec("exec python3 -c 'while True: pass'"),
        BuildOutput::LogFile(s.log.clone()),
    );
    expect_limit(result, "CPU time limit per process of 1s", "--max-cpu-time")
}

/// Defect 11: the process, memory and tmpfs limits are in force inside (the build sees them fail). The kernel
/// exempts the host's root from `RLIMIT_NPROC`; a root caller's build is a build user, so the fork check holds as
/// root too (issue 20, attack 10).
fn process_memory_and_tmpfs_limits_apply(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let sandbox = limited(sandbox, |l| {
        l.max_processes = 32;
        l.max_memory = Some(512 << 20);
        l.tmpfs_bytes = Some(1 << 20);
    });
    let status = s.run(
        &sandbox,
        &s.spec(
            r#"{
              grep -E '^Max (processes|data size)' /proc/self/limits | awk '{ $1 = $1; print }'
              df -B1 --output=size /tmp "$HOME" /dev/shm | tail -n +2 | tr -d ' '
              python3 -c 'bytearray(1 << 30)' > /dev/null 2>&1 && echo "memory ESCAPED" || echo "memory refused"
              dd if=/dev/zero of=/tmp/fill bs=1M count=4 > /dev/null 2>&1 && echo "tmp ESCAPED" || echo "tmp refused"
              python3 -c '
import os, sys
pids = []
try:
    for _ in range(64):
        pid = os.fork()
        if pid == 0:
            os.pause()
        pids.append(pid)
    print("fork ESCAPED")
except OSError:
    print("fork refused")
for pid in pids:
    os.kill(pid, 9)
'
            } > "$out/report""#,
        ),
    )?;
    let report = s.output("report")?;
    ensure(
        status.success()
            && report.contains("Max processes 32 32 processes")
            && report.contains("Max data size 536870912 536870912 bytes")
            && report.matches("1048576\n").count() == 3
            && report.contains("memory refused")
            && report.contains("tmp refused")
            && report.contains("fork refused"),
        || format!("build ended with {status}; limits report:\n{report}"),
    )
}

/// The host id that uid 0 inside a build maps to, read from the build's `/proc/self/uid_map` or `gid_map`.
fn mapped_host_id(map: &str) -> Result<u32, String> {
    let fields: Vec<&str> = map.split_whitespace().collect();
    match fields[..] {
        ["0", host, "1"] => host.parse().map_err(|e| format!("id map {map:?}: {e}")),
        _ => Err(format!("expected one line `0 <host id> 1`, got {map:?}")),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `id` is one of the build users' pool.
fn in_pool(id: u32) -> bool {
    (FIRST_BUILD_ID..FIRST_BUILD_ID + BUILD_ID_COUNT).contains(&id)
}

/// Issue 20, attack 1: a root caller's build is a leased build user on the host (uid and gid), without
/// supplementary groups, and what it writes is that user's; an unprivileged caller's build is the caller.
fn a_root_callers_build_runs_as_a_build_user(sandbox: &Sandbox) -> Outcome {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new()?;
    s.ok(
        sandbox,
        &s.spec(
            r#"cat /proc/self/uid_map > "$out/uid_map"; cat /proc/self/gid_map > "$out/gid_map"
            grep '^Groups:' /proc/self/status | tr -d '\t ' > "$out/groups"
            id -u > "$out/uid"; echo made > /build/made"#,
        ),
    )?;
    let uid = mapped_host_id(&s.output("uid_map")?)?;
    let gid = mapped_host_id(&s.output("gid_map")?)?;
    if is_root() {
        ensure(in_pool(uid) && gid == uid, || {
            format!("as root, the build maps to host uid {uid} / gid {gid}, not a build user")
        })?;
        ensure(s.output("groups")? == "Groups:\n", || {
            format!(
                "as root, the build keeps supplementary groups: {:?}",
                s.output("groups")
            )
        })?;
    } else {
        let caller = nix::unistd::geteuid().as_raw();
        ensure(uid == caller, || {
            format!("unprivileged, the build maps to host uid {uid}, not the caller's {caller}")
        })?;
    }
    ensure(s.output("uid")? == "0\n", || {
        "the build is not uid 0 inside".into()
    })?;
    for path in [s.build.join("made"), s.out.join("uid")] {
        let owner = fs::metadata(&path).map_err(|e| e.to_string())?.uid();
        ensure(owner == uid, || {
            format!(
                "`{}` is owned by host uid {owner}, expected the build's {uid}",
                path.display()
            )
        })?;
    }
    Ok(())
}

/// Issue 20, item 1: one build user per concurrent build. A lease held here is never given to a build that
/// leases its own, and a build run with a lease runs as it.
fn concurrent_builds_never_share_a_build_user(sandbox: &Sandbox) -> Outcome {
    if !is_root() {
        return ensure(
            BuildUser::for_caller().map_err(|e| chain(&e))?.is_none(),
            || "an unprivileged caller got a build user".into(),
        );
    }
    let held = BuildUser::acquire().map_err(|e| chain(&e))?;
    let other = BuildUser::acquire().map_err(|e| chain(&e))?;
    ensure(held.uid() != other.uid(), || {
        format!("two leases share uid {}", held.uid())
    })?;
    drop(other);
    let s = Scratch::new()?;
    s.ok(sandbox, &s.spec(r#"cat /proc/self/uid_map > "$out/own""#))?;
    let own = mapped_host_id(&s.output("own")?)?;
    ensure(in_pool(own) && own != held.uid(), || {
        format!("the build ran as {own} while uid {} was leased", held.uid())
    })?;
    let status = sandbox
        .run_as(
            &s.spec(r#"cat /proc/self/uid_map > "$out/given""#),
            BuildOutput::LogFile(s.log.clone()),
            Some(&held),
        )
        .map_err(|e| chain(&e))?;
    ensure(status.success(), || format!("build ended with {status}"))?;
    let given = mapped_host_id(&s.output("given")?)?;
    ensure(given == held.uid(), || {
        format!("the build given uid {} ran as {given}", held.uid())
    })
}

/// Issue 20, item 1: the build user may not traverse a store kept under a directory only root can enter, yet
/// inputs and scratch directories there are bound (from descriptors the helper opened as the caller).
fn a_store_under_a_root_only_directory_is_bound(sandbox: &Sandbox) -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new()?;
    let private = s.root.join("private");
    let input = private.join("store/object");
    fs::create_dir_all(&input).map_err(|e| e.to_string())?;
    fs::write(input.join("data"), "input\n").map_err(|e| e.to_string())?;
    fs::set_permissions(&input, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    fs::set_permissions(input.join("data"), fs::Permissions::from_mode(0o644))
        .map_err(|e| e.to_string())?;
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    let (build, out) = (private.join("build"), private.join("out"));
    for dir in [&build, &out] {
        fs::create_dir(dir).map_err(|e| e.to_string())?;
    }
    let mut spec = SandboxSpec::shell(
        r#"cat /store/object/data > "$out/read"; echo scratch > /build/file"#,
        &build,
        Bind::new(&out, "/out"),
    );
    spec.inputs.push(Bind::new(&input, "/store/object"));
    let status = sandbox
        .run(&spec, BuildOutput::LogFile(s.log.clone()))
        .map_err(|e| chain(&e))?;
    let log = fs::read_to_string(&s.log).unwrap_or_default();
    ensure(status.success(), || {
        format!("build ended with {status}; log:\n{log}")
    })?;
    ensure(
        fs::read_to_string(out.join("read")).ok().as_deref() == Some("input\n")
            && build.join("file").exists(),
        || "the input or the scratch directories under a 0700 directory were not bound".into(),
    )
}

/// Issue 20, attack 1: run as root, a build wrote `/proc/sys/kernel/core_pattern` (a `|program` there runs on the
/// host as root for every crash). `/proc/sys`, `/proc/sysrq-trigger`, `/proc/irq`, `/proc/bus`, `/proc/fs` are
/// read-only and the build user is "others" to root's files, so every write is refused; `/sys` is absent. The
/// build writes back the value it read, so even a failing protection would change nothing on this machine.
fn host_kernel_settings_cannot_be_written(sandbox: &Sandbox) -> Outcome {
    let read_host =
        || fs::read_to_string("/proc/sys/kernel/core_pattern").map_err(|e| e.to_string());
    let before = read_host()?;
    let s = Scratch::new()?;
    s.ok(
        sandbox,
        &s.spec(
            r#"try() { name=$1; shift; if "$@" > /dev/null 2>&1; then echo "$name ESCAPED"; else echo "$name refused"; fi; }
            {
              for setting in kernel/core_pattern kernel/panic fs/file-max; do
                cat "/proc/sys/$setting" > /tmp/value
                try "$setting" sh -c "cat /tmp/value > /proc/sys/$setting"
              done
              # Opened for writing, never written: these act on a write, whatever its value.
              for file in /proc/sys/vm/drop_caches /proc/sysrq-trigger; do
                try "open-$file" python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))' "$file"
              done
              # Mode 0400, root's: refused by the uid alone, no mount flag involved.
              try read-root-only cat /proc/vmallocinfo
            } > "$out/attempts"
            awk '$5 ~ "^/proc/(sys|sysrq-trigger|irq|bus|fs)$" { print $5, substr($6, 1, 3) }' /proc/self/mountinfo | sort > "$out/proc-mounts"
            if test -e /sys; then echo present; else echo absent; fi > "$out/sys""#,
        ),
    )?;
    let attempts = s.output("attempts")?;
    ensure(
        !attempts.contains("ESCAPED") && attempts.lines().count() == 6,
        || format!("writes to the host's kernel settings:\n{attempts}"),
    )?;
    let mut expected: Vec<String> = ["bus", "fs", "irq", "sys", "sysrq-trigger"]
        .iter()
        .filter(|name| Path::new("/proc").join(name).exists())
        .map(|name| format!("/proc/{name} ro,"))
        .collect();
    expected.sort();
    let mounts = s.output("proc-mounts")?;
    ensure(
        mounts.lines().eq(expected.iter().map(String::as_str)),
        || format!("read-only /proc parts: expected {expected:?}, got:\n{mounts}"),
    )?;
    ensure(s.output("sys")? == "absent\n", || "/sys is visible".into())?;
    let after = read_host()?;
    ensure(before == after, || {
        format!("the host's core_pattern changed: {before:?} -> {after:?}")
    })
}

/// Issue 20, attack 4: `/etc/ssl` and `/etc/pki` were bound whole, private keys included. Inside, `/etc` holds
/// the files the sandbox writes, the loader's files, the CA certificates and OpenSSL's configuration, each where
/// the host has it.
fn etc_holds_only_loader_files_and_ca_certificates(sandbox: &Sandbox) -> Outcome {
    const WRITTEN: &[&str] = &["passwd", "group", "hosts", "nsswitch.conf", "hostname"];
    const FROM_HOST: &[&str] = &[
        "ld.so.cache",
        "ld.so.conf",
        "ld.so.conf.d",
        "alternatives",
        "ssl/certs",
        "ssl/cert.pem",
        "ssl/ca-bundle.pem",
        "ssl/openssl.cnf",
        "ca-certificates",
        "pki/ca-trust",
        "pki/tls/certs",
        "pki/tls/cert.pem",
        "pki/java",
        "pki/tls/openssl.cnf",
    ];
    let s = Scratch::new()?;
    s.ok(
        sandbox,
        &s.spec(r#"cd /etc && find . -mindepth 1 \( -name '*.d' -o -path ./alternatives -o -path ./ssl/certs -o -path ./pki/ca-trust -o -path ./pki/tls/certs -o -path ./pki/java -o -path ./ca-certificates \) -prune -print -o -print | sed 's|^\./||' | sort > "$out/etc""#),
    )?;
    let listed = s.output("etc")?;
    let mut expected: Vec<String> = WRITTEN.iter().map(|name| (*name).to_owned()).collect();
    for name in FROM_HOST {
        if fs::metadata(Path::new("/etc").join(name)).is_ok() {
            // The parents of a nested entry are directories of the sandbox's own root.
            let mut parent = Path::new(name).parent();
            while let Some(dir) = parent.filter(|dir| !dir.as_os_str().is_empty()) {
                expected.push(dir.display().to_string());
                parent = dir.parent();
            }
            expected.push((*name).to_owned());
        }
    }
    expected.sort();
    expected.dedup();
    ensure(
        listed.lines().eq(expected.iter().map(String::as_str)),
        || format!("/etc inside: expected {expected:?}, got:\n{listed}"),
    )
}

/// Issue 20, item 8: the host's cgroup path (`/proc/self/cgroup`), the kernel command line (`/proc/cmdline`), the
/// helper's host path (`/proc/1/cmdline`) and the scratch directory's host path (the environment) do not show
/// inside. `/proc/self/mountinfo` still names each bind's path within its host file system: the kernel has no way
/// to hide it (see ARCHITECTURE.md).
fn host_cgroup_command_line_and_paths_are_hidden(sandbox: &Sandbox) -> Outcome {
    let host_cmdline = fs::read_to_string("/proc/cmdline").map_err(|e| e.to_string())?;
    ensure(!host_cmdline.trim().is_empty(), || {
        "control: the host's /proc/cmdline is empty".into()
    })?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let s = Scratch::new()?;
    s.ok(
        sandbox,
        &s.spec(
            r#"cat /proc/self/cgroup > "$out/cgroup"; wc -c < /proc/cmdline > "$out/cmdline"
            tr '\0' ' ' < /proc/1/cmdline > "$out/init"; env > "$out/env""#,
        ),
    )?;
    let cgroup = s.output("cgroup")?;
    ensure(
        !cgroup.is_empty() && cgroup.lines().all(|line| line.ends_with(":/")),
        || format!("/proc/self/cgroup inside:\n{cgroup}"),
    )?;
    ensure(s.output("cmdline")?.trim() == "0", || {
        format!(
            "/proc/cmdline inside has {} bytes",
            s.output("cmdline").unwrap_or_default()
        )
    })?;
    let init = s.output("init")?;
    ensure(
        init == format!("hstore {HELPER_ARG} ") && !init.contains(&*me.to_string_lossy()),
        || format!("/proc/1/cmdline inside: {init:?}"),
    )?;
    let env = s.output("env")?;
    ensure(!env.contains(&*s.root.to_string_lossy()), || {
        format!("the environment names the scratch directory:\n{env}")
    })
}

/// The programs copied into [`minimal_base`]: the shell `/bin/sh` is (dash on Debian), `cat` and `ls`.
const BASE_PROGRAMS: &[&str] = &["/bin/sh", "/usr/bin/cat", "/usr/bin/ls"];
/// The base's `/etc/hostname`, unlike the host's and the sandbox's own.
const BASE_HOSTNAME: &str = "hstore-minimal-base\n";

/// A minimal root file system under `dir/base`, laid out as a merged-/usr Debian tree: the real files of
/// [`BASE_PROGRAMS`] in `usr/bin`, the libraries `ldd` lists for them at their paths under `usr/` (the loader at
/// `usr/lib64/ld-linux-x86-64.so.2` on x86-64), `bin -> usr/bin`, `lib -> usr/lib`, `lib64 -> usr/lib64`, an `etc/`
/// of its own, the empty `proc/`, `dev/`, `sys/`, `opt/` a Debian tree has, a `tmp/` holding a file, and a non-empty `srv/`
/// with an empty `mount-point/`.
fn minimal_base(dir: &Path) -> Result<PathBuf, String> {
    let base = dir.join("base");
    let io = |what: &str, path: &Path| {
        let what = what.to_owned();
        let path = path.to_path_buf();
        move |e: std::io::Error| format!("{what} `{}`: {e}", path.display())
    };
    for sub in [
        "usr/bin",
        "etc",
        "proc",
        "dev",
        "sys",
        "opt",
        "tmp",
        "srv/mount-point",
        "var/lib",
    ] {
        fs::create_dir_all(base.join(sub)).map_err(io("create", &base.join(sub)))?;
    }
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(target, base.join(link))
            .map_err(io("link", &base.join(link)))?;
    }
    let mut libraries = std::collections::BTreeSet::new();
    for program in BASE_PROGRAMS {
        let real = fs::canonicalize(program).map_err(io("resolve", Path::new(program)))?;
        let name = real.file_name().ok_or("a program without a name")?;
        fs::copy(&real, base.join("usr/bin").join(name)).map_err(io("copy", &real))?;
        if *program == "/bin/sh" && name != "sh" {
            std::os::unix::fs::symlink(name, base.join("usr/bin/sh"))
                .map_err(io("link", &base.join("usr/bin/sh")))?;
        }
        let ldd = Command::new("ldd")
            .arg(&real)
            .output()
            .map_err(|e| format!("run ldd: {e}"))?;
        ensure(ldd.status.success(), || {
            format!(
                "ldd {}: {}",
                real.display(),
                String::from_utf8_lossy(&ldd.stderr)
            )
        })?;
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and `/lib64/ld-linux-x86-64.so.2 (0x…)`.
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let path = line.split("=>").last().unwrap_or("").trim();
            if let Some(path) = path
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/'))
            {
                libraries.insert(PathBuf::from(path));
            }
        }
    }
    ensure(libraries.len() >= 2, || {
        format!("ldd found too little: {libraries:?}")
    })?;
    for library in libraries {
        // Merged /usr: `/lib/x86_64-linux-gnu/libc.so.6` and `/usr/lib/…` both live under `usr/lib/…`.
        let relative = library.strip_prefix("/").map_err(|e| e.to_string())?;
        let relative = relative.strip_prefix("usr").unwrap_or(relative);
        let destination = base.join("usr").join(relative);
        let parent = destination.parent().ok_or("a library at the root")?;
        fs::create_dir_all(parent).map_err(io("create", parent))?;
        let real = fs::canonicalize(&library).map_err(io("resolve", &library))?;
        fs::copy(&real, &destination).map_err(io("copy", &real))?;
    }
    for (name, content) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
        ("etc/hosts", "127.0.0.1 localhost\n"),
        (
            "etc/nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files\n",
        ),
        ("etc/hostname", BASE_HOSTNAME),
        ("tmp/from-the-base", "hidden by the sandbox's /tmp\n"),
        ("srv/kept", "from the base\n"),
    ] {
        fs::write(base.join(name), content).map_err(io("write", &base.join(name)))?;
    }
    Ok(base)
}

/// With a base root the sandbox's root is that tree: the host base system, `/etc` and top level are gone; the
/// base is read-only; `/dev`, `/proc`, `/tmp`, `HOME`, `/build`, the inputs, declared host paths and the output
/// are the sandbox's, as without one.
fn a_base_root_replaces_the_host_base_system(sandbox: &Sandbox) -> Outcome {
    let s = Scratch::new()?;
    let base = minimal_base(&s.root)?;
    // Controls: what must be hidden exists on the host.
    let hidden = [
        "/usr/bin/python3",
        "/usr/bin/git",
        "/sbin",
        "/etc/os-release",
        "/etc/ld.so.cache",
        "/work",
    ];
    let hidden: Vec<&str> = hidden
        .into_iter()
        .filter(|p| fs::symlink_metadata(p).is_ok())
        .collect();
    ensure(hidden.len() >= 3, || {
        format!("too few host controls exist: {hidden:?}")
    })?;
    let input = s.root.join("input");
    let sdk = s.root.join("sdk");
    for (dir, file, content) in [(&input, "data", "input\n"), (&sdk, "version", "sdk 1.0\n")] {
        fs::create_dir(dir).map_err(|e| e.to_string())?;
        fs::write(dir.join(file), content).map_err(|e| e.to_string())?;
    }
    let mut spec = s.spec(
        r#"echo ran > "$out/ran"
        for p in $HIDDEN /tmp/from-the-base /sys; do if test -e "$p" || test -L "$p"; then echo "visible $p"; fi; done > "$out/visible"
        cat /etc/hostname > "$out/hostname"
        for p in /usr/x /etc/x /x /srv/x; do if (: > "$p"); then echo "$p writable"; else echo "$p denied"; fi; done 2>/dev/null > "$out/writes"
        echo discarded > /dev/null
        if test -c /dev/null; then echo device; else echo not-a-device; fi > "$out/null"
        cat "$SDK/version" /opt/input/data /srv/kept /srv/mount-point/data > "$out/read"
        ls / > "$out/root""#,
    );
    spec.base_root = Some(base.clone());
    // An empty top-level directory of the base gives way to the sandbox's; a non-empty one is bound, and a bind
    // below it lands on a mount point the base has.
    spec.inputs.push(Bind::new(&input, "/opt/input"));
    spec.inputs.push(Bind::new(&input, "/srv/mount-point"));
    spec.host_paths.push(sdk.clone());
    spec.env.insert("HIDDEN".into(), hidden.join(" "));
    spec.env.insert("SDK".into(), sdk.display().to_string());
    s.ok(sandbox, &spec)?;
    ensure(s.output("ran")? == "ran\n", || {
        "the script did not run".into()
    })?;
    let visible = s.output("visible")?;
    ensure(visible.is_empty(), || {
        format!("host or base paths visible inside:\n{visible}")
    })?;
    ensure(s.output("hostname")? == BASE_HOSTNAME, || {
        format!("/etc/hostname inside: {:?}", s.output("hostname"))
    })?;
    let writes = s.output("writes")?;
    ensure(
        writes == "/usr/x denied\n/etc/x denied\n/x denied\n/srv/x denied\n",
        || format!("writes into the base:\n{writes}"),
    )?;
    ensure(s.output("null")? == "device\n", || {
        "/dev/null is not a device".into()
    })?;
    ensure(
        s.output("read")? == "sdk 1.0\ninput\nfrom the base\ninput\n",
        || {
            format!(
                "declared host path, input or base content: {:?}",
                s.output("read")
            )
        },
    )?;
    let root = s.output("root")?;
    let expected =
        "bin\nbuild\ndev\netc\nhomeless\nlib\nlib64\nopt\nout\nproc\nsrv\ntmp\nusr\nvar\n";
    ensure(root == expected, || format!("`ls /` inside:\n{root}"))?;
    // The sandbox's mount points and the build's writes never land in the base itself.
    for dir in ["dev", "opt", "proc", "srv/mount-point"] {
        let empty = fs::read_dir(base.join(dir)).is_ok_and(|mut listing| listing.next().is_none());
        ensure(empty, || format!("the base's `{dir}/` is no longer empty"))?;
    }
    ensure(!base.join("usr/x").exists(), || {
        "a write reached the base's `usr/`".into()
    })
}

/// A base root that is missing, a file, or a directory that is no root file system fails before anything runs,
/// naming the path, with a hint.
fn a_missing_or_invalid_base_root_is_named_with_a_hint(sandbox: &Sandbox) -> Outcome {
    use hstore_store::Hint as _;
    let s = Scratch::new()?;
    let not_a_root = s.root.join("not-a-root");
    fs::create_dir_all(not_a_root.join("etc")).map_err(|e| e.to_string())?;
    let missing = s.root.join("missing-base");
    for (base, reason) in [
        (missing, "No such file"),
        (s.log.clone(), "not a directory"),
        (not_a_root, "no `usr/` directory"),
    ] {
        fs::write(&s.log, "a file").map_err(|e| e.to_string())?;
        let mut spec = s.spec("echo ran > \"$out/ran\"");
        spec.base_root = Some(base.clone());
        match sandbox.run(&spec, BuildOutput::Null) {
            Err(error @ Error::BadBaseRoot { .. }) => {
                let text = error.to_string();
                ensure(
                    text.contains(&format!("base root `{}`", base.display()))
                        && text.contains(reason),
                    || format!("unhelpful message: {text}"),
                )?;
                let hint = error.hint().unwrap_or_default();
                ensure(hint.contains("root file system"), || {
                    format!("hint: {hint:?}")
                })?;
            }
            other => {
                return Err(format!(
                    "{}: expected BadBaseRoot, got {other:?}",
                    base.display()
                ));
            }
        }
    }
    ensure(!s.out.join("ran").exists(), || "the build ran".into())
}

/// Not a check: prints the start-up cost of a sandbox (`sh -c true`) on the host root and on [`minimal_base`],
/// interleaved, so both see the same machine load.
fn start_up_with_a_base_root_and_the_host_root(sandbox: &Sandbox) -> Outcome {
    const RUNS: usize = 20;
    let s = Scratch::new()?;
    let base = minimal_base(&s.root)?;
    let host = s.spec("true");
    let mut with_base = host.clone();
    with_base.base_root = Some(base);
    let mut times: [Vec<std::time::Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..RUNS {
        for (index, spec) in [&host, &with_base].into_iter().enumerate() {
            let started = std::time::Instant::now();
            let status = s.run(sandbox, spec)?;
            times[index].push(started.elapsed());
            ensure(status.success(), || format!("`true` ended with {status}"))?;
        }
    }
    for (label, mut runs) in ["host root", "base root"].into_iter().zip(times) {
        runs.sort();
        println!(
            "    ({label}: {RUNS} runs of `sh -c true`, min {:?}, median {:?}, max {:?})",
            runs[0],
            runs[RUNS / 2],
            runs[RUNS - 1]
        );
    }
    Ok(())
}
