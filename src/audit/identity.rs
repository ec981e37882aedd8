//! Who and where: the process user and host recorded in each event.

use std::sync::OnceLock;

/// The user and host of this process, read once.
pub(crate) fn user_and_host() -> &'static (String, String) {
    static ID: OnceLock<(String, String)> = OnceLock::new();
    ID.get_or_init(|| (user(), host()))
}

/// `USER` or `LOGNAME`, else `uid:N` from `/proc/self/status` (Linux), else `unknown`.
fn user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return v;
            }
        }
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(|uid| format!("uid:{uid}")))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The kernel's host name (Linux), else `HOSTNAME`, else `unknown`.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}
