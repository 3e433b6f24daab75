//! [`Limits`]: the resources one build may use, their defaults, and how each is enforced.
//!
//! | limit | default | enforced by | when exceeded |
//! |---|---|---|---|
//! | wall-clock time | 6 h | the caller: kills the helper (and so the whole pid namespace) | [`Error::LimitExceeded`] |
//! | log size | 256 MiB | the caller, which reads the build's stdout/stderr through a pipe | [`Error::LimitExceeded`] |
//! | CPU time per process | none | `RLIMIT_CPU` (SIGXCPU) | [`Error::LimitExceeded`] when the script itself is killed; a killed compiler makes the script fail |
//! | processes | 4096 | `RLIMIT_NPROC`, counted per user namespace, i.e. per build | `fork` fails with `EAGAIN` in the build |
//! | memory per process | 50 % of RAM | `RLIMIT_DATA` | allocation fails with `ENOMEM` in the build |
//! | `/tmp`, `HOME`, `/dev/shm` | 25 %, 10 %, 10 % of RAM | tmpfs `size=` | writes fail with `ENOSPC` in the build |
//! | `/build` and `$out` together | 50 % of the free space of their filesystem at the start | the caller: a watchdog during the build, an exact count after it | [`Error::LimitExceeded`] |
//!
//! Memory is capped with `RLIMIT_DATA` (private writable mappings: heap, anonymous `mmap`), not `RLIMIT_AS`
//! (address space): Go and the JVM reserve large address ranges `PROT_NONE` and commit as they go, which
//! `RLIMIT_AS` counts and `RLIMIT_DATA` does not. Sanitizers map terabytes of writable shadow memory, which both
//! count: a sanitizer build needs `max_memory = "none"`. cgroup v2 would count real memory for the whole build;
//! it is not used yet (see ARCHITECTURE.md, "Sandbox security model").
//!
//! The output size counts every file of `/build` and `$out` at the larger of its apparent size and its allocated
//! blocks: a sparse file is counted at its apparent size, because the store keeps it dense.
//!
//! [`Error::LimitExceeded`]: crate::Error::LimitExceeded
//!
//! Limits are not part of the build key: a limit changes whether a build finishes, never what it produces.
//! [`LimitOverrides`] layers what a recipe's `[build.limits]`/`[targets.T.limits]` and the command line give over
//! the defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Resource limits of one build. [`Limits::default`] gives the defaults in the module table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time from the helper's start to the build's end; `None` for no limit.
    pub timeout: Option<Duration>,
    /// Bytes of stdout and stderr together kept in the log; beyond it the build is stopped.
    pub max_log_bytes: u64,
    /// `RLIMIT_NPROC`: processes (threads included) of the build at one time.
    pub max_processes: u64,
    /// `RLIMIT_DATA` in bytes, per process; `None` for no limit.
    pub max_memory: Option<u64>,
    /// `RLIMIT_CPU` in seconds, per process; `None` for no limit.
    pub max_cpu_seconds: Option<u64>,
    /// The size of each tmpfs (`/tmp`, `HOME`, `/dev/shm`) in bytes; `None` for the RAM-relative defaults.
    pub tmpfs_bytes: Option<u64>,
    /// What `/build` and `$out` may hold together.
    pub max_output: OutputLimit,
}

/// The cap on what a build leaves in `/build` and `$out` together (see the [module docs](self) for how files
/// are counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputLimit {
    /// Half the space free to unprivileged users on their filesystem (the store's) when the build starts.
    HalfOfFreeSpace,
    /// This many bytes.
    Bytes(u64),
    /// No cap.
    Unlimited,
}

/// The default memory cap: half of the machine's RAM, or `None` if the kernel does not say how much there is.
fn half_of_ram() -> Option<u64> {
    // SAFETY: sysinfo fills one zero-initialised `sysinfo` structure owned by this frame.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pointer is valid for the call.
    if unsafe { libc::sysinfo(&raw mut info) } != 0 {
        return None;
    }
    info.totalram
        .checked_mul(u64::from(info.mem_unit))
        .map(|total| total / 2)
        .filter(|half| *half > 0)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Some(Duration::from_secs(6 * 3600)),
            max_log_bytes: 256 << 20,
            max_processes: 4096,
            max_memory: half_of_ram(),
            max_cpu_seconds: None,
            tmpfs_bytes: None,
            max_output: OutputLimit::HalfOfFreeSpace,
        }
    }
}

impl Limits {
    /// The `size=` option of the tmpfs at `/tmp` (`tmp`) or `HOME`/`/dev/shm` (`!tmp`).
    pub(crate) fn tmpfs_size(&self, tmp: bool) -> String {
        match (self.tmpfs_bytes, tmp) {
            (Some(bytes), _) => format!("size={bytes}"),
            (None, true) => "size=25%".into(),
            (None, false) => "size=10%".into(),
        }
    }
}

/// Parses a duration for a command-line flag: `90`, `90s`, `30m`, `2h`, `1d`; `0` or `none` for no limit.
pub fn parse_duration(text: &str) -> Result<Option<Duration>, String> {
    if text == "none" {
        return Ok(None);
    }
    let (number, unit) = split_unit(text);
    let scale: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` is not a duration: expected a number with `s`, `m`, `h` or `d` (e.g. `90m`), or `none`"
            ));
        }
    };
    let count: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: `{number}` is not a whole number"))?;
    let seconds = count
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too long"))?;
    Ok((seconds > 0).then(|| Duration::from_secs(seconds)))
}

/// Parses a size for a command-line flag: `4096`, `64K`, `512M`, `8G`, `1T` (powers of 1024); `none` for
/// no limit. `0` is refused: a zero-byte limit is never what was meant.
pub fn parse_size(text: &str) -> Result<Option<u64>, String> {
    if text == "none" {
        return Ok(None);
    }
    let (number, unit) = split_unit(text);
    let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "`{text}` is not a size: expected a number with `K`, `M`, `G` or `T` (e.g. `8G`), or `none`"
            ));
        }
    };
    let count: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: `{number}` is not a whole number"))?;
    if count == 0 {
        return Err(format!(
            "`{text}` is zero; give a positive size, or `none` for no limit"
        ));
    }
    count
        .checked_mul(1 << shift)
        .map(Some)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Limits given explicitly (a recipe's `limits` table, command-line flags), each overriding the one below it:
/// [`Limits::default`] < `[build] limits` < `[targets.T] limits` < flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// `timeout` / `--timeout`.
    pub timeout: Option<DurationLimit>,
    /// `max_memory` / `--max-memory`.
    pub max_memory: Option<SizeLimit>,
    /// `max_processes` / `--max-processes`.
    pub max_processes: Option<u64>,
    /// `max_cpu_time` / `--max-cpu-time`.
    pub max_cpu_time: Option<DurationLimit>,
    /// `tmp_size` / `--tmp-size`.
    pub tmp_size: Option<SizeLimit>,
    /// `max_log_size` / `--max-log-size`.
    pub max_log_size: Option<SizeLimit>,
    /// `max_output_size` / `--max-output-size`.
    pub max_output_size: Option<SizeLimit>,
}

impl LimitOverrides {
    /// These overrides, with those of `over` taking precedence.
    #[must_use]
    pub fn then(self, over: LimitOverrides) -> LimitOverrides {
        LimitOverrides {
            timeout: over.timeout.or(self.timeout),
            max_memory: over.max_memory.or(self.max_memory),
            max_processes: over.max_processes.or(self.max_processes),
            max_cpu_time: over.max_cpu_time.or(self.max_cpu_time),
            tmp_size: over.tmp_size.or(self.tmp_size),
            max_log_size: over.max_log_size.or(self.max_log_size),
            max_output_size: over.max_output_size.or(self.max_output_size),
        }
    }

    /// [`Limits::default`] with these overrides applied.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(DurationLimit(timeout)) = self.timeout {
            limits.timeout = timeout;
        }
        if let Some(SizeLimit(memory)) = self.max_memory {
            limits.max_memory = memory;
        }
        if let Some(processes) = self.max_processes {
            limits.max_processes = processes;
        }
        if let Some(DurationLimit(cpu)) = self.max_cpu_time {
            limits.max_cpu_seconds = cpu.map(|d| d.as_secs());
        }
        if let Some(SizeLimit(size)) = self.tmp_size {
            limits.tmpfs_bytes = size;
        }
        if let Some(SizeLimit(size)) = self.max_log_size {
            limits.max_log_bytes = size.unwrap_or(u64::MAX);
        }
        if let Some(SizeLimit(size)) = self.max_output_size {
            limits.max_output = size.map_or(OutputLimit::Unlimited, OutputLimit::Bytes);
        }
        limits
    }
}

/// A command-line duration limit: `Some` duration, or `None` for "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationLimit(pub Option<Duration>);

/// A command-line size limit in bytes: `Some` size, or `None` for "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit(pub Option<u64>);

/// [`parse_duration`] for clap's `value_parser`.
pub fn parse_duration_limit(text: &str) -> Result<DurationLimit, String> {
    parse_duration(text).map(DurationLimit)
}

/// [`parse_size`] for clap's `value_parser`.
pub fn parse_size_limit(text: &str) -> Result<SizeLimit, String> {
    parse_size(text).map(SizeLimit)
}

fn split_unit(text: &str) -> (&str, &str) {
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(at)
}

/// Renders a byte count for an error message: `256 MiB`, `1.5 GiB`, `4096 bytes`.
pub(crate) fn show_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        if bytes >= 1 << shift {
            let whole = bytes >> shift;
            if bytes.is_multiple_of(1 << shift) {
                return format!("{whole} {unit}");
            }
            let tenths = ((bytes % (1 << shift)) * 10) >> shift;
            return format!("{whole}.{tenths} {unit}");
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(parse_duration("2h"), Ok(Some(Duration::from_secs(7200))));
        assert_eq!(parse_duration("30m"), Ok(Some(Duration::from_secs(1800))));
        assert_eq!(parse_duration("none"), Ok(None));
        assert_eq!(parse_duration("0"), Ok(None));
        assert!(parse_duration("1w").unwrap_err().contains("not a duration"));
        assert!(
            parse_duration("m")
                .unwrap_err()
                .contains("not a whole number")
        );
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096"), Ok(Some(4096)));
        assert_eq!(parse_size("64K"), Ok(Some(64 << 10)));
        assert_eq!(parse_size("512MiB"), Ok(Some(512 << 20)));
        assert_eq!(parse_size("8g"), Ok(Some(8 << 30)));
        assert_eq!(parse_size("none"), Ok(None));
        assert!(parse_size("0").unwrap_err().contains("zero"));
        assert!(parse_size("5X").unwrap_err().contains("not a size"));
    }

    #[test]
    fn later_overrides_win_and_unset_ones_keep_the_default() {
        let recipe = LimitOverrides {
            timeout: Some(DurationLimit(Some(Duration::from_secs(60)))),
            max_processes: Some(100),
            ..LimitOverrides::default()
        };
        let flags = LimitOverrides {
            timeout: Some(DurationLimit(None)),
            ..LimitOverrides::default()
        };
        let limits = recipe.then(flags).limits();
        assert_eq!(limits.timeout, None);
        assert_eq!(limits.max_processes, 100);
        assert_eq!(limits.max_log_bytes, Limits::default().max_log_bytes);
        assert_eq!(limits.max_output, OutputLimit::HalfOfFreeSpace);
    }

    #[test]
    fn memory_and_output_are_capped_by_default_and_none_lifts_them() {
        let defaults = Limits::default();
        let ram = std::fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
        let kib: u64 = ram
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("MemTotal in /proc/meminfo");
        assert_eq!(defaults.max_memory, Some(kib * 1024 / 2));
        assert_eq!(defaults.max_output, OutputLimit::HalfOfFreeSpace);
        let lifted = LimitOverrides {
            max_memory: Some(SizeLimit(None)),
            max_output_size: Some(SizeLimit(None)),
            ..LimitOverrides::default()
        }
        .limits();
        assert_eq!(lifted.max_memory, None);
        assert_eq!(lifted.max_output, OutputLimit::Unlimited);
        let capped = LimitOverrides {
            max_output_size: Some(SizeLimit(Some(64 << 20))),
            ..LimitOverrides::default()
        }
        .limits();
        assert_eq!(capped.max_output, OutputLimit::Bytes(64 << 20));
    }

    #[test]
    fn bytes_are_shown_readably() {
        assert_eq!(show_bytes(256 << 20), "256 MiB");
        assert_eq!(show_bytes(3 << 29), "1.5 GiB");
        assert_eq!(show_bytes(100), "100 bytes");
    }
}
