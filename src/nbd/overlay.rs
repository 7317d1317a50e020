//! The disks NBD clients see: an export's image (its file, or a copy of it in
//! memory) and, on a copy-on-write export, each machine's overlay of the pages it
//! changed, in memory or in a file of its own, bounded in size.
//!
//! An overlay maps 4 KiB pages of the image to their new content: data (in memory,
//! or at the same offset of a sparse overlay file), or zeroes (which cost nothing).
//! A read takes each page from the overlay when it has it and from the image
//! otherwise, in as few image reads as the layout allows; a write that covers part
//! of a page copies the rest of the page from the image first. Rewriting a page
//! already in the overlay rewrites it in place.
//!
//! Overlay files are unlinked as soon as they are created: they use the space of
//! their directory while bootd holds them, and vanish with bootd, even after a
//! crash, so no machine's writes outlive the service.

use std::collections::hash_map::Entry;

// Looked up for every page of every request; foldhash keeps a random per-process seed.
use foldhash::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::Hash;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::wire;

/// The unit of copy-on-write.
pub const PAGE: u64 = 4096;

/// Why a disk operation failed.
#[derive(Debug)]
pub enum DiskError {
    /// The overlay has reached its size bound.
    Full,
    Io(io::Error),
}

impl DiskError {
    /// The NBD error sent to the client.
    pub fn errno(&self) -> u32 {
        match self {
            DiskError::Full => wire::ENOSPC,
            DiskError::Io(_) => wire::EIO,
        }
    }
}

impl From<io::Error> for DiskError {
    fn from(e: io::Error) -> DiskError {
        DiskError::Io(e)
    }
}

/// An export's base image.
pub struct Image {
    file: File,
    /// The whole image, when `copy_to_ram` asked for it.
    ram: Option<Vec<u8>>,
    size: u64,
    writable: bool,
}

impl Image {
    /// Opens `path` (for writing when `writable`), reading it all into memory when
    /// `copy_to_ram`.
    pub fn open(path: &Path, writable: bool, copy_to_ram: bool) -> io::Result<Image> {
        let mut file = OpenOptions::new().read(true).write(writable).open(path)?;
        // Seeking to the end sizes block devices as well as files.
        let size = io::Seek::seek(&mut file, io::SeekFrom::End(0))?;
        let ram = if copy_to_ram {
            let len = usize::try_from(size)
                .map_err(|_| io::Error::other("the image is too large to copy to RAM"))?;
            let mut ram = Vec::new();
            ram.try_reserve_exact(len)
                .map_err(|_| io::Error::other("not enough memory to copy the image to RAM"))?;
            ram.resize(len, 0);
            file.read_exact_at(&mut ram, 0)?;
            Some(ram)
        } else {
            None
        };
        Ok(Image {
            file,
            ram,
            size,
            writable,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes held in memory (`copy_to_ram`).
    pub fn ram_bytes(&self) -> u64 {
        self.ram.as_ref().map_or(0, |r| r.len() as u64)
    }

    /// Fills `buf` from `offset`; bytes past the end read as zeroes.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let inside = self.size.saturating_sub(offset).min(buf.len() as u64) as usize;
        let (head, tail) = buf.split_at_mut(inside);
        tail.fill(0);
        match &self.ram {
            Some(ram) => {
                let start = offset as usize;
                head.copy_from_slice(&ram[start..start + inside]);
                Ok(())
            }
            None => self.file.read_exact_at(head, offset),
        }
    }

    fn writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        }
    }

    pub fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.writable()?;
        self.file.write_all_at(data, offset)
    }

    pub fn write_zeroes(&self, offset: u64, len: u64) -> io::Result<()> {
        self.writable()?;
        let zeroes = vec![0u8; (1 << 20).min(len as usize)];
        let mut at = offset;
        let end = offset + len;
        while at < end {
            let n = (end - at).min(zeroes.len() as u64) as usize;
            self.file.write_all_at(&zeroes[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    pub fn flush(&self) -> io::Result<()> {
        if self.writable {
            self.file.sync_data()
        } else {
            Ok(())
        }
    }
}

/// Where overlays keep their pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayStore {
    Memory,
    /// Unlinked files in this directory.
    Dir(PathBuf),
}

enum Page {
    Zero,
    Memory(Box<[u8]>),
    /// At the page's own offset in the overlay file.
    File,
}

/// One machine's changes to one image.
pub struct Overlay {
    pages: HashMap<u64, Page>,
    file: Option<File>,
    /// Pages holding data (zero pages hold none).
    data_pages: u64,
    max_pages: u64,
}

static OVERLAY_FILES: AtomicU64 = AtomicU64::new(0);

impl Overlay {
    /// An empty overlay of at most `max_bytes` of data.
    pub fn new(store: &OverlayStore, max_bytes: u64) -> io::Result<Overlay> {
        let file = match store {
            OverlayStore::Memory => None,
            OverlayStore::Dir(dir) => {
                let n = OVERLAY_FILES.fetch_add(1, Ordering::Relaxed);
                let path = dir.join(format!(".bootd-overlay-{}-{n}", std::process::id()));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                std::fs::remove_file(&path)?;
                Some(file)
            }
        };
        Ok(Overlay {
            pages: HashMap::default(),
            file,
            data_pages: 0,
            max_pages: max_bytes / PAGE,
        })
    }

    /// Bytes of data held.
    pub fn bytes(&self) -> u64 {
        self.data_pages * PAGE
    }

    pub fn read(&self, image: &Image, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.pages.is_empty() {
            return image.read_at(buf, offset);
        }
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / PAGE;
            let page_end = ((index + 1) * PAGE).min(end);
            let out = &mut buf[(pos - offset) as usize..(page_end - offset) as usize];
            match self.pages.get(&index) {
                None => {
                    // The run of pages the overlay does not have: one image read.
                    let mut run_end = page_end;
                    while run_end < end && !self.pages.contains_key(&(run_end / PAGE)) {
                        run_end = (run_end + PAGE).min(end);
                    }
                    let out = &mut buf[(pos - offset) as usize..(run_end - offset) as usize];
                    image.read_at(out, pos)?;
                    pos = run_end;
                    continue;
                }
                Some(Page::Zero) => out.fill(0),
                Some(Page::Memory(page)) => {
                    let at = (pos % PAGE) as usize;
                    out.copy_from_slice(&page[at..at + out.len()]);
                }
                Some(Page::File) => match &self.file {
                    Some(file) => file.read_exact_at(out, pos)?,
                    None => return Err(io::Error::other("overlay page without a file")),
                },
            }
            pos = page_end;
        }
        Ok(())
    }

    /// Pages of `offset..offset+len` that would need new data storage.
    fn pages_needed(&self, offset: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let (first, last) = (offset / PAGE, (offset + len - 1) / PAGE);
        (first..=last)
            .filter(|i| !matches!(self.pages.get(i), Some(Page::Memory(_) | Page::File)))
            .count() as u64
    }

    /// Writes `data` at `offset`; refused whole with [`DiskError::Full`] when the
    /// overlay would grow past its bound.
    pub fn write(&mut self, image: &Image, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let needed = self.pages_needed(offset, data.len() as u64);
        if self.data_pages + needed > self.max_pages {
            return Err(DiskError::Full);
        }
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / PAGE;
            let at = (pos % PAGE) as usize;
            let n = ((PAGE - pos % PAGE).min(end - pos)) as usize;
            let chunk = &data[(pos - offset) as usize..(pos - offset) as usize + n];
            if let (Some(file), 0, true) = (&self.file, at, n == PAGE as usize) {
                // Whole pages in a file overlay: the run of them in one write.
                let run = ((end - pos) / PAGE).max(1);
                let bytes = &data[(pos - offset) as usize..(pos - offset + run * PAGE) as usize];
                file.write_all_at(bytes, pos)?;
                for i in index..index + run {
                    if !matches!(self.pages.insert(i, Page::File), Some(Page::File)) {
                        self.data_pages += 1;
                    }
                }
                pos += run * PAGE;
                continue;
            }
            match self.pages.get_mut(&index) {
                Some(Page::Memory(page)) => page[at..at + n].copy_from_slice(chunk),
                Some(Page::File) => match &self.file {
                    Some(file) => file.write_all_at(chunk, pos)?,
                    None => return Err(io::Error::other("overlay page without a file").into()),
                },
                entry => {
                    let was_zero = matches!(entry, Some(Page::Zero));
                    let page = if n == PAGE as usize {
                        chunk.to_vec()
                    } else {
                        let mut page = vec![0u8; PAGE as usize];
                        if !was_zero {
                            image.read_at(&mut page, index * PAGE)?;
                        }
                        page[at..at + n].copy_from_slice(chunk);
                        page
                    };
                    let stored = match &self.file {
                        Some(file) => {
                            file.write_all_at(&page, index * PAGE)?;
                            Page::File
                        }
                        None => Page::Memory(page.into_boxed_slice()),
                    };
                    self.pages.insert(index, stored);
                    self.data_pages += 1;
                }
            }
            pos += n as u64;
        }
        Ok(())
    }

    /// Zeroes `offset..offset+len`: whole pages become zero pages (holding no data),
    /// the parts of pages at either end are written.
    pub fn write_zeroes(&mut self, image: &Image, offset: u64, len: u64) -> Result<(), DiskError> {
        let end = offset + len;
        let first_whole = offset.div_ceil(PAGE);
        let last_whole = end / PAGE; // exclusive
        if first_whole >= last_whole {
            let zeroes = vec![0u8; len as usize];
            return self.write(image, offset, &zeroes);
        }
        let head = first_whole * PAGE - offset;
        let tail = end - last_whole * PAGE;
        let needed = self.pages_needed(offset, head) + self.pages_needed(last_whole * PAGE, tail);
        let freed = (first_whole..last_whole)
            .filter(|i| matches!(self.pages.get(i), Some(Page::Memory(_) | Page::File)))
            .count() as u64;
        if self.data_pages - freed + needed > self.max_pages {
            return Err(DiskError::Full);
        }
        for index in first_whole..last_whole {
            if let Some(Page::Memory(_) | Page::File) = self.pages.insert(index, Page::Zero) {
                self.data_pages -= 1;
            }
        }
        self.write(image, offset, &vec![0u8; head as usize])?;
        self.write(image, last_whole * PAGE, &vec![0u8; tail as usize])?;
        Ok(())
    }

    /// Forgets the whole pages of `offset..offset+len`: they read from the image again.
    pub fn trim(&mut self, offset: u64, len: u64) {
        let first_whole = offset.div_ceil(PAGE);
        let last_whole = (offset + len) / PAGE;
        for index in first_whole..last_whole {
            if let Some(Page::Memory(_) | Page::File) = self.pages.remove(&index) {
                self.data_pages -= 1;
            }
        }
    }
}

/// Which disk an operation is on: an export's image, seen through an overlay or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk<K> {
    pub export: usize,
    /// `None`: the image itself (read-only and `write` exports).
    pub overlay: Option<K>,
}

/// Every export's image and every overlay.
pub struct Disks<K> {
    images: Vec<Image>,
    overlays: HashMap<K, Overlay>,
    store: OverlayStore,
    max_overlay: u64,
}

impl<K: Hash + Eq + Copy> Disks<K> {
    pub fn new(images: Vec<Image>, store: OverlayStore, max_overlay: u64) -> Disks<K> {
        Disks {
            images,
            overlays: HashMap::default(),
            store,
            max_overlay,
        }
    }

    fn image(&self, export: usize) -> io::Result<&Image> {
        self.images
            .get(export)
            .ok_or_else(|| io::Error::other("no such export"))
    }

    pub fn read(&self, disk: Disk<K>, offset: u64, len: u32) -> Result<Vec<u8>, DiskError> {
        let image = self.image(disk.export)?;
        let mut buf = vec![0u8; len as usize];
        match disk.overlay.and_then(|k| self.overlays.get(&k)) {
            Some(overlay) => overlay.read(image, offset, &mut buf)?,
            None => image.read_at(&mut buf, offset)?,
        }
        Ok(buf)
    }

    /// The image of `export` and the overlay of `key`, made on its first write.
    fn image_and_overlay(
        &mut self,
        export: usize,
        key: K,
    ) -> Result<(&Image, &mut Overlay), DiskError> {
        let image = self
            .images
            .get(export)
            .ok_or_else(|| DiskError::Io(io::Error::other("no such export")))?;
        let overlay = match self.overlays.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Overlay::new(&self.store, self.max_overlay)?),
        };
        Ok((image, overlay))
    }

    pub fn write(
        &mut self,
        disk: Disk<K>,
        offset: u64,
        data: &[u8],
        fua: bool,
    ) -> Result<(), DiskError> {
        let Some(key) = disk.overlay else {
            let image = self.image(disk.export)?;
            image.write_at(data, offset)?;
            if fua {
                image.flush()?;
            }
            return Ok(());
        };
        let (image, overlay) = self.image_and_overlay(disk.export, key)?;
        overlay.write(image, offset, data)
    }

    pub fn write_zeroes(
        &mut self,
        disk: Disk<K>,
        offset: u64,
        len: u32,
        fua: bool,
    ) -> Result<(), DiskError> {
        let Some(key) = disk.overlay else {
            let image = self.image(disk.export)?;
            image.write_zeroes(offset, u64::from(len))?;
            if fua {
                image.flush()?;
            }
            return Ok(());
        };
        let (image, overlay) = self.image_and_overlay(disk.export, key)?;
        overlay.write_zeroes(image, offset, u64::from(len))
    }

    /// Trimming the image itself is only a hint: nothing is done.
    pub fn trim(&mut self, disk: Disk<K>, offset: u64, len: u32) -> Result<(), DiskError> {
        if let Some(overlay) = disk.overlay.and_then(|k| self.overlays.get_mut(&k)) {
            overlay.trim(offset, u64::from(len));
        }
        Ok(())
    }

    /// An overlay dies with bootd, so only the image itself has anything to flush.
    pub fn flush(&mut self, disk: Disk<K>) -> Result<(), DiskError> {
        if disk.overlay.is_none() {
            self.image(disk.export)?.flush()?;
        }
        Ok(())
    }

    /// Deletes the overlay of `key`; the bytes it held, if it existed.
    pub fn drop_overlay(&mut self, key: &K) -> Option<u64> {
        self.overlays.remove(key).map(|o| o.bytes())
    }

    pub fn overlay_count(&self) -> usize {
        self.overlays.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            let n = OVERLAY_FILES.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("bootd-overlay-test-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// An image of `size` bytes whose byte i is `i % 251`.
    fn image(dir: &TempDir, size: usize, copy_to_ram: bool) -> Image {
        let path = dir.0.join("image");
        let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, content).unwrap();
        Image::open(&path, false, copy_to_ram).unwrap()
    }

    fn read(overlay: &Overlay, image: &Image, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        overlay.read(image, offset, &mut buf).unwrap();
        buf
    }

    fn stores(dir: &TempDir) -> [OverlayStore; 2] {
        [OverlayStore::Memory, OverlayStore::Dir(dir.0.clone())]
    }

    #[test]
    fn a_small_read_returns_exactly_its_bytes_from_the_image() {
        let dir = TempDir::new();
        for ram in [false, true] {
            let image = image(&dir, 10_000, ram);
            let overlay = Overlay::new(&OverlayStore::Memory, 1 << 20).unwrap();
            let got = read(&overlay, &image, 100, 512);
            let want: Vec<u8> = (100..612).map(|i| (i % 251) as u8).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn writes_read_back_around_the_image_and_rewrites_land_in_place() {
        let dir = TempDir::new();
        let image = image(&dir, 5 * 4096 + 100, false);
        for store in stores(&dir) {
            let mut overlay = Overlay::new(&store, 1 << 20).unwrap();
            let mut model: Vec<u8> = (0..5 * 4096 + 100).map(|i| (i % 251) as u8).collect();
            let writes: [(u64, usize, u8); 6] = [
                (10, 20, 1),       // inside page 0
                (4000, 200, 2),    // across pages 0 and 1
                (8192, 4096, 3),   // exactly page 2
                (20, 5, 4),        // a rewrite of page 0
                (4090, 10_000, 5), // pages 0 to 3
                (20_480, 100, 6),  // the partial last page
            ];
            for (offset, len, byte) in writes {
                overlay.write(&image, offset, &vec![byte; len]).unwrap();
                model[offset as usize..offset as usize + len].fill(byte);
                assert_eq!(read(&overlay, &image, 0, model.len()), model, "{store:?}");
            }
            assert_eq!(overlay.bytes(), 5 * PAGE);
            // Reads that start and end inside pages.
            assert_eq!(read(&overlay, &image, 4095, 3), model[4095..4098].to_vec());
        }
    }

    #[test]
    fn the_image_is_never_written() {
        let dir = TempDir::new();
        let image = image(&dir, 8192, false);
        let before = std::fs::read(dir.0.join("image")).unwrap();
        let mut overlay = Overlay::new(&OverlayStore::Dir(dir.0.clone()), 1 << 20).unwrap();
        overlay.write(&image, 0, &[9; 8192]).unwrap();
        assert_eq!(std::fs::read(dir.0.join("image")).unwrap(), before);
        // The overlay file is unlinked: only the image is in the directory.
        let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_full_overlay_refuses_the_whole_write_and_keeps_rewrites() {
        let dir = TempDir::new();
        let image = image(&dir, 16 * 4096, false);
        let mut overlay = Overlay::new(&OverlayStore::Memory, 2 * PAGE).unwrap();
        overlay.write(&image, 0, &[1; 8192]).unwrap();
        let before = read(&overlay, &image, 0, 16 * 4096);
        assert!(matches!(
            overlay.write(&image, 8000, &[2; 400]),
            Err(DiskError::Full)
        ));
        assert_eq!(
            read(&overlay, &image, 0, 16 * 4096),
            before,
            "nothing written"
        );
        overlay.write(&image, 100, &[3; 100]).unwrap();
        assert_eq!(DiskError::Full.errno(), wire::ENOSPC);
    }

    #[test]
    fn zeroes_cost_no_space_and_trim_gives_the_image_back() {
        let dir = TempDir::new();
        let image = image(&dir, 16 * 4096, false);
        let original = read(
            &Overlay::new(&OverlayStore::Memory, 0).unwrap(),
            &image,
            0,
            16 * 4096,
        );
        for store in stores(&dir) {
            let mut overlay = Overlay::new(&store, 2 * PAGE).unwrap();
            overlay.write(&image, 4096, &[7; 4096]).unwrap();
            // 10 pages of zeroes, ragged at both ends: two partial pages of data.
            overlay.write_zeroes(&image, 100, 10 * 4096).unwrap();
            let got = read(&overlay, &image, 0, 16 * 4096);
            assert!(got[100..100 + 10 * 4096].iter().all(|b| *b == 0));
            assert_eq!(got[..100], original[..100]);
            assert_eq!(got[100 + 10 * 4096..], original[100 + 10 * 4096..]);
            assert_eq!(overlay.bytes(), 2 * PAGE);
            overlay.trim(0, 16 * 4096);
            assert_eq!(overlay.bytes(), 0);
            assert_eq!(read(&overlay, &image, 0, 16 * 4096), original);
        }
    }

    #[test]
    fn each_overlay_key_sees_only_its_own_writes() {
        let dir = TempDir::new();
        let images = vec![image(&dir, 8192, false)];
        let mut disks: Disks<u8> = Disks::new(images, OverlayStore::Memory, 1 << 20);
        let a = Disk {
            export: 0,
            overlay: Some(1u8),
        };
        let b = Disk {
            export: 0,
            overlay: Some(2u8),
        };
        disks.write(a, 0, b"machine a", false).unwrap();
        assert_eq!(disks.read(a, 0, 9).unwrap(), b"machine a");
        assert_ne!(disks.read(b, 0, 9).unwrap(), b"machine a");
        assert_eq!(disks.drop_overlay(&1), Some(PAGE));
        assert_ne!(disks.read(a, 0, 9).unwrap(), b"machine a");
        assert_eq!(disks.drop_overlay(&1), None);
    }

    #[test]
    fn writing_a_read_only_image_fails() {
        let dir = TempDir::new();
        let mut disks: Disks<u8> =
            Disks::new(vec![image(&dir, 8192, false)], OverlayStore::Memory, 0);
        let disk = Disk {
            export: 0,
            overlay: None,
        };
        assert!(matches!(
            disks.write(disk, 0, b"x", false),
            Err(DiskError::Io(_))
        ));
    }
}
