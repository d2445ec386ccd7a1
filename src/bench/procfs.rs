//! CPU time and memory of a process, read from Linux's /proc.

use super::BenchError;

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat` (`USER_HZ`): fixed at 100 by
/// the kernel ABI on the architectures Linux ships (the kernel converts from its internal HZ).
const USER_HZ: f64 = 100.0;

/// CPU time used by a process so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    /// User-mode seconds.
    pub user: f64,
    /// Kernel-mode seconds.
    pub system: f64,
}

impl CpuTime {
    /// User plus system seconds.
    pub fn total(&self) -> f64 {
        self.user + self.system
    }

    /// CPU used between `earlier` and `self`.
    pub fn since(&self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

/// Resident memory of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub peak_kib: u64,
}

fn read(path: &str) -> Result<String, BenchError> {
    std::fs::read_to_string(path).map_err(|e| BenchError::Proc {
        path: path.to_string(),
        message: e.to_string(),
    })
}

/// CPU time of process `pid` (`"self"` for this one), all threads, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: &str) -> Result<CpuTime, BenchError> {
    let path = format!("/proc/{pid}/stat");
    let text = read(&path)?;
    parse_stat(&text).ok_or_else(|| BenchError::Proc {
        path,
        message: "no utime/stime fields".to_string(),
    })
}

/// utime and stime are fields 14 and 15; the command name (field 2) is in parentheses and may
/// hold spaces, so fields are counted after its closing parenthesis (field 3 is index 0).
fn parse_stat(text: &str) -> Option<CpuTime> {
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some(CpuTime {
        user: ticks(11)? as f64 / USER_HZ,
        system: ticks(12)? as f64 / USER_HZ,
    })
}

/// Resident memory of process `pid` (`"self"` for this one), from `/proc/<pid>/status`.
pub fn memory(pid: &str) -> Result<Memory, BenchError> {
    let path = format!("/proc/{pid}/status");
    let text = read(&path)?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(rss_kib), Some(peak_kib)) => Ok(Memory { rss_kib, peak_kib }),
        _ => Err(BenchError::Proc {
            path,
            message: "no VmRSS/VmHWM lines".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 3";
        let cpu = parse_stat(line).unwrap();
        assert_eq!(cpu.user, 12.34);
        assert_eq!(cpu.system, 0.56);
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let memory = memory("self").unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
        assert!(cpu_time("self").unwrap().total() >= 0.0);
    }
}
