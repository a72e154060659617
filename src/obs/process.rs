//! The process's own figures in the Prometheus text format, with the names every exporter uses
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_open_fds`, `process_max_fds`, `process_start_time_seconds`), read from `/proc` at
//! scrape time, and `guichet_build_info{version}`.
//!
//! This file owns reading `/proc/self` and writing those families. On a system without `/proc`
//! (not Linux) the `process_*` families are left out; `guichet_build_info` is always there.

use std::fmt::Write as _;

/// Clock ticks per second of `/proc/<pid>/stat` times: the kernel's `USER_HZ`, 100 on every
/// Linux architecture (the value Prometheus' own `procfs` reader assumes).
const USER_HZ: f64 = 100.0;

/// The process figures read from `/proc`, each `None` when it could not be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessFigures {
    /// User and system CPU time spent, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident memory, in bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory, in bytes.
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Start time since the Unix epoch, in seconds.
    pub start_time_seconds: Option<f64>,
}

impl ProcessFigures {
    /// Reads this process's figures from `/proc/self` (all `None` where there is no `/proc`).
    pub fn read() -> ProcessFigures {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        let boot = std::fs::read_to_string("/proc/stat").ok();
        let fields = stat.as_deref().and_then(stat_fields);
        let tick = |i: usize| -> Option<f64> {
            fields
                .as_ref()
                .and_then(|f| f.get(i))
                .and_then(|v| v.parse::<u64>().ok())
                .map(|v| v as f64 / USER_HZ)
        };
        let cpu_seconds = match (tick(STAT_UTIME), tick(STAT_STIME)) {
            (Some(u), Some(s)) => Some(u + s),
            _ => None,
        };
        let boot_time = boot.as_deref().and_then(boot_time);
        let start_time_seconds = match (boot_time, tick(STAT_STARTTIME)) {
            (Some(boot), Some(since_boot)) => Some(boot as f64 + since_boot),
            _ => None,
        };
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        ProcessFigures {
            cpu_seconds,
            resident_bytes: status.as_deref().and_then(|s| status_kib(s, "VmRSS:")),
            virtual_bytes: status.as_deref().and_then(|s| status_kib(s, "VmSize:")),
            open_fds,
            max_fds: limits.as_deref().and_then(max_open_files),
            start_time_seconds,
        }
    }

    /// Appends the families to `out` in the Prometheus text format, each with `# HELP` and
    /// `# TYPE`; figures that could not be read are left out.
    pub fn render(&self, out: &mut String) {
        let mut family = |name: &str, kind: &str, help: &str, value: Option<String>| {
            if let Some(value) = value {
                // Writing to a String cannot fail.
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
                );
            }
        };
        family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds.map(|v| v.to_string()),
        );
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            self.resident_bytes.map(|v| v.to_string()),
        );
        family(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            self.virtual_bytes.map(|v| v.to_string()),
        );
        family(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            self.open_fds.map(|v| v.to_string()),
        );
        family(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors (the soft limit).",
            self.max_fds.map(|v| v.to_string()),
        );
        family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds.map(|v| v.to_string()),
        );
    }
}

/// Appends `guichet_build_info{version="…"} 1`.
pub fn render_build_info(out: &mut String) {
    let _ = write!(
        out,
        "# HELP guichet_build_info The running Guichet's version (value always 1).\n\
         # TYPE guichet_build_info gauge\n\
         guichet_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
}

// Indexes in the fields that follow the command name of /proc/<pid>/stat (field 3, `state`,
// is index 0): utime is field 14, stime 15, starttime 22 (proc(5)).
const STAT_UTIME: usize = 11;
const STAT_STIME: usize = 12;
const STAT_STARTTIME: usize = 19;

/// The fields of `/proc/<pid>/stat` after the command name, which is in parentheses and may
/// itself hold spaces and parentheses (so the split starts after the last `)`).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().collect())
}

/// `btime` of `/proc/stat`: boot time, in seconds since the epoch.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS:    1234 kB`), in bytes.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1234 0 0";
        let fields = stat_fields(stat).expect("fields");
        assert_eq!(fields[0], "S");
        assert_eq!(fields[STAT_UTIME], "250");
        assert_eq!(fields[STAT_STIME], "50");
        assert_eq!(fields[STAT_STARTTIME], "1234");
    }

    #[test]
    fn limits_and_status_lines_are_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            status_kib("Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS:"),
            Some(2 * 1024 * 1024)
        );
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_is_read_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let figures = ProcessFigures::read();
        assert!(figures.cpu_seconds.is_some());
        assert!(figures.resident_bytes.unwrap_or(0) > 0);
        assert!(figures.open_fds.unwrap_or(0) > 0);
        assert!(figures.max_fds.unwrap_or(0) > 0);
        assert!(figures.start_time_seconds.unwrap_or(0.0) > 1.0e9);
        let mut out = String::new();
        figures.render(&mut out);
        assert!(out.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(out.contains("\nprocess_open_fds "));
    }
}
