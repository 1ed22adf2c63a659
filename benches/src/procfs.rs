//! A process's resident memory and CPU time, read from `/proc/<pid>`.

use std::process::Command;
use std::sync::OnceLock;

/// Moves every thread of `pid` onto CPU `cpu` (`taskset -a -p -c`). Threads
/// it starts later inherit the affinity of the thread that starts them.
pub fn pin(pid: u32, cpu: usize) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("running taskset (util-linux): {e}"))?;
    anyhow::ensure!(
        status.success(),
        "taskset could not pin {pid} to CPU {cpu}: {status}"
    );
    Ok(())
}

/// How many of a process's descriptors are sockets (0 if it cannot be read).
pub fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// `VmRSS` of a process in KiB (0 if it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// `VmHWM` (peak RSS) of a process in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat_ticks(&s))
        .map(|ticks| ticks as f64 / clock_ticks() as f64)
        .unwrap_or(0.0)
}

/// utime + stime (fields 14 and 15) from a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces, so fields are counted after its `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, index 11 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`, nearly always 100).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let line = "1234 (nats server) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(line), Some(300));
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let rss = rss_kib(pid);
        assert!(rss > 0);
        // The peak is read after: other test threads may grow the RSS between
        // two reads, but the peak never falls below an earlier RSS.
        assert!(peak_rss_kib(pid) >= rss);
        assert!(cpu_seconds(pid) >= 0.0);
    }
}
