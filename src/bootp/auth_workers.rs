//! The threads that ask the HTTP authorisation server, so the BOOTP loop never
//! waits on the network. Answers come back through a channel and a wake-up.
//!
//! One thread per query out, started as needed up to `[http] max_queries` and
//! kept for the next ones: a server that never answers holds a thread only until
//! that query's deadline ([`super::auth_client`] ends each exchange by then), and
//! never delays a query to the same server that it would answer at once. The
//! endpoint never has more queries out than that; a query the threads cannot take
//! at once fails at once, and its machine is refused with a log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use super::auth_client;
use super::http_auth::{Answer, Query};

pub struct AuthResult {
    pub id: u64,
    pub answer: Answer,
}

pub struct AuthWorkers {
    jobs: Sender<Query>,
    queue: Receiver<Query>,
    /// Threads waiting for a query.
    idle: Arc<AtomicUsize>,
    started: usize,
    max: usize,
    results: Sender<AuthResult>,
    waker: Arc<Waker>,
}

impl AuthWorkers {
    /// Workers for up to `max` queries at once (none started yet); each answer
    /// is sent on `results`, then `waker` is woken.
    pub fn new(max: usize, results: Sender<AuthResult>, waker: Arc<Waker>) -> AuthWorkers {
        let (jobs, queue) = crossbeam_channel::bounded::<Query>(max.max(1));
        AuthWorkers {
            jobs,
            queue,
            idle: Arc::new(AtomicUsize::new(0)),
            started: 0,
            max,
            results,
            waker,
        }
    }

    /// Hands `query` to an idle thread, starting one if every idle thread has a
    /// query waiting for it already and fewer than `max` run; false when it
    /// cannot be taken at once.
    pub fn submit(&mut self, query: Query) -> bool {
        // Counting only idle threads would let this query wait behind others
        // handed over a moment before, until a thread ends a silent query.
        let waiting = self.jobs.len();
        if waiting >= self.idle.load(Ordering::Acquire) && self.started < self.max {
            match self.start_one() {
                Ok(()) => self.started += 1,
                Err(e) => log::warn!("cannot start an HTTP authorisation thread: {e}"),
            }
        }
        self.started > 0 && self.jobs.try_send(query).is_ok()
    }

    fn start_one(&self) -> std::io::Result<()> {
        let queue = self.queue.clone();
        let results = self.results.clone();
        let waker = Arc::clone(&self.waker);
        let idle = Arc::clone(&self.idle);
        std::thread::Builder::new()
            .name(format!("bootp-http{}", self.started))
            .stack_size(256 * 1024)
            .spawn(move || {
                loop {
                    idle.fetch_add(1, Ordering::AcqRel);
                    let query = queue.recv();
                    idle.fetch_sub(1, Ordering::AcqRel);
                    // Ends when the BOOTP service drops its sender.
                    let Ok(query) = query else { return };
                    let answer = ask(&query);
                    let result = AuthResult {
                        id: query.id,
                        answer,
                    };
                    if results.send(result).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            })
            .map(|_| ())
    }
}

/// One GET, ended by the query's deadline.
fn ask(query: &Query) -> Answer {
    let url = &query.url;
    if Instant::now() >= query.deadline {
        return Answer::Failed(format!("GET {url}: no answer within the timeout"));
    }
    match fetch(url, query.deadline) {
        Ok((code, body)) => Answer::Status {
            code,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        Err(e) => Answer::Failed(format!("GET {url}: {e}")),
    }
}

#[cfg(not(feature = "https"))]
fn fetch(url: &str, deadline: Instant) -> Result<(u16, Vec<u8>), String> {
    auth_client::get(url, deadline)
}

/// With TLS, `https://` goes through the HTTP crate (its timeout is whole seconds).
#[cfg(feature = "https")]
fn fetch(url: &str, deadline: Instant) -> Result<(u16, Vec<u8>), String> {
    use std::io::Read;
    if !url.to_ascii_lowercase().starts_with("https://") {
        return auth_client::get(url, deadline);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let seconds = left.as_secs_f64().ceil().max(1.0) as u64;
    let response = minreq::get(url)
        .with_timeout(seconds)
        .with_max_headers_size(auth_client::HEAD_LIMIT)
        .send_lazy()
        .map_err(|e| e.to_string())?;
    let code = response.status_code;
    let mut body = Vec::new();
    response
        .take(super::http_auth::MAX_BODY as u64)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok((code, body))
}
