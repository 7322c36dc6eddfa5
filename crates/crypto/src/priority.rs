//! Lowers the calling thread's scheduling priority, so hashing threads get only the CPU the
//! async runtime leaves idle.
//!
//! Linux keeps a nice value per thread (setpriority(2), "Bugs": under NPTL it is a per-thread
//! attribute), so `setpriority(PRIO_PROCESS, gettid(), …)` touches this thread alone. On
//! other systems the call would renice the whole process, so there it is not made.

/// Raises this thread's nice value by `increment` (capped at 19). Returns the new value.
#[cfg(target_os = "linux")]
pub(crate) fn lower_current_thread(increment: u8) -> std::io::Result<i32> {
    use rustix::process::{getpriority_process, setpriority_process};
    let tid = Some(rustix::thread::gettid());
    let current = getpriority_process(tid)?;
    let target = current.saturating_add(i32::from(increment)).min(19);
    setpriority_process(tid, target)?;
    Ok(target)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_current_thread(_increment: u8) -> std::io::Result<i32> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "per-thread nice values are only set on Linux",
    ))
}

/// This thread's nice value, where it can be read.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn current_thread_nice() -> std::io::Result<i32> {
    Ok(rustix::process::getpriority_process(Some(
        rustix::thread::gettid(),
    ))?)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_the_calling_thread() -> std::io::Result<()> {
        let before = current_thread_nice()?;
        let lowered = std::thread::spawn(|| {
            let set = lower_current_thread(5)?;
            Ok::<_, std::io::Error>((set, current_thread_nice()?))
        })
        .join()
        .map_err(|_| std::io::Error::other("thread panicked"))??;
        assert_eq!(lowered.0, (before + 5).min(19));
        assert_eq!(lowered.1, lowered.0);
        assert_eq!(
            current_thread_nice()?,
            before,
            "the caller's priority is untouched"
        );
        Ok(())
    }
}
