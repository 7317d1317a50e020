//! A room full of machines with real clients: curl fetches the iPXE menu bootd
//! makes from `[os NAME]` sections, and aria2c fetches an OS by BitTorrent from the
//! torrent bootd publishes: with bootd's HTTP service as the only source (the web
//! seed), then several machines on one network finding each other by local peer
//! discovery (BEP 14), then through Debian's opentracker. The machines' files are
//! compared with the originals byte for byte; that pieces came from peers and not
//! only from the web seed is read in aria2's own logs, and bootd's log says how
//! many bytes the web seed sent.
//!
//! The server namespace holds a bridge; each machine is a namespace of its own with
//! a veth leg on the bridge, so the machines share one segment (multicast for LPD)
//! as in a classroom.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// The OS image's two files: big enough for many pieces (256 KiB each).
const KERNEL_BYTES: usize = 3 << 20;
const INITRD_BYTES: usize = 9 << 20;

struct Room {
    server: Netns,
    bridge: String,
    machines: Vec<(Netns, String, String)>,
    dir: TempDir,
    address: String,
}

impl Room {
    /// A server on `net`.1 and `count` machines on `net`.11, .12, … on one bridge.
    fn new(net: &str, count: usize) -> Room {
        let server = Netns::new("s");
        let bridge = unique("b");
        server.run(&["ip", "link", "add", &bridge, "type", "bridge"]);
        // Without a querier, snooping would stop LPD's multicast between legs.
        server.run(&[
            "ip",
            "link",
            "set",
            &bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        let address = format!("{net}.1");
        server.run(&[
            "ip",
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            &bridge,
        ]);
        server.run(&["ip", "link", "set", &bridge, "up"]);
        let mut machines = Vec::new();
        for i in 0..count {
            let machine = Netns::new("m");
            let leg = unique("v");
            let nic = unique("w");
            sh(&[
                "ip",
                "link",
                "add",
                &leg,
                "netns",
                &server.name,
                "type",
                "veth",
                "peer",
                "name",
                &nic,
                "netns",
                &machine.name,
            ]);
            server.run(&["ip", "link", "set", &leg, "master", &bridge]);
            server.run(&["ip", "link", "set", &leg, "up"]);
            let ip = format!("{net}.{}", 11 + i);
            machine.run(&["ip", "addr", "add", &format!("{ip}/24"), "dev", &nic]);
            machine.run(&["ip", "link", "set", &nic, "up"]);
            // LPD's multicast leaves by this NIC (there is no default route).
            machine.run(&["ip", "route", "add", "224.0.0.0/4", "dev", &nic]);
            machines.push((machine, nic, ip));
        }
        let dir = TempDir::new();
        std::fs::create_dir_all(dir.path.join("root")).unwrap();
        let os = dir.path.join("oss/alpine");
        std::fs::create_dir_all(&os).unwrap();
        std::fs::write(os.join("vmlinuz"), pattern(KERNEL_BYTES, 1)).unwrap();
        std::fs::write(os.join("initrd.img"), pattern(INITRD_BYTES, 2)).unwrap();
        Room {
            server,
            bridge,
            machines,
            dir,
            address,
        }
    }

    /// Starts `bootd -t -H` with the OS `alpine` and `[menu]` lines `menu`; waits
    /// for its torrent and returns bootd and the torrent's info-hash.
    fn start(&self, menu: &str) -> (Bootd, String) {
        let config = format!(
            "[logger]\nlevel = info\n\
             [tftp]\naddress = {0}\nroot = {1}/root\n\
             [httpd]\naddress = {0}\n\
             [menu]\ntimeout = 5\n{menu}\n\
             [os debian]\nname = Debian (direct)\nmethod = direct\ndir = {1}/oss/alpine\nkernel = vmlinuz\ninitrd = initrd.img\ncmdline = console=ttyS0\n\
             [os alpine]\nname = Alpine (BitTorrent)\ndir = {1}/oss/alpine\nkernel = vmlinuz\ninitrd = initrd.img\ncmdline = console=ttyS0 quiet\n",
            self.address,
            self.dir.path.display()
        );
        let conf = self.dir.write("bootd.ini", &config);
        let bootd = Bootd::start(&self.server, &conf, &["-t", "-H"]);
        bootd.wait_for_log("room: torrent of alpine", Duration::from_secs(60));
        let log = bootd.log();
        let hash = log
            .split("info-hash ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .expect("the torrent's line names its info-hash")
            .to_string();
        (bootd, hash)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.address)
    }

    /// Fetches the torrent onto machine `i`, as phase 1 does.
    fn fetch_torrent(&self, i: usize) -> PathBuf {
        let (machine, _, _) = &self.machines[i];
        let out = self.out(i).join("alpine.torrent");
        std::fs::create_dir_all(self.out(i)).unwrap();
        run_bounded(
            machine
                .command("curl")
                .args(["-sS", "--fail", "--max-time", "20", "-o"])
                .arg(&out)
                .arg(self.url("torrents/alpine.torrent")),
            Duration::from_secs(30),
        )
        .assert_success();
        out
    }

    fn out(&self, i: usize) -> PathBuf {
        self.dir.path.join(format!("machine{i}"))
    }

    /// aria2c on machine `i` as phase 1 runs it: DHT off, LPD as told, every piece
    /// checked, sharing for `seed_seconds` after completion; its log at info.
    fn aria2c(&self, i: usize, torrent: &Path, lpd: bool, seed_seconds: u32) -> Command {
        let (machine, nic, _) = &self.machines[i];
        let mut c = machine.command("aria2c");
        c.arg(format!("--dir={}", self.out(i).join("data").display()))
            .arg(format!("--log={}", self.out(i).join("aria2.log").display()))
            .args([
                "--log-level=info",
                "--console-log-level=warn",
                "--summary-interval=0",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--disable-ipv6=true",
                "--check-integrity=true",
                "--file-allocation=none",
                "--bt-max-peers=20",
                "--bt-request-peer-speed-limit=100M",
                "--seed-ratio=0.0",
            ])
            .arg(format!("--bt-enable-lpd={lpd}"))
            .arg(format!("--bt-lpd-interface={nic}"))
            .arg(format!("--seed-time={:.3}", f64::from(seed_seconds) / 60.0))
            .arg(format!("--torrent-file={}", torrent.display()));
        c
    }

    /// The files on machine `i` are the OS's, byte for byte.
    fn assert_complete(&self, i: usize) {
        let data = self.out(i).join("data/alpine");
        for (file, len, seed) in [
            ("vmlinuz", KERNEL_BYTES, 1),
            ("initrd.img", INITRD_BYTES, 2),
        ] {
            let got = std::fs::read(data.join(file))
                .unwrap_or_else(|e| panic!("machine {i} has no {file}: {e}"));
            assert!(
                got == pattern(len, seed),
                "machine {i}'s {file} differs from the original"
            );
        }
    }

    /// Bytes of piece messages machine `i` received from other machines (aria2
    /// logs each: "From: IP:PORT piece index=…, length=…").
    fn peer_bytes(&self, i: usize) -> u64 {
        let log = std::fs::read_to_string(self.out(i).join("aria2.log")).unwrap_or_default();
        let machines: Vec<&str> = self.machines.iter().map(|(_, _, ip)| ip.as_str()).collect();
        log.lines()
            .filter(|l| l.contains(" piece index="))
            .filter_map(|l| {
                let from = l.split("From: ").nth(1)?;
                let ip = from.split(':').next()?;
                machines.contains(&ip).then_some(())?;
                let length = l.split("length=").nth(1)?;
                length
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["-n", &self.server.name, "link", "del", &self.bridge])
            .status();
    }
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn curl_gets_the_menu_with_every_entry_in_configuration_order() {
    require_root();
    let room = Room::new("10.81.0", 1);
    let (mut bootd, _) = room.start("default = alpine");
    let (machine, _, _) = &room.machines[0];
    let finished = run_bounded(
        machine
            .command("curl")
            .args(["-sS", "--fail", "--max-time", "10"])
            .arg(room.url("menu.ipxe")),
        Duration::from_secs(20),
    );
    finished.assert_success();
    let menu = finished.stdout;
    assert!(menu.starts_with("#!ipxe\n"), "{menu}");
    let debian = menu.find("item os-debian Debian (direct)\n").expect(&menu);
    let alpine = menu
        .find("item os-alpine Alpine (BitTorrent)\n")
        .expect(&menu);
    assert!(debian < alpine, "configuration order: {menu}");
    assert!(
        menu.contains("choose --default os-alpine --timeout 5000 choice || goto shell\n"),
        "{menu}"
    );
    let url = format!("http://{}", room.address);
    assert!(
        menu.contains(&format!(
            "kernel {url}/oss/debian/vmlinuz initrd=initrd.img console=ttyS0 || goto failed\n"
        )),
        "{menu}"
    );
    assert!(
        menu.contains(&format!(
            "bootd.os=alpine bootd.url={url} bootd.torrent={url}/torrents/alpine.torrent bootd.seed_time=30"
        )),
        "{menu}"
    );
    // The direct entry's kernel is served from the OS's folder.
    let kernel = room.out(0).join("vmlinuz");
    std::fs::create_dir_all(room.out(0)).unwrap();
    run_bounded(
        machine
            .command("curl")
            .args(["-sS", "--fail", "--max-time", "20", "-o"])
            .arg(&kernel)
            .arg(room.url("oss/debian/vmlinuz")),
        Duration::from_secs(30),
    )
    .assert_success();
    assert!(std::fs::read(&kernel).unwrap() == pattern(KERNEL_BYTES, 1));
    // Phase 1's description carries the command line verbatim.
    let boot = run_bounded(
        machine
            .command("curl")
            .args(["-sS", "--fail", "--max-time", "10"])
            .arg(room.url("torrents/alpine.boot")),
        Duration::from_secs(20),
    );
    boot.assert_success();
    assert!(
        boot.stdout.contains("\ncmdline=console=ttyS0 quiet\n"),
        "{}",
        boot.stdout
    );
    bootd.stop();
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn aria2c_downloads_an_os_with_bootd_as_the_only_source() {
    require_root();
    let room = Room::new("10.82.0", 1);
    let (mut bootd, _) = room.start("");
    let torrent = room.fetch_torrent(0);
    run_bounded(
        &mut room.aria2c(0, &torrent, false, 0),
        Duration::from_secs(120),
    )
    .assert_success();
    room.assert_complete(0);
    // Every byte came from the web seed, and at least once.
    let sent = web_seed_bytes(&bootd.log(), "alpine");
    assert!(
        sent >= (KERNEL_BYTES + INITRD_BYTES) as u64,
        "the web seed sent {sent} bytes; log:\n{}",
        bootd.log()
    );
    bootd.stop();
}

/// Runs `count` aria2c at once (LPD on or off), each sharing 20 s after it is
/// complete; every machine ends with the whole OS, and peers gave some of it.
fn swarm(room: &Room, bootd: &Bootd, lpd: bool) {
    let count = room.machines.len();
    let torrents: Vec<PathBuf> = (0..count).map(|i| room.fetch_torrent(i)).collect();
    let clients: Vec<Spawned> = (0..count)
        .map(|i| Spawned::start(&mut room.aria2c(i, &torrents[i], lpd, 20)))
        .collect();
    for client in clients {
        client.finish(Duration::from_secs(180)).assert_success();
    }
    for i in 0..count {
        room.assert_complete(i);
    }
    let from_peers: Vec<u64> = (0..count).map(|i| room.peer_bytes(i)).collect();
    let image = (KERNEL_BYTES + INITRD_BYTES) as u64;
    let sent = web_seed_bytes(&bootd.log(), "alpine");
    assert!(
        from_peers.iter().sum::<u64>() > 0,
        "no machine received a piece from another (peer bytes {from_peers:?}; web seed sent {sent})"
    );
    assert!(
        sent < image * count as u64,
        "the web seed sent {sent} bytes for {count} machines of {image}: nothing was shared"
    );
    eprintln!(
        "{count} machines, image {image} bytes: web seed sent {sent}, peers gave {from_peers:?}"
    );
}

/// The server's side of the bridge limited to `mbit`, so that the web seed alone
/// would be slow and the machines gain by sharing (their legs are not limited).
fn limit_server(room: &Room, mbit: u32) {
    room.server.run(&[
        "tc",
        "qdisc",
        "add",
        "dev",
        &room.bridge,
        "root",
        "tbf",
        "rate",
        &format!("{mbit}mbit"),
        "burst",
        "64kb",
        "latency",
        "400ms",
    ]);
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn machines_on_one_network_find_each_other_by_local_peer_discovery() {
    require_root();
    let room = Room::new("10.83.0", 3);
    limit_server(&room, 20);
    let (mut bootd, _) = room.start("");
    swarm(&room, &bootd, true);
    bootd.stop();
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn machines_find_each_other_through_opentracker() {
    require_root();
    let room = Room::new("10.84.0", 3);
    limit_server(&room, 20);
    let tracker = format!("http://{}:6969/announce", room.address);
    let (mut bootd, hash) = room.start(&format!("tracker = {tracker}"));
    // Debian's opentracker serves only the info-hashes of its whitelist.
    let jail = room.dir.path.join("tracker");
    std::fs::create_dir_all(&jail).unwrap();
    std::fs::write(jail.join("whitelist.txt"), format!("{hash}\n")).unwrap();
    let mut command = room.server.command("opentracker");
    command
        .current_dir(&jail)
        .args(["-i", &room.address, "-p", "6969", "-P", "6969", "-d"])
        .arg(&jail)
        .args(["-w", "whitelist.txt"]);
    let opentracker = Spawned::start(&mut command);
    // Ready when it answers HTTP at all (its stats page is for admins only: 403).
    let ready = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        run_bounded(
            room.machines[0]
                .0
                .command("curl")
                .args([
                    "-s",
                    "--max-time",
                    "2",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .arg(format!("http://{}:6969/stats", room.address)),
            Duration::from_secs(5),
        )
        .stdout
        .trim()
            != "000"
    });
    assert!(
        ready,
        "opentracker never answered: {}",
        opentracker.stdout_so_far()
    );
    // LPD and DHT are off: the machines can only have met through the tracker.
    swarm(&room, &bootd, false);
    // And the tracker saw them complete (aria2 announces `event=completed`).
    let encoded: String = (0..hash.len() / 2)
        .map(|i| format!("%{}", &hash[2 * i..2 * i + 2]))
        .collect();
    let scrape = run_bounded(
        room.machines[0]
            .0
            .command("curl")
            .args(["-sS", "--max-time", "5"])
            .arg(format!(
                "http://{}:6969/scrape?info_hash={encoded}",
                room.address
            )),
        Duration::from_secs(10),
    );
    let completed = scrape
        .stdout
        .split("10:downloadedi")
        .nth(1)
        .and_then(|rest| rest.split('e').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(
        completed,
        Some(room.machines.len()),
        "opentracker's scrape: {}",
        scrape.stdout
    );
    drop(opentracker);
    bootd.stop();
}
