//! Real namespace tests of hstore-sandbox: every case starts actual sandboxes on this machine.
//!
//! This is a `harness = false` binary because the sandbox needs a helper executable whose `main` dispatches
//! [`HELPER_ARG`]: this binary is its own helper. It also re-executes itself once with a marker variable set, so
//! that "the host environment is invisible" is tested against a variable really present in the caller.
//! Network traffic is only ever aimed at 127.0.0.1.
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

use hstore_sandbox::{
    Bind, BuildOutput, BuildStatus, Error, HELPER_ARG, Sandbox, SandboxSpec, check_available,
    helper_main,
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
    let started = std::time::Instant::now();
    s.ok(
        sandbox,
        &s.spec("(sleep 60 > /dev/null 2>&1 &); echo started > \"$out/s\""),
    )?;
    let elapsed = started.elapsed();
    ensure(elapsed.as_secs() < 20, || {
        format!("the run waited for a leftover process ({elapsed:?})")
    })?;
    let survivors = Command::new("pgrep")
        .args(["-x", "-f", "sleep 60"])
        .output()
        .map_err(|e| e.to_string())?;
    ensure(survivors.stdout.is_empty(), || {
        format!(
            "`sleep 60` survived the sandbox: pids {}",
            String::from_utf8_lossy(&survivors.stdout)
        )
    })
}
