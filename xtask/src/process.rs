//! What Linux says of a running process (`/proc/<pid>`): its memory and its open files.
//! `None` where /proc is absent or the process is gone.

/// A memory figure of `/proc/<pid>/status` in bytes: `VmRSS` (resident now) or `VmHWM`
/// (the peak).
pub fn memory(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    Some(line.split_whitespace().next()?.parse::<u64>().ok()? * 1024)
}

/// Peak resident memory (`VmHWM`), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    memory(pid, "VmHWM")
}

/// Resident memory now (`VmRSS`), in bytes.
pub fn rss(pid: u32) -> Option<u64> {
    memory(pid, "VmRSS")
}

/// How many file descriptors the process has open.
pub fn open_files(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_open_files() {
        let me = std::process::id();
        let (now, peak) = (rss(me).unwrap(), peak_rss(me).unwrap());
        assert!(now > 0 && peak >= now, "{now} {peak}");
        assert!(open_files(me).unwrap() >= 3, "stdin, stdout and stderr at least");
        assert_eq!(memory(me, "NoSuchField"), None);
    }
}
