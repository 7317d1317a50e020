//! Process limits a boot storm needs: every TFTP transfer holds two sockets and
//! shares a file, so `max_transfers` transfers need up to three times as many
//! descriptors, more than the usual soft limit of 1024.

/// Raises the soft limit on open files towards `wanted` (never above the hard
/// limit); returns the limit in force afterwards.
pub fn raise_open_files(wanted: u64) -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let target = wanted.min(limit.rlim_max);
    if limit.rlim_cur >= target {
        return Ok(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit from a struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_lowers_and_never_exceeds_the_hard_limit() {
        let now = raise_open_files(0).unwrap();
        assert!(now > 0);
        let raised = raise_open_files(u64::MAX).unwrap();
        assert!(raised >= now);
    }
}
