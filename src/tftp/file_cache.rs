//! Local files shared by the transfers reading them.
//!
//! In a boot storm many clients fetch the same kernel and initrd at about the same
//! pace. When each transfer reads the file on its own, every read is a system call
//! and the bytes then wait, cold, in that transfer's buffer until they are sent.
//! Here the transfers of one file share one descriptor and the chunks read last:
//! one read serves every client passing through a chunk, and each block is copied
//! out of it just before it is sent, while it is still in the CPU cache.
//!
//! A file is known by device, inode, size and modification time, so a file replaced
//! or rewritten between two requests is read afresh; bytes appended after it was
//! opened are not served (its size was announced as `tsize`). Memory: a file keeps
//! at most one chunk per transfer reading it, plus one; when its last transfer ends,
//! the descriptor is closed and the chunks are freed.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use foldhash::HashMap;

/// Bytes read from a file at a time: four pages. Larger chunks cost memory when the
/// readers of a file are far apart; smaller ones cost reads when they are together.
pub const CHUNK: usize = 16 * 1024;

/// What identifies a file's content while transfers read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    device: u64,
    inode: u64,
    size: u64,
    modified_seconds: i64,
    modified_nanoseconds: i64,
}

impl FileKey {
    /// The size the file had when it was first opened: what is served.
    pub fn size(&self) -> u64 {
        self.size
    }
}

#[derive(Debug)]
struct Chunk {
    /// `CHUNK` bytes long; `len` of them were read.
    bytes: Box<[u8]>,
    len: usize,
    /// When it was last used (the file's clock), for eviction.
    used: u64,
}

#[derive(Debug)]
struct SharedFile {
    file: File,
    /// Transfers holding this file.
    readers: usize,
    chunks: HashMap<u64, Chunk>,
    clock: u64,
}

impl SharedFile {
    /// Chunk `index`, read from the file unless it is held already.
    fn chunk(&mut self, key: &FileKey, index: u64, loads: &mut u64) -> io::Result<&Chunk> {
        self.clock += 1;
        let now = self.clock;
        if !self.chunks.contains_key(&index) {
            // Reuse the least recently used chunk's memory once the file holds its share.
            let mut bytes = if self.chunks.len() > self.readers {
                let oldest = self
                    .chunks
                    .iter()
                    .min_by_key(|(_, c)| c.used)
                    .map(|(&i, _)| i);
                oldest
                    .and_then(|i| self.chunks.remove(&i))
                    .map(|c| c.bytes)
                    .unwrap_or_else(|| vec![0; CHUNK].into_boxed_slice())
            } else {
                vec![0; CHUNK].into_boxed_slice()
            };
            let start = index * CHUNK as u64;
            let wanted = usize::try_from(key.size.saturating_sub(start))
                .unwrap_or(CHUNK)
                .min(CHUNK);
            let len = read_at_full(&self.file, &mut bytes[..wanted], start)?;
            *loads += 1;
            self.chunks.insert(
                index,
                Chunk {
                    bytes,
                    len,
                    used: now,
                },
            );
        }
        let chunk = self
            .chunks
            .get_mut(&index)
            .expect("the chunk was just found or inserted");
        chunk.used = now;
        Ok(chunk)
    }
}

/// Reads into `buf` at `offset` until it is full or the file ends (a file truncated
/// since it was opened).
fn read_at_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The open local files and their chunks. Each `adopt` must be matched by one
/// `release` when the transfer ends.
#[derive(Debug, Default)]
pub struct FileCache {
    files: HashMap<FileKey, SharedFile>,
    /// Chunks read from files so far (for tests and statistics).
    loads: u64,
}

impl FileCache {
    /// Takes a freshly opened file for one transfer. A file already held (same
    /// content) is shared, and `file` is closed.
    pub fn adopt(&mut self, file: File) -> io::Result<FileKey> {
        let metadata = file.metadata()?;
        let key = FileKey {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.len(),
            modified_seconds: metadata.mtime(),
            modified_nanoseconds: metadata.mtime_nsec(),
        };
        self.files
            .entry(key)
            .or_insert_with(|| SharedFile {
                file,
                readers: 0,
                chunks: HashMap::default(),
                clock: 0,
            })
            .readers += 1;
        Ok(key)
    }

    /// One transfer of `key` ended; the last one closes the file.
    pub fn release(&mut self, key: FileKey) {
        if let Some(shared) = self.files.get_mut(&key) {
            shared.readers = shared.readers.saturating_sub(1);
            if shared.readers == 0 {
                self.files.remove(&key);
            }
        }
    }

    /// Copies the bytes at `offset` into `dest`; fewer than asked only at the end of
    /// the file (0 past it).
    pub fn read(&mut self, key: FileKey, offset: u64, dest: &mut [u8]) -> io::Result<usize> {
        let Some(shared) = self.files.get_mut(&key) else {
            return Err(io::Error::other("the file was released"));
        };
        let mut done = 0;
        while done < dest.len() {
            let position = offset + done as u64;
            if position >= key.size {
                break;
            }
            let chunk_size = CHUNK as u64;
            let chunk = shared.chunk(&key, position / chunk_size, &mut self.loads)?;
            let within = (position % chunk_size) as usize;
            if within >= chunk.len {
                // Truncated since it was opened.
                break;
            }
            let n = (chunk.len - within).min(dest.len() - done);
            dest[done..done + n].copy_from_slice(&chunk.bytes[within..within + n]);
            done += n;
        }
        Ok(done)
    }

    /// Files held open.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }

    /// Chunks read from disk so far.
    pub fn loads(&self) -> u64 {
        self.loads
    }

    /// Chunks held in memory, over all files.
    pub fn chunks_held(&self) -> usize {
        self.files.values().map(|f| f.chunks.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    fn scratch(name: &str, content: &[u8]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bootd-file-cache-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file.bin");
        std::fs::write(&path, content).unwrap();
        path
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn read_all(cache: &mut FileCache, key: FileKey, piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0; piece];
        loop {
            let n = cache.read(key, out.len() as u64, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
            if n < piece {
                return out;
            }
        }
    }

    #[test]
    fn reads_match_the_file_across_chunk_boundaries_and_at_its_end() {
        let content = pattern(3 * CHUNK + 1000);
        let path = scratch("boundaries", &content);
        for piece in [1, 512, 1468, CHUNK, CHUNK + 3, 65464] {
            let mut cache = FileCache::default();
            let key = cache.adopt(File::open(&path).unwrap()).unwrap();
            assert_eq!(key.size(), content.len() as u64);
            assert_eq!(read_all(&mut cache, key, piece), content, "piece {piece}");
            assert_eq!(
                cache.read(key, content.len() as u64, &mut [0; 9]).unwrap(),
                0
            );
            assert_eq!(cache.loads(), 4, "each chunk read once (piece {piece})");
        }
    }

    #[test]
    fn an_empty_file_reads_as_empty() {
        let path = scratch("empty", b"");
        let mut cache = FileCache::default();
        let key = cache.adopt(File::open(&path).unwrap()).unwrap();
        assert_eq!(cache.read(key, 0, &mut [0; 512]).unwrap(), 0);
        assert_eq!(cache.loads(), 0);
    }

    #[test]
    fn transfers_of_one_file_share_its_descriptor_and_its_reads() {
        let content = pattern(4 * CHUNK);
        let path = scratch("shared", &content);
        let mut cache = FileCache::default();
        let keys: Vec<FileKey> = (0..50)
            .map(|_| cache.adopt(File::open(&path).unwrap()).unwrap())
            .collect();
        assert!(keys.iter().all(|k| *k == keys[0]));
        assert_eq!(cache.open_files(), 1);
        // Fifty readers in step, one block each in turn, as a boot storm goes.
        let mut offsets = vec![0u64; keys.len()];
        let mut received = vec![Vec::new(); keys.len()];
        let mut buf = [0u8; 1468];
        while offsets.iter().any(|&o| o < content.len() as u64) {
            for (i, key) in keys.iter().enumerate() {
                let n = cache.read(*key, offsets[i], &mut buf).unwrap();
                received[i].extend_from_slice(&buf[..n]);
                offsets[i] += n as u64;
            }
        }
        assert!(received.iter().all(|r| *r == content));
        assert_eq!(cache.loads(), 4, "one read per chunk served all fifty");
        for key in keys {
            cache.release(key);
        }
        assert_eq!(cache.open_files(), 0);
        assert_eq!(cache.chunks_held(), 0);
    }

    #[test]
    fn memory_stays_within_one_chunk_per_reader_plus_one() {
        let content = pattern(64 * CHUNK);
        let path = scratch("bounded", &content);
        let mut cache = FileCache::default();
        let a = cache.adopt(File::open(&path).unwrap()).unwrap();
        assert_eq!(read_all(&mut cache, a, 1468), content);
        assert!(cache.chunks_held() <= 2, "held {}", cache.chunks_held());
        // Three readers far apart: each keeps its own chunk, none is read twice.
        let b = cache.adopt(File::open(&path).unwrap()).unwrap();
        let c = cache.adopt(File::open(&path).unwrap()).unwrap();
        let before = cache.loads();
        let starts = [0u64, 20 * CHUNK as u64, 40 * CHUNK as u64];
        let mut buf = [0u8; 1024];
        for step in 0..(CHUNK / 1024) as u64 {
            for (key, start) in [a, b, c].into_iter().zip(starts) {
                let at = start + step * 1024;
                assert_eq!(cache.read(key, at, &mut buf).unwrap(), 1024);
                assert_eq!(&buf[..], &content[at as usize..at as usize + 1024]);
            }
        }
        assert_eq!(cache.loads() - before, 3);
        assert!(cache.chunks_held() <= 4, "held {}", cache.chunks_held());
    }

    #[test]
    fn a_rewritten_file_is_a_new_file_and_growth_is_not_served() {
        let path = scratch("rewritten", &pattern(1000));
        let mut cache = FileCache::default();
        let old = cache.adopt(File::open(&path).unwrap()).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[0xAA; 500])
            .unwrap();
        // The transfer that started before sees the size it was promised.
        assert_eq!(read_all(&mut cache, old, 512), pattern(1000));
        let new = cache.adopt(File::open(&path).unwrap()).unwrap();
        assert_ne!(old, new);
        assert_eq!(new.size(), 1500);
        assert_eq!(cache.open_files(), 2);
        cache.release(old);
        assert_eq!(read_all(&mut cache, new, 512).len(), 1500);
    }

    #[test]
    fn a_file_truncated_while_read_ends_short() {
        let content = pattern(2 * CHUNK + 10);
        let path = scratch("truncated", &content);
        let mut cache = FileCache::default();
        let key = cache.adopt(File::open(&path).unwrap()).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(CHUNK as u64 + 100)
            .unwrap();
        assert_eq!(read_all(&mut cache, key, 1468), content[..CHUNK + 100]);
    }

    #[test]
    fn reading_a_released_file_is_an_error() {
        let path = scratch("released", b"abc");
        let mut cache = FileCache::default();
        let key = cache.adopt(File::open(&path).unwrap()).unwrap();
        cache.release(key);
        assert!(cache.read(key, 0, &mut [0; 3]).is_err());
        cache.release(key);
        assert_eq!(cache.open_files(), 0);
    }
}
