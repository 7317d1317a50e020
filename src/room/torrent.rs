//! The v1 torrent of an OS's folder (BEP 3), made with `lava_torrent`: every file
//! of the folder (hidden ones left out), in path order, in pieces of
//! [`PIECE_LENGTH`]; bootd's HTTP URL as the BEP 19 web seed (`url-list`), so the
//! first machine needs no other peer and bootd runs no BitTorrent client; the
//! configured tracker as `announce`. Never private: BEP 14 local peer discovery,
//! which lets the machines of one network find each other without a tracker, is off
//! for private torrents in aria2.
//!
//! Hashing reads every byte, so a torrent is remade only when its [`Signature`] (each
//! file's path, size and modification time) or what is written in it changes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use lava_torrent::bencode::BencodeElem;
use lava_torrent::torrent::v1::TorrentBuilder;

/// 256 KiB: aria2's and mktorrent's usual size; a 256 MiB image is 1024 pieces,
/// 20 KiB of hashes.
pub const PIECE_LENGTH: i64 = 256 * 1024;

/// A folder's files as they stand: (path relative to the folder, size, mtime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature(pub Vec<(PathBuf, u64, Option<SystemTime>)>);

/// What goes into a torrent besides the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The torrent's name: the OS's name, also its folder under the web seed.
    pub name: String,
    pub dir: PathBuf,
    /// The web seed: bootd's `…/oss/` URL, to which clients add `NAME/FILE`.
    pub web_seed: String,
    pub tracker: Option<String>,
}

/// A torrent made from a folder.
#[derive(Debug, Clone)]
pub struct Made {
    pub recipe: Recipe,
    pub signature: Signature,
    /// The bencoded metainfo.
    pub bytes: Vec<u8>,
    pub info_hash: String,
    /// Its files, relative to the folder, in torrent order.
    pub files: Vec<PathBuf>,
    pub length: u64,
}

/// The files of `dir` as the torrent will list them: recursive, hidden names left
/// out, sorted by path (lava_torrent's own listing rules).
pub fn signature(dir: &Path) -> std::io::Result<Signature> {
    let mut found = Vec::new();
    walk(dir, dir, &mut found, 0)?;
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Signature(found))
}

/// Folders nested deeper are not followed (a symbolic link loop ends here).
const MAX_DEPTH: usize = 16;

fn walk(
    top: &Path,
    dir: &Path,
    found: &mut Vec<(PathBuf, u64, Option<SystemTime>)>,
    depth: usize,
) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(std::io::Error::other(format!(
            "{}: folders nested more than {MAX_DEPTH} deep",
            dir.display()
        )));
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let metadata = path.metadata()?;
        if metadata.is_dir() {
            walk(top, &path, found, depth + 1)?;
        } else {
            let relative = path.strip_prefix(top).unwrap_or(&path).to_path_buf();
            found.push((relative, metadata.len(), metadata.modified().ok()));
        }
    }
    Ok(())
}

/// Hashes the folder and writes the metainfo. Reads every byte: run it off the
/// services' threads.
pub fn make(recipe: &Recipe) -> Result<Made, String> {
    let dir = &recipe.dir;
    let signature = signature(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if signature.0.is_empty() {
        return Err(format!("{}: no file to share", dir.display()));
    }
    let builder = TorrentBuilder::new(dir, PIECE_LENGTH)
        .set_name(recipe.name.clone())
        .set_num_threads(1)
        .set_announce(recipe.tracker.clone())
        .add_extra_field(
            "url-list".into(),
            BencodeElem::List(vec![BencodeElem::String(recipe.web_seed.clone())]),
        );
    let torrent = builder
        .build()
        .map_err(|e| format!("{}: cannot make the torrent: {e}", dir.display()))?;
    let info_hash = torrent.info_hash();
    let files: Vec<PathBuf> = torrent
        .files
        .iter()
        .flatten()
        .map(|f| f.path.clone())
        .collect();
    let length = u64::try_from(torrent.length).unwrap_or(0);
    let bytes = torrent
        .encode()
        .map_err(|e| format!("{}: cannot encode the torrent: {e}", dir.display()))?;
    Ok(Made {
        recipe: recipe.clone(),
        signature,
        bytes,
        info_hash,
        files,
        length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lava_torrent::torrent::v1::Torrent;
    use sha1::{Digest, Sha1};

    fn folder(files: &[(&str, Vec<u8>)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "bootd-torrent-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        dir
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    fn recipe(dir: &Path) -> Recipe {
        Recipe {
            name: "alpine".into(),
            dir: dir.to_path_buf(),
            web_seed: "http://10.0.0.1/oss/".into(),
            tracker: None,
        }
    }

    #[test]
    fn the_torrent_names_the_web_seed_and_hashes_the_files_in_order() {
        let kernel: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let initrd = vec![7u8; 100_000];
        let dir = folder(&[
            ("vmlinuz", kernel.clone()),
            ("boot/initrd.img", initrd.clone()),
            (".hidden", b"not shared".to_vec()),
        ]);
        let made = make(&recipe(&dir)).unwrap();
        assert_eq!(
            made.files,
            [PathBuf::from("boot/initrd.img"), PathBuf::from("vmlinuz")]
        );
        assert_eq!(made.length, 400_000);
        let torrent = Torrent::read_from_bytes(&made.bytes).unwrap();
        assert_eq!(torrent.name, "alpine");
        assert_eq!(torrent.announce, None);
        assert_eq!(torrent.piece_length, PIECE_LENGTH);
        let url_list = torrent
            .extra_fields
            .as_ref()
            .and_then(|f| f.get("url-list"))
            .cloned();
        assert_eq!(
            url_list,
            Some(BencodeElem::List(vec![BencodeElem::String(
                "http://10.0.0.1/oss/".into()
            )]))
        );
        // The pieces are the SHA-1s of the files concatenated in torrent order.
        let mut all = initrd;
        all.extend(kernel);
        let pieces: Vec<Vec<u8>> = all
            .chunks(PIECE_LENGTH as usize)
            .map(|c| Sha1::digest(c).to_vec())
            .collect();
        assert_eq!(torrent.pieces, pieces);
        assert_eq!(made.info_hash, torrent.info_hash());
        assert!(!String::from_utf8_lossy(&made.bytes).contains("private"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_tracker_is_the_announce_url() {
        let dir = folder(&[("bin", b"#!/bin/sh\n".to_vec())]);
        let mut r = recipe(&dir);
        r.tracker = Some("http://10.0.0.1:6969/announce".into());
        let made = make(&r).unwrap();
        let torrent = Torrent::read_from_bytes(&made.bytes).unwrap();
        assert_eq!(
            torrent.announce.as_deref(),
            Some("http://10.0.0.1:6969/announce")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_signature_changes_with_a_file_and_not_without() {
        let dir = folder(&[("a", vec![1; 10])]);
        let first = signature(&dir).unwrap();
        assert_eq!(signature(&dir).unwrap(), first);
        std::fs::write(dir.join("a"), vec![1; 11]).unwrap();
        assert_ne!(signature(&dir).unwrap(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_empty_or_missing_folder_is_an_error_not_a_panic() {
        let dir = folder(&[]);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(make(&recipe(&dir)).unwrap_err().contains("no file"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(make(&recipe(&dir)).is_err());
    }
}
