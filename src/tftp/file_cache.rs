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
//! opened are not served (its size was announced as `tsize`). Memory: a chunk is
//! kept only while the next byte of some transfer lies in it, so transfers moving
//! together hold a chunk or two between them and transfers far apart one each; when
//! a file's last transfer ends, its descriptor is closed.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use foldhash::HashMap;

/// Bytes read from a file at a time: four pages. Larger chunks cost memory when the
/// readers of a file are far apart; smaller ones cost reads when they are together.
pub const CHUNK: usize = 16 * 1024;
const CHUNK_BYTES: u64 = CHUNK as u64;
/// A read at least this large, for a file no other transfer reads, skips the chunks:
/// copying through them would only add a copy (a window, or a large block).
/// Smaller reads still go through a chunk, which saves system calls in lock-step.
const DIRECT_READ: usize = 4 * 1024;

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

#[derive(Debug, Default)]
struct Chunk {
    /// Transfers whose next byte lies in this chunk; it is dropped when none is left.
    readers_here: usize,
    /// `CHUNK` bytes of room, of which `len` were read; `None` until first needed.
    bytes: Option<(Box<[u8]>, usize)>,
}

#[derive(Debug)]
struct SharedFile {
    file: File,
    /// Transfers holding this file.
    readers: usize,
    chunks: HashMap<u64, Chunk>,
    /// The room of the last chunk dropped, for the next one read.
    spare: Option<Box<[u8]>>,
}

impl SharedFile {
    /// The bytes of chunk `index` (and how many there are), read from the file
    /// unless they are held already.
    fn load(&mut self, key: &FileKey, index: u64, loads: &mut u64) -> io::Result<&[u8]> {
        let chunk = self.chunks.entry(index).or_default();
        if chunk.bytes.is_none() {
            let mut room = self
                .spare
                .take()
                .unwrap_or_else(|| vec![0; CHUNK].into_boxed_slice());
            let start = index * CHUNK_BYTES;
            let wanted = usize::try_from(key.size.saturating_sub(start))
                .unwrap_or(CHUNK)
                .min(CHUNK);
            let len = read_at_full(&self.file, &mut room[..wanted], start)?;
            *loads += 1;
            chunk.bytes = Some((room, len));
        }
        let (room, len) = chunk.bytes.as_ref().expect("loaded above");
        Ok(&room[..*len])
    }

    /// Drops the chunks in `first..=last` that no transfer is about to read.
    fn drop_unread(&mut self, first: u64, last: u64) {
        for index in first..=last {
            if self.chunks.get(&index).is_some_and(|c| c.readers_here == 0)
                && let Some(chunk) = self.chunks.remove(&index)
            {
                self.spare = chunk.bytes.map(|(room, _)| room).or(self.spare.take());
            }
        }
    }

    fn arrive(&mut self, position: u64) {
        self.chunks
            .entry(position / CHUNK_BYTES)
            .or_default()
            .readers_here += 1;
    }

    fn leave(&mut self, position: u64) {
        let index = position / CHUNK_BYTES;
        if let Some(chunk) = self.chunks.get_mut(&index) {
            chunk.readers_here = chunk.readers_here.saturating_sub(1);
        }
        self.drop_unread(index, index);
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

/// The open local files and their chunks. A transfer `adopt`s a file, `read`s it from
/// the start in order, and `release`s it where it stopped.
#[derive(Debug, Default)]
pub struct FileCache {
    files: HashMap<FileKey, SharedFile>,
    /// Chunks read from files so far (for tests and statistics).
    loads: u64,
}

impl FileCache {
    /// Takes a freshly opened file for one transfer, which starts reading at 0. A
    /// file already held (same content) is shared, and `file` is closed.
    pub fn adopt(&mut self, file: File) -> io::Result<FileKey> {
        let metadata = file.metadata()?;
        let key = FileKey {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.len(),
            modified_seconds: metadata.mtime(),
            modified_nanoseconds: metadata.mtime_nsec(),
        };
        let shared = self.files.entry(key).or_insert_with(|| SharedFile {
            file,
            readers: 0,
            chunks: HashMap::default(),
            spare: None,
        });
        shared.readers += 1;
        shared.arrive(0);
        Ok(key)
    }

    /// One transfer of `key` ended with its next byte at `position`; the last one
    /// closes the file.
    pub fn release(&mut self, key: FileKey, position: u64) {
        let Some(shared) = self.files.get_mut(&key) else {
            return;
        };
        shared.leave(position);
        shared.readers = shared.readers.saturating_sub(1);
        if shared.readers == 0 {
            self.files.remove(&key);
        }
    }

    /// Copies the bytes at `offset` into `dest` for the transfer whose next byte that
    /// is; it moves on past them. Fewer bytes than asked only at the end of the file
    /// (0 past it).
    pub fn read(&mut self, key: FileKey, offset: u64, dest: &mut [u8]) -> io::Result<usize> {
        let Some(shared) = self.files.get_mut(&key) else {
            return Err(io::Error::other("the file was released"));
        };
        let mut done = 0;
        let copied = if shared.readers == 1 && dest.len() >= DIRECT_READ {
            // Nobody to share with: straight from the file into place, one copy.
            let allowed = usize::try_from(key.size.saturating_sub(offset))
                .unwrap_or(usize::MAX)
                .min(dest.len());
            read_at_full(&shared.file, &mut dest[..allowed], offset).inspect(|&n| done = n)
        } else {
            loop {
                let position = offset + done as u64;
                if done == dest.len() || position >= key.size {
                    break Ok(done);
                }
                let bytes = match shared.load(&key, position / CHUNK_BYTES, &mut self.loads) {
                    Ok(bytes) => bytes,
                    Err(e) => break Err(e),
                };
                let within = (position % CHUNK_BYTES) as usize;
                if within >= bytes.len() {
                    // Truncated since it was opened.
                    break Ok(done);
                }
                let n = (bytes.len() - within).min(dest.len() - done);
                dest[done..done + n].copy_from_slice(&bytes[within..within + n]);
                done += n;
            }
        };
        let end = offset + done as u64;
        // A failed read leaves the transfer where it was (it is aborted and released there).
        if copied.is_ok() && end / CHUNK_BYTES != offset / CHUNK_BYTES {
            shared.arrive(end);
            shared.leave(offset);
        }
        // Chunks read on the way through, which nobody else is in.
        shared.drop_unread(offset / CHUNK_BYTES, end / CHUNK_BYTES);
        copied
    }

    /// Files held open.
    #[cfg(test)]
    pub fn open_files(&self) -> usize {
        self.files.len()
    }

    /// Chunks read from disk so far.
    #[cfg(test)]
    pub fn loads(&self) -> u64 {
        self.loads
    }

    /// Chunks whose bytes are held in memory, over all files.
    #[cfg(test)]
    pub fn chunks_held(&self) -> usize {
        self.files
            .values()
            .flat_map(|f| f.chunks.values())
            .filter(|c| c.bytes.is_some())
            .count()
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

    /// Reads the whole file as one transfer does, `piece` bytes at a time.
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
            let end = content.len() as u64;
            assert_eq!(cache.read(key, end, &mut [0; 9]).unwrap(), 0);
            // A lone transfer reads large pieces straight from the file, small ones
            // through chunks, each read once.
            let chunk_reads = if piece >= DIRECT_READ { 0 } else { 4 };
            assert_eq!(cache.loads(), chunk_reads, "piece {piece}");
            assert!(cache.chunks_held() <= 1, "piece {piece}");
            cache.release(key, end);
            assert_eq!((cache.open_files(), cache.chunks_held()), (0, 0));
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
        let mut most_held = 0;
        while offsets.iter().any(|&o| o < content.len() as u64) {
            for (i, key) in keys.iter().enumerate() {
                let n = cache.read(*key, offsets[i], &mut buf).unwrap();
                received[i].extend_from_slice(&buf[..n]);
                offsets[i] += n as u64;
                most_held = most_held.max(cache.chunks_held());
            }
        }
        assert!(received.iter().all(|r| *r == content));
        assert_eq!(cache.loads(), 4, "one read per chunk served all fifty");
        assert!(most_held <= 2, "held up to {most_held} chunks");
        for (key, offset) in keys.into_iter().zip(offsets) {
            cache.release(key, offset);
        }
        assert_eq!((cache.open_files(), cache.chunks_held()), (0, 0));
    }

    #[test]
    fn transfers_far_apart_keep_one_chunk_each_and_read_none_twice() {
        let content = pattern(64 * CHUNK);
        let path = scratch("apart", &content);
        let mut cache = FileCache::default();
        let keys: Vec<FileKey> = (0..3)
            .map(|_| cache.adopt(File::open(&path).unwrap()).unwrap())
            .collect();
        // Bring the second and third transfers 20 and 40 chunks in.
        let mut offsets = [0u64, 0, 0];
        let mut skip = vec![0u8; 20 * CHUNK];
        for (i, offset) in offsets.iter_mut().enumerate().skip(1) {
            for _ in 0..i {
                *offset += cache.read(keys[i], *offset, &mut skip).unwrap() as u64;
            }
        }
        assert_eq!(offsets, [0, 20 * CHUNK as u64, 40 * CHUNK as u64]);
        let before = cache.loads();
        let mut buf = [0u8; 1024];
        for _ in 0..CHUNK / 1024 {
            for (key, offset) in keys.iter().zip(offsets.iter_mut()) {
                assert_eq!(cache.read(*key, *offset, &mut buf).unwrap(), 1024);
                let at = *offset as usize;
                assert_eq!(&buf[..], &content[at..at + 1024]);
                *offset += 1024;
                assert!(cache.chunks_held() <= 3, "held {}", cache.chunks_held());
            }
        }
        // Chunks 0 and 20 were read by the transfers passing through them and kept,
        // since a transfer was about to read each: only chunk 40 is read now.
        assert_eq!(cache.loads() - before, 1);
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
        cache.release(old, 1000);
        assert_eq!(cache.open_files(), 1);
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
        cache.release(key, 0);
        assert!(cache.read(key, 0, &mut [0; 3]).is_err());
        cache.release(key, 0);
        assert_eq!(cache.open_files(), 0);
    }
}
