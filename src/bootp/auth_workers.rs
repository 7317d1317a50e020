//! The threads that ask the HTTP authorisation server, so the BOOTP loop never
//! waits on the network. Answers come back through a channel and a wake-up.
//!
//! One thread per query out, started as needed up to `[http] max_queries` and
//! kept for the next ones: a server that never answers holds a thread only until
//! that query's deadline (each exchange is bounded by it, see `fetch`), and
//! never delays a query to the same server that it would answer at once. The
//! endpoint never has more queries out than that; a query the threads cannot take
//! at once fails at once, and its machine is refused with a log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use super::http_auth::{Answer, MAX_BODY, Query};
use crate::http_client;

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

/// One GET that ends by `deadline` whatever the server does (says nothing,
/// trickles a byte at a time, never closes): every step of the exchange is
/// bounded by the time left, and the body by [`MAX_BODY`].
fn fetch(url: &str, deadline: Instant) -> Result<(u16, Vec<u8>), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("no answer within the timeout".into());
    }
    let options = http_client::Options {
        deadline: Some(deadline),
        ..http_client::Options::all(left)
    };
    let mut response = http_client::get(url, &options).map_err(|e| e.to_string())?;
    let body = response
        .read_body(MAX_BODY)
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok((response.status(), body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A server on loopback that accepts, reads the request, then runs `serve`.
    fn server(serve: impl FnOnce(TcpStream) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                serve(stream);
            }
        });
        format!("http://127.0.0.1:{port}/boot?mac=AA")
    }

    #[test]
    fn a_silent_server_costs_the_timeout_and_no_more() {
        let url = server(|stream| {
            std::thread::sleep(Duration::from_secs(5));
            drop(stream);
        });
        let started = Instant::now();
        assert!(fetch(&url, started + Duration::from_millis(300)).is_err());
        let took = started.elapsed();
        assert!(took < Duration::from_millis(800), "{took:?}");
    }

    #[test]
    fn a_trickling_server_costs_the_timeout_and_no_more() {
        let url = server(|mut stream| {
            for _ in 0..100 {
                if stream.write_all(b"H").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let started = Instant::now();
        assert!(fetch(&url, started + Duration::from_millis(400)).is_err());
        assert!(started.elapsed() < Duration::from_millis(900));
    }

    #[test]
    fn an_endless_header_is_refused_at_its_limit() {
        // A line of 8,191 bytes ended by a bare LF, then header without end.
        let url = server(|mut stream| {
            let mut line = b"HTTP/1.0 200 OK\r\nX-Long: ".to_vec();
            line.resize(8191, b'a');
            line.push(b'\n');
            let _ = stream.write_all(&line);
            let filler = [b'b'; 65536];
            for _ in 0..4096 {
                if stream.write_all(&filler).is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let error = fetch(&url, started + Duration::from_secs(5)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(4), "{error}");
    }

    #[test]
    fn a_body_larger_than_the_limit_is_refused() {
        let url = server(|mut stream| {
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY + 1
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&vec![b'x'; MAX_BODY + 1]);
        });
        let error = fetch(&url, Instant::now() + Duration::from_secs(2)).unwrap_err();
        assert!(error.contains("larger than"), "{error}");
    }

    #[test]
    fn a_plain_answer_is_read_whole() {
        let url = server(|mut stream| {
            let _ =
                stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nClient: test\n");
            // Keeps the connection open: the length says the answer is whole.
            std::thread::sleep(Duration::from_secs(2));
        });
        let started = Instant::now();
        let (code, body) = fetch(&url, started + Duration::from_secs(1)).unwrap();
        assert_eq!((code, body.as_slice()), (200, &b"Client: test\n"[..]));
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
