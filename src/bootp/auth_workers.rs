//! The worker threads that ask the HTTP authorisation server, so the BOOTP loop
//! never waits on the network. Answers come back through a channel and a wake-up.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::Waker;

use super::http_auth::{Answer, MAX_BODY, Query};

/// Queries waiting for a worker; beyond this a query fails at once.
const QUEUE: usize = 1024;

pub struct AuthResult {
    pub id: u64,
    pub answer: Answer,
}

pub struct AuthWorkers {
    jobs: Sender<Query>,
}

impl AuthWorkers {
    /// Starts `threads` workers; each answer is sent on `results`, then `waker` is woken.
    pub fn start(
        threads: usize,
        timeout: Duration,
        results: Sender<AuthResult>,
        waker: Arc<Waker>,
    ) -> std::io::Result<AuthWorkers> {
        let (jobs, queue) = crossbeam_channel::bounded::<Query>(QUEUE);
        for n in 0..threads {
            let queue: Receiver<Query> = queue.clone();
            let results = results.clone();
            let waker = Arc::clone(&waker);
            std::thread::Builder::new()
                .name(format!("bootp-http{n}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    // Ends when the BOOTP service drops its sender.
                    while let Ok(query) = queue.recv() {
                        let answer = ask(&query.url, timeout);
                        if results
                            .send(AuthResult {
                                id: query.id,
                                answer,
                            })
                            .is_err()
                        {
                            return;
                        }
                        let _ = waker.wake();
                    }
                })?;
        }
        Ok(AuthWorkers { jobs })
    }

    /// Queues `query`; false when the queue is full.
    pub fn submit(&self, query: Query) -> bool {
        !matches!(
            self.jobs.try_send(query),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_))
        )
    }
}

/// One GET; minreq's timeout is whole seconds and covers the whole exchange.
fn ask(url: &str, timeout: Duration) -> Answer {
    let seconds = timeout.as_secs_f64().ceil().max(1.0) as u64;
    let response = match minreq::get(url).with_timeout(seconds).send_lazy() {
        Ok(r) => r,
        Err(e) => return Answer::Failed(format!("GET {url}: {e}")),
    };
    let code = response.status_code;
    let mut body = Vec::new();
    if let Err(e) = response.take(MAX_BODY as u64).read_to_end(&mut body) {
        return Answer::Failed(format!("GET {url}: reading the answer: {e}"));
    }
    Answer::Status {
        code,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
