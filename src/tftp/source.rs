//! Where a transfer's bytes come from: a file under the root directory (read through
//! the shared file cache), or an HTTP URL under the root prefix, streamed by a reader
//! thread into a bounded channel so the TFTP loop never blocks on the network. The
//! service opens a [`Source`] when the endpoint asks, and [`supply`] hands the
//! endpoint what a transfer's source has for it.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::endpoint::{
    Endpoint, INDIRECT_READ, IndirectFile, OpenError, OpenFailure, SourceFailure, SourceSpec,
    TransferId,
};
use super::file_cache::{FileCache, FileKey};
use crate::files::root::{self, OpenErrorKind, RootDir};
use crate::http_client;

/// A transfer's source, opened.
#[derive(Debug)]
pub enum Source {
    /// A file under the root, shared with the other transfers reading it.
    Local(FileKey),
    Http(Receiver<HttpChunk>),
}

impl Source {
    /// Opens what the endpoint asked for, and says the size of a local file. An HTTP
    /// reader calls `wake` after every message.
    pub fn open(
        spec: SourceSpec,
        root: Option<&RootDir>,
        files: &mut FileCache,
        readers: &HttpReaders,
        wake: impl Fn() + Send + 'static,
    ) -> Result<(Source, Option<u64>), OpenFailure> {
        match spec {
            SourceSpec::File { name } => {
                let root = root.ok_or_else(|| {
                    OpenFailure::Source(OpenError::not_found("a file needs a local root"))
                })?;
                let opened = open_local(root, &name).map_err(OpenFailure::Source)?;
                let file = files.adopt(opened.file).map_err(|e| {
                    let reason = format!("{}: {e}", opened.path.display());
                    OpenFailure::Source(OpenError::refused(reason))
                })?;
                Ok((Source::Local(file), Some(file.size())))
            }
            SourceSpec::OperatorFile { path } => {
                let opened = open_operator_file(&path).map_err(OpenFailure::Source)?;
                let file = files.adopt(opened.file).map_err(|e| {
                    let reason = format!("{}: {e}", opened.path.display());
                    OpenFailure::Source(OpenError::refused(reason))
                })?;
                Ok((Source::Local(file), Some(file.size())))
            }
            SourceSpec::Http { url } => {
                let running = readers.count.live();
                if running >= readers.max {
                    return Err(OpenFailure::ReadersBusy { running });
                }
                let chunks = spawn_http_reader(url, &readers.count, readers.timeout, wake)
                    .map_err(OpenFailure::Reader)?;
                Ok((Source::Http(chunks), None))
            }
        }
    }

    /// Lets go of the source, read up to `position`: a shared file closes with its
    /// last reader, and an HTTP reader stops when it finds its channel closed.
    pub fn release(self, files: &mut FileCache, position: u64) {
        if let Source::Local(file) = self {
            files.release(file, position);
        }
    }
}

/// Gives transfer `id` what its source has for it now: bytes of a local file read
/// straight into the transfer's buffer, or what its HTTP reader has delivered.
pub fn supply<Io: AsRef<Source>>(
    endpoint: &mut Endpoint<Io>,
    files: &mut FileCache,
    id: TransferId,
    now: Instant,
) {
    while let Some(io) = endpoint.source_wanted(id) {
        let chunk = match io.as_ref() {
            Source::Local(file) => {
                let file = *file;
                endpoint.handle_source_read(now, id, |at, room| files.read(file, at, room));
                continue;
            }
            Source::Http(chunks) => chunks.try_recv(),
        };
        match chunk {
            Ok(HttpChunk::Start { length }) => endpoint.handle_source_answered(now, id, length),
            Ok(HttpChunk::Data(data)) => endpoint.handle_source_data(now, id, &data),
            Ok(HttpChunk::End) => endpoint.handle_source_end(now, id),
            Ok(HttpChunk::Failed { status, reason }) => {
                let failure = SourceFailure::Http { status, reason };
                endpoint.handle_source_failed(now, id, failure);
            }
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                endpoint.handle_source_failed(now, id, SourceFailure::ReaderEnded)
            }
        }
    }
}

/// An open local file and what the log line reports about it.
#[derive(Debug)]
pub struct LocalFile {
    pub file: File,
    pub path: PathBuf,
}

/// Opens the regular file `name` under `root`, with no way out of it (see
/// `crate::files::root`).
pub fn open_local(root: &RootDir, name: &str) -> Result<LocalFile, OpenError> {
    let opened = root.open_file(name).map_err(|e| match e.kind {
        OpenErrorKind::NotFound | OpenErrorKind::NotAFile => OpenError::not_found(e.reason),
        OpenErrorKind::Refused => OpenError::refused(e.reason),
    })?;
    let root::OpenedFile { file, path, .. } = opened;
    Ok(LocalFile { file, path })
}

/// Opens the operator's file `path` (named by a `[filters]` value, so not confined
/// to the root): non-blocking, so that a FIFO put there cannot hold the service in
/// `open`, and only a regular file.
pub fn open_operator_file(path: &std::path::Path) -> Result<LocalFile, OpenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => OpenError::not_found(format!("{shown}: {e}")),
            _ => OpenError::refused(format!("{shown}: {e}")),
        })?;
    let metadata = file
        .metadata()
        .map_err(|e| OpenError::refused(format!("{shown}: {e}")))?;
    if !metadata.is_file() {
        return Err(OpenError::not_found(format!("{shown}: not a regular file")));
    }
    Ok(LocalFile {
        file,
        path: path.to_path_buf(),
    })
}

/// Reads the start of the indirection file `name` under `root` (confined like any
/// request), for the name it holds.
pub fn read_indirect(root: &RootDir, name: &str) -> Result<IndirectFile, OpenError> {
    let mut file = open_local(root, name)?;
    let mut content = Vec::new();
    read_up_to(&mut file.file, INDIRECT_READ, &mut content)
        .map_err(|e| OpenError::not_found(format!("{}: {e}", file.path.display())))?;
    Ok(IndirectFile {
        path: file.path,
        content,
    })
}

/// Reads up to `wanted` bytes into `buf` (cleared first); fewer only at end of file.
pub fn read_up_to(file: &mut File, wanted: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    buf.resize(wanted, 0);
    let filled = read_full(file, buf)?;
    buf.truncate(filled);
    Ok(filled)
}

/// Fills `buf` from `file`; fewer bytes only at end of file.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// What the HTTP reader thread reports, in order: `Start`, `Data`…, then `End` or `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpChunk {
    /// The response headers arrived with a 2xx status.
    Start {
        length: Option<u64>,
    },
    Data(Vec<u8>),
    End,
    /// Connection failure, non-2xx status, or a broken body.
    Failed {
        status: Option<u16>,
        reason: String,
    },
}

/// Bytes per chunk handed from the reader to the TFTP loop.
const CHUNK: usize = 64 * 1024;
/// Chunks buffered per transfer: the reader waits (backpressure) beyond this.
const CHUNKS_IN_FLIGHT: usize = 8;

/// The HTTP reader threads: how many run, how many may, and how long each may wait
/// on the mirror (to connect, for the answer, for each read of the body: a dead
/// mirror frees its thread within that, see `crate::http_client`).
pub struct HttpReaders {
    pub count: ReaderCount,
    /// No more run at once, so a dead mirror in a boot storm cannot pile them up.
    pub max: usize,
    pub timeout: Duration,
}

/// Counts live reader threads so a dead mirror in a boot storm cannot pile them up.
#[derive(Clone, Default)]
pub struct ReaderCount(Arc<AtomicUsize>);

impl ReaderCount {
    pub fn live(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

struct ReaderGuard(ReaderCount);

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts a reader thread streaming `url`, waiting at most `timeout` on the mirror
/// at any step; `wake` is called after every message.
pub fn spawn_http_reader(
    url: String,
    count: &ReaderCount,
    timeout: Duration,
    wake: impl Fn() + Send + 'static,
) -> io::Result<Receiver<HttpChunk>> {
    let (sender, receiver) = crossbeam_channel::bounded(CHUNKS_IN_FLIGHT);
    count.0.fetch_add(1, Ordering::Relaxed);
    let guard = ReaderGuard(count.clone());
    let spawned = std::thread::Builder::new()
        .name("tftp-http".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _guard = guard;
            stream(&url, timeout, &sender, &wake);
        });
    match spawned {
        Ok(_) => Ok(receiver),
        Err(e) => Err(e),
    }
}

fn stream(url: &str, timeout: Duration, sender: &Sender<HttpChunk>, wake: &dyn Fn()) {
    let send = |chunk: HttpChunk| -> bool {
        let delivered = sender.send(chunk).is_ok();
        wake();
        delivered
    };
    let mut response = match http_client::get(url, &http_client::Options::all(timeout)) {
        Ok(r) => r,
        Err(e) => {
            send(HttpChunk::Failed {
                status: e.status(),
                reason: format!("GET {url}: {e}"),
            });
            return;
        }
    };
    let status = response.status();
    if !(200..300).contains(&status) {
        send(HttpChunk::Failed {
            status: Some(status),
            reason: format!("GET {url}: HTTP {status} {}", response.head.reason),
        });
        return;
    }
    if !send(HttpChunk::Start {
        length: response.content_length(),
    }) {
        return;
    }
    let mut received: u64 = 0;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            // The client reports a body cut before its framing's end as an error, and
            // a mirror silent for `timeout` as a time-out: never as an end of file.
            match response.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    send(HttpChunk::Failed {
                        status: None,
                        reason: format!(
                            "GET {url}: body broken after {}: {e}",
                            received + filled as u64
                        ),
                    });
                    return;
                }
            }
        }
        received += filled as u64;
        if filled > 0 {
            chunk.truncate(filled);
            // A closed channel means the transfer is over: stop reading.
            if !send(HttpChunk::Data(chunk)) {
                return;
            }
        }
        if filled < CHUNK {
            send(HttpChunk::End);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tftp::wire::ErrorCode;
    use std::io::Write;
    use std::net::TcpListener;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "bootd-source-{}-{}",
            std::process::id(),
            std::thread::current()
                .name()
                .unwrap_or("t")
                .replace("::", "-")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/sub")).unwrap();
        std::fs::write(dir.join("root/sub/file.bin"), b"payload").unwrap();
        std::fs::write(dir.join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("root/escape")).unwrap();
        std::os::unix::fs::symlink("sub/file.bin", dir.join("root/inside")).unwrap();
        dir
    }

    #[test]
    fn local_files_inside_the_root_open_and_symlinks_out_are_refused() {
        let dir = scratch();
        let root = RootDir::open(&dir.join("root")).unwrap();
        let f = open_local(&root, "sub/file.bin").unwrap();
        assert_eq!(f.file.metadata().unwrap().len(), 7);
        let f = open_local(&root, "./inside").unwrap();
        assert_eq!(f.file.metadata().unwrap().len(), 7);
        let e = open_local(&root, "escape").unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessViolation);
        assert!(e.reason.contains("outside the root"), "{}", e.reason);
        let e = open_local(&root, "../secret").unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessViolation);
        let e = open_local(&root, "missing").unwrap_err();
        assert_eq!(e.code, ErrorCode::FileNotFound);
        let e = open_local(&root, "sub").unwrap_err();
        assert_eq!(e.code, ErrorCode::FileNotFound);
        assert!(e.reason.contains("not a regular file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_up_to_fills_or_ends() {
        let dir = scratch();
        let mut f = File::open(dir.join("root/sub/file.bin")).unwrap();
        let mut buf = Vec::new();
        assert_eq!(read_up_to(&mut f, 4, &mut buf).unwrap(), 4);
        assert_eq!(buf, b"payl");
        assert_eq!(read_up_to(&mut f, 10, &mut buf).unwrap(), 3);
        assert_eq!(buf, b"oad");
        assert_eq!(read_up_to(&mut f, 10, &mut buf).unwrap(), 0);
        let mut f = File::open(dir.join("root/sub/file.bin")).unwrap();
        let mut slice = [0u8; 10];
        assert_eq!(read_full(&mut f, &mut slice).unwrap(), 7);
        assert_eq!(&slice[..7], b"payload");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// A one-shot HTTP server on loopback answering `response` to the first request.
    fn serve_once(response: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&response);
            }
        });
        format!("http://{addr}/f")
    }

    fn collect(receiver: Receiver<HttpChunk>) -> Vec<HttpChunk> {
        let mut out = Vec::new();
        while let Ok(c) = receiver.recv_timeout(Duration::from_secs(5)) {
            let done = matches!(c, HttpChunk::End | HttpChunk::Failed { .. });
            out.push(c);
            if done {
                break;
            }
        }
        out
    }

    #[test]
    fn http_body_is_streamed_with_its_length() {
        let body = vec![7u8; 200_000];
        let mut response =
            b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n".to_vec();
        response.extend_from_slice(&body);
        let count = ReaderCount::default();
        let chunks =
            collect(spawn_http_reader(serve_once(response), &count, TIMEOUT, || {}).unwrap());
        assert_eq!(
            chunks[0],
            HttpChunk::Start {
                length: Some(200_000)
            }
        );
        let data: Vec<u8> = chunks
            .iter()
            .filter_map(|c| match c {
                HttpChunk::Data(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, body);
        assert_eq!(chunks.last(), Some(&HttpChunk::End));
    }

    #[test]
    fn http_404_and_short_bodies_fail() {
        let count = ReaderCount::default();
        let chunks = collect(
            spawn_http_reader(
                serve_once(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()),
                &count,
                TIMEOUT,
                || {},
            )
            .unwrap(),
        );
        assert!(
            matches!(
                chunks[0],
                HttpChunk::Failed {
                    status: Some(404),
                    ..
                }
            ),
            "{chunks:?}"
        );
        let chunks = collect(
            spawn_http_reader(
                serve_once(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"
                        .to_vec(),
                ),
                &count,
                TIMEOUT,
                || {},
            )
            .unwrap(),
        );
        match chunks.last() {
            Some(HttpChunk::Failed { reason, .. }) => {
                assert!(reason.contains("3 of 10"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connection_refused_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let count = ReaderCount::default();
        let chunks =
            collect(spawn_http_reader(format!("http://{addr}/x"), &count, TIMEOUT, || {}).unwrap());
        assert!(
            matches!(chunks[0], HttpChunk::Failed { status: None, .. }),
            "{chunks:?}"
        );
    }
}
