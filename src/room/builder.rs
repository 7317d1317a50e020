//! The thread that keeps the published table in step with the configuration and
//! the OSes' folders: the menu at once, each OS's files at once, and each
//! `kexec`/`bin` OS's torrent and description once its files are hashed. It looks
//! at the folders again every [`RESCAN`] and remakes a torrent only when a file's
//! size or modification time changed, so DHCP, TFTP and HTTP never wait for hashing
//! (their threads never touch it). It ends when the HTTP service, the table's last
//! owner, has ended.
//!
//! A reload hands it a new menu through [`RoomHandle::reload`]: the menu and the
//! OSes' files are swapped at once, the torrents as they are made.

use std::collections::HashMap;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use super::menu::{self, MENU_PATH, OSS_PREFIX};
use super::published::{Content, Published, memory_file};
use super::torrent::{self, Made, Recipe};
use crate::config::MenuConfig;

/// How often the OSes' folders are looked at for changed files.
pub const RESCAN: Duration = Duration::from_secs(2);

/// Talks to the builder thread.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    reload: Sender<MenuConfig>,
}

impl RoomHandle {
    /// Swaps the menu and the OSes for `menu`'s (on SIGHUP).
    pub fn reload(&self, menu: MenuConfig) {
        // The thread has ended only with the HTTP service: nothing is served then.
        let _ = self.reload.send(menu);
    }
}

/// A torrent made, and what it was published as.
struct Kept {
    made: Made,
    torrent: Content,
    description: Content,
}

/// Publishes the menu and the OSes' files now (before the HTTP service serves), then
/// starts the thread that makes the torrents. `url` is bootd's HTTP base URL.
pub fn start(menu: MenuConfig, url: String, published: &Published) -> std::io::Result<RoomHandle> {
    let (sender, receiver) = unbounded();
    publish_menu(&menu, &url, published);
    publish_files(&menu, published);
    let weak = published.downgrade();
    thread::Builder::new().name("room".into()).spawn(move || {
        let mut builder = Builder {
            menu,
            url,
            kept: HashMap::new(),
            failed: HashMap::new(),
        };
        builder.run(&receiver, || weak.upgrade());
    })?;
    Ok(RoomHandle { reload: sender })
}

struct Builder {
    menu: MenuConfig,
    url: String,
    /// OS name → its latest torrent.
    kept: HashMap<String, Kept>,
    /// OS name → why its torrent could not be made, last time.
    failed: HashMap<String, String>,
}

impl Builder {
    fn run(&mut self, reloads: &Receiver<MenuConfig>, table: impl Fn() -> Option<Published>) {
        loop {
            let Some(published) = table() else { return };
            self.round(&published);
            drop(published);
            match reloads.recv_timeout(RESCAN) {
                Ok(menu) => {
                    self.menu = menu;
                    let Some(published) = table() else { return };
                    publish_menu(&self.menu, &self.url, &published);
                    log::info!("room: the menu is rebuilt from the new configuration");
                }
                Err(RecvTimeoutError::Timeout) => {}
                // No reload will come: keep rescanning at the same pace.
                Err(RecvTimeoutError::Disconnected) => thread::sleep(RESCAN),
            }
        }
    }

    /// Brings every published name up to date: files, then the torrents of the OSes
    /// whose files changed (made one by one, published as each is ready).
    fn round(&mut self, published: &Published) {
        publish_files(&self.menu, published);
        let web_seed = format!("{}/{OSS_PREFIX}", self.url);
        let wanted: Vec<_> = self
            .menu
            .oss
            .iter()
            .filter(|os| os.method.uses_torrent())
            .cloned()
            .collect();
        self.kept
            .retain(|name, _| wanted.iter().any(|os| &os.name == name));
        for os in &wanted {
            let recipe = Recipe {
                name: os.name.clone(),
                dir: os.dir.clone(),
                web_seed: web_seed.clone(),
                tracker: self.menu.tracker.clone(),
            };
            let current = torrent::signature(&os.dir).ok();
            let fresh = self.kept.get(&os.name).is_some_and(|k| {
                k.made.recipe == recipe && current.as_ref() == Some(&k.made.signature)
            });
            let description = menu::description(os);
            if fresh {
                // The description may have changed on reload without the files.
                if let Some(kept) = self.kept.get_mut(&os.name)
                    && let Ok(content) = memory_file(description.as_bytes())
                {
                    kept.description = content;
                }
                continue;
            }
            match torrent::make(&recipe) {
                // A file that changed while it was hashed: made again next round.
                Ok(made) if torrent::signature(&os.dir).ok().as_ref() != Some(&made.signature) => {
                    log::info!(
                        "room: {}'s files changed while hashed; hashing again",
                        os.name
                    );
                    self.kept.remove(&os.name);
                }
                Ok(made) => match (
                    memory_file(&made.bytes),
                    memory_file(description.as_bytes()),
                ) {
                    (Ok(torrent), Ok(description)) => {
                        log::info!(
                            "room: torrent of {}: {} files, {} bytes, info-hash {}, web seed {web_seed}",
                            os.name,
                            made.files.len(),
                            made.length,
                            made.info_hash
                        );
                        self.kept.insert(
                            os.name.clone(),
                            Kept {
                                made,
                                torrent,
                                description,
                            },
                        );
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        log::warn!("room: cannot hold {}'s torrent in memory: {e}", os.name)
                    }
                },
                Err(e) => {
                    self.kept.remove(&os.name);
                    // Said once, not at every rescan; again when the reason changes.
                    if self.failed.get(&os.name) != Some(&e) {
                        log::warn!("room: no torrent for {}: {e}", os.name);
                        self.failed.insert(os.name.clone(), e);
                    }
                }
            }
            if self.kept.contains_key(&os.name) {
                self.failed.remove(&os.name);
            }
            self.publish_torrents(published);
        }
        self.publish_torrents(published);
    }

    fn publish_torrents(&self, published: &Published) {
        let mut entries = Vec::new();
        for (name, kept) in &self.kept {
            entries.push((menu::torrent_path(name), kept.torrent.clone()));
            entries.push((menu::description_path(name), kept.description.clone()));
        }
        published.replace("torrents/", entries);
    }
}

fn publish_menu(menu: &MenuConfig, url: &str, published: &Published) {
    match memory_file(menu::render(menu, url).as_bytes()) {
        Ok(content) => published.replace(MENU_PATH, vec![(MENU_PATH.to_string(), content)]),
        Err(e) => log::warn!("room: cannot hold the menu in memory: {e}"),
    }
}

/// Every OS's files under `oss/NAME/`: what the web seed and `direct` entries fetch.
fn publish_files(menu: &MenuConfig, published: &Published) {
    let mut entries = Vec::new();
    for os in &menu.oss {
        let Ok(signature) = torrent::signature(&os.dir) else {
            continue;
        };
        for (relative, _, _) in signature.0 {
            let Some(text) = relative.to_str() else {
                continue;
            };
            entries.push((
                format!("{OSS_PREFIX}{}/{text}", os.name),
                Content::Disk(os.dir.join(&relative)),
            ));
        }
    }
    published.replace(OSS_PREFIX, entries);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BootMethod, OsConfig};
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;
    use std::time::Instant;

    fn read(published: &Published, name: &str) -> Option<Vec<u8>> {
        match published.lookup(name)? {
            Content::Memory(file) => {
                let len = file.metadata().ok()?.len() as usize;
                let mut bytes = vec![0; len];
                file.read_exact_at(&mut bytes, 0).ok()?;
                Some(bytes)
            }
            Content::Disk(path) => std::fs::read(path).ok(),
        }
    }

    /// Waits at most 30 s for `name` to hold something `accept` likes.
    fn wait_for(published: &Published, name: &str, accept: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(bytes) = read(published, name)
                && accept(&bytes)
            {
                return bytes;
            }
            assert!(Instant::now() < deadline, "{name} was never published");
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn menu_with(dir: PathBuf) -> MenuConfig {
        MenuConfig {
            default: None,
            timeout: 5,
            oss_dir: None,
            url: None,
            phase1_kernel: "phase1/vmlinuz".into(),
            phase1_initrd: "phase1/initrd.img".into(),
            phase1_cmdline: String::new(),
            seed_time: 30,
            tracker: None,
            oss: vec![OsConfig {
                name: "alpine".into(),
                display: "Alpine".into(),
                method: BootMethod::Kexec,
                dir,
                kernel: Some("vmlinuz".into()),
                initrd: Some("initrd".into()),
                cmdline: "quiet".into(),
                bin: None,
                binargs: String::new(),
                image: None,
                origin: "test".into(),
            }],
        }
    }

    #[test]
    fn the_menu_is_there_at_once_and_the_torrent_follows_and_is_remade_when_a_file_changes() {
        let dir = std::env::temp_dir().join(format!("bootd-room-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vmlinuz"), vec![1u8; 1000]).unwrap();
        std::fs::write(dir.join("initrd"), vec![2u8; 1000]).unwrap();
        let published = Published::default();
        let handle = start(menu_with(dir.clone()), "http://10.0.0.1".into(), &published).unwrap();
        // Published before start returns: the HTTP service never misses them.
        assert!(read(&published, MENU_PATH).is_some());
        assert_eq!(
            read(&published, "oss/alpine/vmlinuz"),
            Some(vec![1u8; 1000])
        );
        let first = wait_for(&published, "torrents/alpine.torrent", |_| true);
        let description = wait_for(&published, "torrents/alpine.boot", |_| true);
        assert!(String::from_utf8_lossy(&description).contains("cmdline=quiet\n"));

        // A file of another size: a new torrent.
        std::fs::write(dir.join("initrd"), vec![2u8; 2000]).unwrap();
        wait_for(&published, "torrents/alpine.torrent", |b| {
            b != first.as_slice()
        });

        // A reload swaps the menu.
        let mut renamed = menu_with(dir.clone());
        renamed.oss[0].display = "Alpine Linux".into();
        handle.reload(renamed);
        wait_for(&published, MENU_PATH, |b| {
            String::from_utf8_lossy(b).contains("item os-alpine Alpine Linux\n")
        });

        // The builder ends with the table's last owner.
        drop(published);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
