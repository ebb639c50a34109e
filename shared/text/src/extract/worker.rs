//! The time box: a reader runs on a thread of its own with a [`Deadline`], and the caller
//! waits for it no longer than the deadline allows. The reader checks the same deadline
//! between pages, objects and chunks of decompressed data and stops when it has passed, so
//! a reader that was given up on does not keep the CPU busy for long.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{ExtractError, Format};

/// Stack for the reader's thread: the PDF reader recurses (nested objects up to `lopdf`'s
/// cap of 100 levels, Form XObjects up to 32 levels), and the caller's thread may be an
/// async worker with a small stack. Only what is touched is committed.
const STACK_BYTES: usize = 64 * 1024 * 1024;

/// When reading one document must be over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    /// `None` where the limit is too large to be represented: no deadline.
    at: Option<Instant>,
    limit: Duration,
    format: Format,
}

impl Deadline {
    /// The deadline `limit` from now, for reading a `format` document.
    pub(crate) fn after(limit: Duration, format: Format) -> Self {
        Deadline {
            at: Instant::now().checked_add(limit),
            limit,
            format,
        }
    }

    /// Whether the deadline has passed (always, for a zero limit).
    pub(crate) fn passed(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    /// [`ExtractError::TimedOut`] where the deadline has passed.
    pub(crate) fn check(&self) -> Result<(), ExtractError> {
        if self.passed() {
            Err(self.error())
        } else {
            Ok(())
        }
    }

    /// The error for running out of time.
    pub(crate) fn error(&self) -> ExtractError {
        ExtractError::TimedOut {
            format: self.format.as_str(),
            limit: self.limit,
        }
    }
}

/// Name of the thread that reads a `format` document.
pub(crate) fn thread_name(format: Format) -> String {
    format!("text-extract-{format}")
}

/// Runs `work` on a thread of its own and waits for its result until `deadline`; past it,
/// [`ExtractError::TimedOut`], and the thread is left to notice the deadline and end.
/// Where no thread can be had, `work` runs here (still checking the deadline itself).
pub(crate) fn run<T, F>(deadline: Deadline, work: F) -> Result<T, ExtractError>
where
    T: Send + 'static,
    F: FnOnce(&Deadline) -> Result<T, ExtractError> + Send + 'static,
{
    // Shared so that it can still be run here where spawning fails.
    let work = Arc::new(Mutex::new(Some(work)));
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name(thread_name(deadline.format))
        .stack_size(STACK_BYTES)
        .spawn({
            let work = Arc::clone(&work);
            move || {
                let work = work.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(work) = work {
                    // The receiver is gone where the caller gave up: nothing to tell.
                    let _ = sender.send(work(&deadline));
                }
            }
        });
    if spawned.is_err() {
        let work = work.lock().unwrap_or_else(PoisonError::into_inner).take();
        return match work {
            Some(work) => work(&deadline),
            None => Err(reader_failed(deadline.format)),
        };
    }
    let received = match deadline.at {
        Some(at) => receiver.recv_timeout(at.saturating_duration_since(Instant::now())),
        None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    match received {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => Err(deadline.error()),
        // The thread ended without an answer: it panicked outside the readers' guards.
        Err(RecvTimeoutError::Disconnected) => Err(reader_failed(deadline.format)),
    }
}

fn reader_failed(format: Format) -> ExtractError {
    ExtractError::corrupt(format.as_str(), "the reader failed on malformed content")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_does_not_answer_in_time_is_given_up_and_sees_the_deadline() {
        let (release, wait) = mpsc::channel::<()>();
        let (report, seen) = mpsc::channel::<bool>();
        let deadline = Deadline::after(Duration::from_millis(20), Format::Pdf);
        let result = run(deadline, move |deadline| {
            // Stuck until the test lets go, which it does only after `run` gave up.
            let _ = wait.recv();
            let _ = report.send(deadline.passed());
            Ok(())
        });
        assert_eq!(
            result,
            Err(ExtractError::TimedOut {
                format: "pdf",
                limit: Duration::from_millis(20)
            })
        );
        release.send(()).unwrap();
        assert_eq!(
            seen.recv(),
            Ok(true),
            "the abandoned reader sees its deadline passed"
        );
    }

    #[test]
    fn an_answer_in_time_is_returned() {
        let deadline = Deadline::after(Duration::from_secs(3600), Format::Docx);
        assert_eq!(run(deadline, |_| Ok(7)), Ok(7));
        assert!(!deadline.passed());
        assert!(deadline.check().is_ok());
    }

    #[test]
    fn a_zero_limit_has_always_passed_and_a_huge_one_never() {
        assert!(Deadline::after(Duration::ZERO, Format::Html).passed());
        let never = Deadline::after(Duration::MAX, Format::Html);
        assert!(!never.passed());
        assert_eq!(run(never, |_| Ok("done")), Ok("done"));
    }

    #[test]
    fn a_reader_that_panics_is_corrupt() {
        let deadline = Deadline::after(Duration::from_secs(3600), Format::Html);
        let result: Result<(), _> = run(deadline, |_| panic!("reader bug"));
        assert!(
            matches!(result, Err(ExtractError::Corrupt { format: "html", .. })),
            "{result:?}"
        );
    }
}
