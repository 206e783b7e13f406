//! Work under a time limit on another thread: [`watched`] waits at most the limit for it, so a
//! limit holds even where Extism's own timer cannot reach (a plugin blocked in a host function
//! or in its start function).
//!
//! The threads are kept between calls: a finished thread waits (for a minute at most) for the
//! next piece of work instead of exiting, so a container with a timeout does not pay for a new
//! thread on every call. A thread whose work overran its limit is simply not waited for; it
//! rejoins the idle ones when that work ends.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long past its limit work may take to come back before the caller stops waiting for
/// it: Extism's own timer interrupts WebAssembly code at the limit, and this margin lets that
/// interruption report itself.
pub(super) const TIMEOUT_MARGIN: Duration = Duration::from_millis(100);

/// How many finished threads wait for more work; more than that exit.
const MAX_IDLE_THREADS: usize = 16;

/// How long a finished thread waits for more work before it exits.
const IDLE_LIFETIME: Duration = Duration::from_secs(60);

type Job = Box<dyn FnOnce() + Send>;

/// Idle threads, each waiting on the receiving end of its channel. The channels have no
/// buffer: a send returns only once that thread has taken the work, so work is never left in
/// a channel whose thread has gone.
static IDLE: Mutex<Vec<SyncSender<Job>>> = Mutex::new(Vec::new());

/// Runs `work` on a kept (or new) thread and waits at most `limit` plus [`TIMEOUT_MARGIN`]
/// for its result: `Ok(None)` when it is still running (its thread then drops the result), an
/// error when no thread could be started. A panic in `work` resumes in the caller, as it would
/// without a limit, and the thread is kept.
pub(super) fn watched<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (sender, receiver) = sync_channel(1);
    run(Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // The caller may have stopped waiting; the result is then dropped here.
        let _ = sender.send(result);
    }))?;
    match receiver.recv_timeout(limit + TIMEOUT_MARGIN) {
        Ok(Ok(value)) => Ok(Some(value)),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Ok(None),
    }
}

/// Hands `job` to an idle thread, or starts one for it.
fn run(mut job: Job) -> std::io::Result<()> {
    loop {
        let idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let Some(thread) = idle else {
            break;
        };
        match thread.send(job) {
            Ok(()) => return Ok(()),
            // That thread stopped waiting (its idle time ran out): try the next one.
            Err(returned) => job = returned.0,
        }
    }
    std::thread::Builder::new()
        .name("warpgate watched".to_string())
        .spawn(move || serve(job))?;
    Ok(())
}

/// A thread's life: run `job`, then wait for the next one while there is room among the idle.
fn serve(mut job: Job) {
    loop {
        job();
        let (sender, receiver): (SyncSender<Job>, Receiver<Job>) = sync_channel(0);
        {
            let mut idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() >= MAX_IDLE_THREADS {
                return;
            }
            idle.push(sender);
        }
        match receiver.recv_timeout(IDLE_LIFETIME) {
            Ok(next) => job = next,
            // Its sender stays in the list until a caller finds it gone and drops it.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_id() -> std::thread::ThreadId {
        std::thread::current().id()
    }

    #[test]
    fn finished_threads_are_used_again() {
        // One new thread per call would make 40; other tests running at the same time may
        // take a few of the idle ones.
        let mut threads = std::collections::HashSet::new();
        for _ in 0..40 {
            let thread = watched(Duration::from_secs(10), thread_id)
                .unwrap()
                .unwrap();
            assert_ne!(thread, thread_id());
            threads.insert(thread);
            // Time for the thread to put itself back in the list after sending its result.
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            threads.len() <= 10,
            "{} threads for 40 calls",
            threads.len()
        );
    }

    #[test]
    fn work_over_its_limit_is_not_waited_for_and_others_still_run() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let slow = watched(Duration::from_millis(10), move || {
            let _ = wait.recv();
            1
        })
        .unwrap();
        assert_eq!(slow, None);
        assert_eq!(watched(Duration::from_secs(10), || 2).unwrap(), Some(2));
        release.send(()).unwrap();
    }

    #[test]
    fn a_panic_reaches_the_caller() {
        let panic = std::panic::catch_unwind(|| {
            watched(Duration::from_secs(10), || -> u8 {
                panic!("in the plugin")
            })
        })
        .unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"in the plugin"));
        assert_eq!(watched(Duration::from_secs(10), || 4).unwrap(), Some(4));
    }

    #[test]
    fn a_thread_gone_from_the_idle_list_is_passed_over() {
        // A sender whose thread has exited, as after its idle time ran out.
        let (gone, receiver) = sync_channel::<Job>(0);
        drop(receiver);
        IDLE.lock().unwrap().push(gone);
        assert_eq!(watched(Duration::from_secs(10), || 3).unwrap(), Some(3));
    }
}
