//! What the operator process costs: memory and CPU from /proc (the Kubernetes API requests it
//! counted itself are read with `vitess_operator_e2e::requests`).

use anyhow::{Context, Result};

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux x86_64 and arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// Peak and current resident memory in MiB (VmHWM, VmRSS of /proc/<pid>/status).
pub fn memory_mib(pid: u32) -> Result<(f64, f64)> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<f64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{path} has no {name}"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{path}: cannot read {line:?}"))?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// User plus system CPU seconds the process has used (utime + stime of /proc/<pid>/stat).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: no ')'"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("{path}: no field {}", i + 3))
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}
