//! Real machines boot from bootd: QEMU x86-64 virtual machines (TCG, no disk) whose
//! NIC is a tap device on a bridge in a client network namespace, joined by a veth
//! pair to bootd's namespace. Nothing else is on that bridge.
//!
//! - BIOS: SeaBIOS and QEMU's standard NIC option ROM (iPXE) → DHCP (PXE, option 77
//!   `iPXE`, architecture 0) → TFTP `pxelinux.0` → `ldlinux.c32` → the pxelinux
//!   configuration through a `[filters]` rule → `vmlinuz` and `initrd.gz`.
//! - UEFI: OVMF's own PXE stack (the NIC has no option ROM) → DHCP (architecture 7)
//!   → TFTP `grubx64.efi`, chosen from `[bootfile] 00007` → `/grub/grub.cfg` →
//!   `/vmlinuz` and `/initrd.gz`.
//!
//! The kernel is Debian's; the initramfs (scripts/vm-assets.sh) loads the NIC driver,
//! asks for an address again as an installed OS would, prints
//! `BOOTD-VM-UP ip=… mac=… server=…` on the serial console and powers off.
//!
//! - Over HTTP (`bootd -H`, `[bootfile] ipxe = boot.ipxe`, an iPXE script loading the
//!   kernel and initramfs from beside itself): QEMU's BIOS iPXE ROM, detected as iPXE,
//!   straight to the script; OVMF's own PXE → `ipxe.efi` over TFTP → iPXE → the
//!   script; OVMF's UEFI HTTP boot → `http://…/ipxe.efi` → iPXE → the script.
//!   Once the BIOS machine is up, headless Chromium loads `/status` and finds it
//!   with the files it fetched (screenshot in `target/tmp/status-page-vm.png`).
//! - The seeds' Debian example: Debian's real netboot installer from a web server
//!   standing in for the mirror, pxelinux's configuration a local file named by a
//!   filter; the installer's own DHCP request gets the address of the PXE phase.
//!
//! - NBD: the BIOS path to a kernel and initramfs whose init attaches an ext4 root
//!   over NBD from bootd's `cow` export with Debian's nbd-client, looks for and
//!   writes a file, detaches and powers off.
//! - Proxy: the BIOS and UEFI paths again with bootd in proxy mode beside the
//!   site's DHCP server (dnsmasq, in a namespace of its own on the machines'
//!   bridge), which gives every address: the UEFI machine asks bootd's port 4011
//!   for its file.
//! - A room full of machines: two BIOS machines (QEMU's iPXE ROM) get bootd's
//!   menu and, nobody pressing a key, boot its default entry when the countdown
//!   ends: phase 1 (scripts/build-phase1.sh) fetches the OS by BitTorrent, from
//!   each other and from bootd's HTTP service as web seed (its link then limited
//!   with `tc tbf`), and starts it with kexec; the OS prints its command line and
//!   the marker.
//!
//! A failure prints the machine's console and bootd's log.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::site::{SiteDhcp, have_dnsmasq, join_bridge};
use common::*;

const SERVER: &str = "10.126.0.1";
const POOL: &str = "10.126.0.100";
const MARKER: &str = "BOOTD-VM-UP";
/// From power-on to the marker. A boot takes ~25 s under TCG on the CI machine.
const BOOT_BOUND: Duration = Duration::from_secs(150);
const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// One VM test at a time: TCG keeps a core busy per machine and CI has two.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialise() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Root, and the tools the machines need: panics naming what is missing.
fn ready() {
    require_root();
    for needed in [
        "/usr/bin/qemu-system-x86_64",
        OVMF,
        "/usr/lib/PXELINUX/pxelinux.0",
    ] {
        assert!(
            Path::new(needed).exists(),
            "{needed} is missing: run scripts/deps.sh"
        );
    }
}

/// Fills `root` with the boot files (scripts/vm-assets.sh, cached kernel/initramfs).
fn boot_files(root: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/vm-assets.sh");
    let done = run_bounded(Command::new(script).arg(root), Duration::from_secs(300));
    done.assert_success();
}

fn file_size(root: &Path, name: &str) -> u64 {
    std::fs::metadata(root.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .len()
}

/// bootd's namespace and the machines' one, joined by a veth pair; in the machines'
/// namespace a bridge holds the veth end and one tap per machine.
struct VmNet {
    pair: Pair,
    bridge: String,
}

impl VmNet {
    fn new() -> VmNet {
        let pair = Pair::new(&format!("{SERVER}/24"), None);
        let bridge = unique("b");
        let ns = &pair.client.name;
        sh(&["ip", "-n", ns, "link", "add", &bridge, "type", "bridge"]);
        // Without a querier, snooping would stop local peer discovery's multicast
        // between the machines of a room.
        sh(&[
            "ip",
            "-n",
            ns,
            "link",
            "set",
            &bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        sh(&[
            "ip",
            "-n",
            ns,
            "link",
            "set",
            &pair.client_if,
            "master",
            &bridge,
        ]);
        sh(&["ip", "-n", ns, "link", "set", &bridge, "up"]);
        VmNet { pair, bridge }
    }

    /// A new tap on the bridge (removed with the namespace).
    fn tap(&self) -> String {
        let tap = unique("p");
        let ns = &self.pair.client.name;
        sh(&["ip", "-n", ns, "tuntap", "add", "dev", &tap, "mode", "tap"]);
        sh(&["ip", "-n", ns, "link", "set", &tap, "master", &self.bridge]);
        sh(&["ip", "-n", ns, "link", "set", &tap, "up"]);
        tap
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Firmware {
    /// SeaBIOS with QEMU's standard option ROM for the NIC (iPXE).
    Bios,
    /// OVMF with its own PXE stack: the NIC has no option ROM.
    Uefi,
    /// OVMF with its own UEFI HTTP boot and its PXE turned off (no option ROM).
    UefiHttp,
}

/// A QEMU machine with no disk, booting from its NIC; killed on drop.
struct Vm {
    qemu: Spawned,
    mac: String,
    started: Instant,
}

impl Vm {
    fn start(net: &VmNet, firmware: Firmware, mac: &str, uuid: &str) -> Vm {
        Vm::start_with_memory(net, firmware, mac, uuid, 512)
    }

    /// As `start`, with `megabytes` of memory.
    fn start_with_memory(
        net: &VmNet,
        firmware: Firmware,
        mac: &str,
        uuid: &str,
        megabytes: u32,
    ) -> Vm {
        let tap = net.tap();
        let memory = megabytes.to_string();
        let mut command = net.pair.client.command("qemu-system-x86_64");
        command.args([
            "-machine",
            "pc,accel=tcg",
            "-m",
            &memory,
            "-nodefaults",
            "-nographic",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
            "-uuid",
            uuid,
            "-netdev",
            &format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
        ]);
        match firmware {
            Firmware::Bios => {
                command.args(["-boot", "n"]);
                command.args(["-device", &format!("virtio-net-pci,netdev=n0,mac={mac}")]);
            }
            Firmware::Uefi => {
                command.args([
                    "-boot",
                    "n",
                    "-bios",
                    OVMF,
                    "-device",
                    &format!("virtio-net-pci,netdev=n0,mac={mac},romfile="),
                ]);
            }
            Firmware::UefiHttp => {
                // OVMF's PXE drivers stay out (they would be tried first, IPv6
                // included), and the NIC is the first boot device: its HTTPv4
                // boot option is what runs.
                command.args([
                    "-bios",
                    OVMF,
                    "-fw_cfg",
                    "name=opt/org.tianocore/IPv4PXESupport,string=n",
                    "-fw_cfg",
                    "name=opt/org.tianocore/IPv6PXESupport,string=n",
                    "-device",
                    &format!("virtio-net-pci,netdev=n0,mac={mac},romfile=,bootindex=1"),
                ]);
            }
        }
        Vm {
            qemu: Spawned::start(&mut command),
            mac: mac.to_string(),
            started: Instant::now(),
        }
    }

    /// bootd's spelling of the MAC (`52-54-00-…`, upper case).
    fn dashed_mac(&self) -> String {
        self.mac.replace(':', "-").to_uppercase()
    }

    /// The serial console so far, without terminal escapes and CRs.
    fn console(&self) -> String {
        plain(&self.qemu.stdout_so_far())
    }

    /// The marker line's `ip=` once it is on the console.
    fn wait_for_marker(&self, bound: Duration) -> Option<String> {
        let left = bound.saturating_sub(self.started.elapsed());
        if !self.qemu.wait_for_stdout(MARKER, left) {
            return None;
        }
        // The whole line may still be on its way.
        std::thread::sleep(Duration::from_millis(200));
        let console = self.qemu.stdout_so_far();
        let line = console.lines().find(|l| l.contains(MARKER))?;
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("ip="))
            .map(str::to_string)
    }

    /// Waits for the power-off that follows the marker.
    fn wait_for_poweroff(self, bound: Duration) -> Finished {
        self.qemu.finish(bound)
    }
}

/// `text` without ANSI escape sequences (`ESC [ … letter`, `ESC c`) and CRs.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next_if_eq(&'[').is_some() {
                    while chars.next().is_some_and(|c| !c.is_ascii_alphabetic()) {}
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Panics with everything needed to understand a failed boot.
fn fail(what: &str, vms: &[&Vm], bootd: &Bootd) -> ! {
    let mut text = format!("{what}\n");
    for vm in vms {
        text.push_str(&format!(
            "\n===== console of {} ({:.1} s after power-on):\n{}\n",
            vm.mac,
            vm.started.elapsed().as_secs_f64(),
            vm.console()
        ));
    }
    text.push_str(&format!("\n===== bootd's log:\n{}\n", bootd.log()));
    panic!("{text}");
}

/// A UDP listener for bootd's notifications, in bootd's namespace.
struct Listener {
    process: Spawned,
}

impl Listener {
    fn start(ns: &Netns, port: u16) -> Listener {
        let process = Spawned::start(ns.command("python3").args([
            "-u",
            "-c",
            &format!(
                "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('127.0.0.1', {port}))\nprint('listening')\nwhile True:\n    data, _ = s.recvfrom(1024)\n    print(data.decode())\n"
            ),
        ]));
        assert!(
            process.wait_for_stdout("listening", Duration::from_secs(10)),
            "the notification listener did not start"
        );
        Listener { process }
    }

    fn lines(&self) -> Vec<String> {
        self.process
            .stdout_so_far()
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    }
}

/// The configuration: BIOS gets pxelinux.0, x64 UEFI grubx64.efi; pxelinux's and
/// GRUB's configuration searches are answered at once by `[filters]`.
fn config(dir: &TempDir, root: &str, bootp_extra: &str, extra: &str) -> PathBuf {
    dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = info\n\
             [bootp]\npool_start = {POOL}\npool_count = 20\nallow_simple_dhcp = off\n\
             lease_file = leases\nnotify = 127.0.0.1:12345\n{bootp_extra}\n\
             [bootfile]\ndefault = pxelinux.0\n00000 = pxelinux.0\n00007 = grubx64.efi\n\
             [tftp]\nroot = {root}\n\
             [filters]\npxelinux.cfg/* = pxelinux.cfg/default\ngrub/grub.cfg-* = grub/grub.cfg\n\
             {extra}"
        ),
    )
}

fn start_bootd(net: &VmNet, conf: &Path) -> Bootd {
    let bootd = Bootd::start(&net.pair.server, conf, &[]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(10));
    bootd.wait_for_log("serving TFTP", Duration::from_secs(10));
    bootd
}

/// The address bootd acknowledged to `mac` in the PXE phase (`… (PXE)`) or after.
fn acked(log: &str, mac: &str, pxe: bool) -> Option<String> {
    log.lines()
        .filter(|l| l.contains(&format!("{mac}: DHCPACK ")))
        .find(|l| l.ends_with("(PXE)") == pxe)
        .and_then(|l| l.split(": DHCPACK ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

/// The log lines of every transfer a machine of `firmware` makes to boot, whole.
fn transfers(firmware: Firmware, dashed: &str, files: &Path) -> Vec<String> {
    let names: Vec<(String, &str)> = match firmware {
        Firmware::Bios => vec![
            ("pxelinux.0".into(), "pxelinux.0"),
            ("ldlinux.c32".into(), "ldlinux.c32"),
            (
                format!(
                    "pxelinux.cfg/01-{} (as pxelinux.cfg/default)",
                    dashed.to_lowercase()
                ),
                "pxelinux.cfg/default",
            ),
            ("vmlinuz".into(), "vmlinuz"),
            ("initrd.gz".into(), "initrd.gz"),
        ],
        // GRUB names files from the root of its (tftp) device.
        Firmware::Uefi | Firmware::UefiHttp => vec![
            ("grubx64.efi".into(), "grubx64.efi"),
            (
                format!(
                    "/grub/grub.cfg-01-{} (as grub/grub.cfg)",
                    dashed.to_lowercase()
                ),
                "grub/grub.cfg",
            ),
            ("/vmlinuz".into(), "vmlinuz"),
            ("/initrd.gz".into(), "initrd.gz"),
        ],
    };
    names
        .into_iter()
        .map(|(logged, file)| format!("sent {logged}: {} bytes", file_size(files, file)))
        .collect()
}

/// Boots one machine and checks the whole scenario; returns how long it took.
fn boot_and_check(
    net: &VmNet,
    bootd: &Bootd,
    listener: &Listener,
    firmware: Firmware,
    files: &Path,
    mac: &str,
) -> Duration {
    let uuid = "12345678-abcd-ef00-1111-abcdefabcdef";
    let vm = Vm::start(net, firmware, mac, uuid);
    let Some(ip) = vm.wait_for_marker(BOOT_BOUND) else {
        fail(
            &format!("{firmware:?}: no `{MARKER}` within {BOOT_BOUND:?}"),
            &[&vm],
            bootd,
        );
    };
    let took = vm.started.elapsed();
    let log = bootd.log();
    let dashed = vm.dashed_mac();
    let check = |ok: bool, what: &str| {
        if !ok {
            fail(&format!("{firmware:?}: {what}"), &[&vm], bootd);
        }
    };
    // The same address in both phases, and the OS was served although
    // allow_simple_dhcp is off, because this machine PXE-booted first.
    let pxe_ip = acked(&log, &dashed, true);
    check(
        pxe_ip.as_deref() == Some(ip.as_str()),
        &format!("the OS got {ip}, the PXE phase {pxe_ip:?}"),
    );
    check(
        acked(&log, &dashed, false).as_deref() == Some(ip.as_str()),
        "no DHCPACK to the OS in bootd's log",
    );
    check(ip.starts_with("10.126.0."), "an address outside the pool");
    // Each transfer, whole.
    for needle in transfers(firmware, &dashed, files) {
        check(
            log.contains(&needle),
            &format!("bootd never logged `{needle}`"),
        );
    }
    // BOOT on the PXE ACK, then LEASE on the OS's.
    let deadline = Instant::now() + Duration::from_secs(5);
    let want_boot = format!(",{dashed},{ip}");
    let mut notes = listener.lines();
    while notes.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        notes = listener.lines();
    }
    let kinds: Vec<&str> = notes
        .iter()
        .filter(|n| n.ends_with(&want_boot))
        .map(|n| n.split(',').next().unwrap_or_default())
        .collect();
    check(
        kinds == ["BOOT", "LEASE"],
        &format!("notifications: {notes:?}, want BOOT then LEASE for {dashed},{ip}"),
    );
    let done = vm.wait_for_poweroff(Duration::from_secs(30));
    assert!(
        done.status.is_some(),
        "the machine did not power off after the marker:\n{done}"
    );
    eprintln!("{firmware:?} {mac}: notifications {notes:?}");
    took
}

/// Boots one machine of `firmware` from a local root, runs `check` on bootd while
/// everything still stands, and returns the time to the marker.
fn boot_from_local_root(firmware: Firmware, mac: &str, check: impl FnOnce(&Bootd)) -> Duration {
    let net = VmNet::new();
    let dir = TempDir::new();
    let root = dir.path.join("tftp");
    boot_files(&root);
    let conf = config(&dir, "tftp", "", "");
    let listener = Listener::start(&net.pair.server, 12345);
    let bootd = start_bootd(&net, &conf);
    let took = boot_and_check(&net, &bootd, &listener, firmware, &root, mac);
    check(&bootd);
    took
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn bios_machine_boots_pxelinux_and_linux_through_bootd() {
    ready();
    let _one = serialise();
    let took = boot_from_local_root(Firmware::Bios, "52:54:00:12:34:56", |_| {});
    eprintln!("BIOS machine: marker after {:.1} s", took.as_secs_f64());
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn uefi_machine_boots_grub_and_linux_through_bootd() {
    ready();
    let _one = serialise();
    let took = boot_from_local_root(Firmware::Uefi, "52:54:00:12:34:57", |bootd| {
        // The boot file was chosen by architecture: OVMF asks as x64 UEFI (00007).
        assert!(
            bootd
                .log()
                .contains("52-54-00-12-34-57: DHCPACK 10.126.0.100 via 255.255.255.255:68, boot file grubx64.efi (PXE)"),
            "{}",
            bootd.log()
        );
    });
    eprintln!("UEFI machine: marker after {:.1} s", took.as_secs_f64());
}

/// A plain web server on SERVER:8080 in bootd's namespace serving `site`, standing
/// in for a Debian mirror; stopped on drop.
fn mirror(net: &VmNet, site: &Path) -> Spawned {
    let web = Spawned::start(
        net.pair
            .server
            .command("python3")
            .args(["-m", "http.server", "--bind", SERVER, "8080", "--directory"])
            .arg(site),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !net
        .pair
        .server
        .command("curl")
        .args(["-sf", "-o", "/dev/null", &format!("http://{SERVER}:8080/")])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "the web server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    web
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn machine_boots_from_an_http_root() {
    ready();
    let _one = serialise();
    let net = VmNet::new();
    let dir = TempDir::new();
    // The "mirror": a plain web server in bootd's namespace holding the boot files.
    let site = dir.path.join("site");
    let files = site.join("debian/netboot");
    boot_files(&files);
    let web = mirror(&net, &site);
    let conf = config(
        &dir,
        &format!("http://{SERVER}:8080/debian/netboot"),
        "",
        "",
    );
    let listener = Listener::start(&net.pair.server, 12345);
    let bootd = start_bootd(&net, &conf);
    let took = boot_and_check(
        &net,
        &bootd,
        &listener,
        Firmware::Bios,
        &files,
        "52:54:00:12:34:58",
    );
    drop(web);
    eprintln!(
        "BIOS machine from an http:// root: marker after {:.1} s",
        took.as_secs_f64()
    );
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn access_list_boots_the_listed_machine_only() {
    ready();
    let _one = serialise();
    let net = VmNet::new();
    let dir = TempDir::new();
    let root = dir.path.join("tftp");
    boot_files(&root);
    let conf = config(
        &dir,
        "tftp",
        "access = mac",
        "[mac]\n52-54-00-12-34-59 = enable\n",
    );
    let listener = Listener::start(&net.pair.server, 12345);
    let bootd = start_bootd(&net, &conf);
    // Both machines power on together; only the listed one may boot.
    let stranger = Vm::start(
        &net,
        Firmware::Bios,
        "52:54:00:66:66:66",
        "66666666-abcd-ef00-1111-abcdefabcdef",
    );
    let took = boot_and_check(
        &net,
        &bootd,
        &listener,
        Firmware::Bios,
        &root,
        "52:54:00:12:34:59",
    );
    // By now the stranger has asked many times; give it as long again to be sure.
    std::thread::sleep(Duration::from_secs(5));
    let log = bootd.log();
    if stranger.console().contains(MARKER) {
        fail("the unlisted machine booted", &[&stranger], &bootd);
    }
    if !log.contains("52-54-00-66-66-66: refused: no [mac] entry matches it") {
        fail("bootd did not log the refusal", &[&stranger], &bootd);
    }
    if log.contains("52-54-00-66-66-66: DHCPOFFER") || log.contains("52-54-00-66-66-66: DHCPACK") {
        fail("bootd answered the unlisted machine", &[&stranger], &bootd);
    }
    if !stranger.console().contains("iPXE") {
        fail(
            "the unlisted machine never ran its PXE ROM",
            &[&stranger],
            &bootd,
        );
    }
    eprintln!(
        "listed machine: marker after {:.1} s; the unlisted one got no answer",
        took.as_secs_f64()
    );
}

/// Boots a diskless machine whose root is the NBD export `rootfs`; returns its
/// console and the address it got once it has powered off.
fn boot_diskless(net: &VmNet, bootd: &Bootd, mac: &str) -> (String, String) {
    let vm = Vm::start(
        net,
        Firmware::Bios,
        mac,
        "12345678-abcd-ef00-2222-abcdefabcdef",
    );
    let Some(ip) = vm.wait_for_marker(BOOT_BOUND) else {
        fail(
            &format!("no `{MARKER}` within {BOOT_BOUND:?}"),
            &[&vm],
            bootd,
        );
    };
    let deadline = Instant::now() + BOOT_BOUND;
    while !vm.console().contains("BOOTD-NBD-DONE") {
        if vm.console().contains("BOOTD-NBD-FAILED") || Instant::now() > deadline {
            fail("the NBD root did not come up", &[&vm], bootd);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let console = vm.console();
    let finished = vm.wait_for_poweroff(Duration::from_secs(30));
    assert!(finished.status.is_some(), "the machine did not power off");
    (console, ip)
}

/// Whether `text` is on the export `rootfs` as the machine at `ip` sees it: the
/// test takes that machine's address in its namespace and reads the whole disk.
fn disk_contains(net: &VmNet, ip: &str, text: &str) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/nbd_client.py");
    let mut command = net.pair.client.command("python3");
    command
        .arg(script)
        .args([SERVER, "10809", "--source", ip, "contains", "rootfs", text]);
    let done = run_bounded(&mut command, Duration::from_secs(60));
    done.assert_success();
    done.stdout.trim() == "yes"
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_diskless_machine_finds_its_writes_after_a_reboot_and_no_other_machine_does() {
    ready();
    let _one = serialise();
    let net = VmNet::new();
    let dir = TempDir::new();
    let root = dir.path.join("root");
    boot_files(&root);
    std::fs::write(
        root.join("pxelinux.cfg/default"),
        format!(
            "DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  \
             APPEND initrd=initrd-nbd.gz console=ttyS0,115200 panic=-1 bootd.nbd={SERVER}:10809/rootfs\n"
        ),
    )
    .unwrap();
    // The root file system: an ext4 image made from a directory.
    let tree = dir.path.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("README"), "a diskless root served by bootd\n").unwrap();
    let image = dir.path.join("rootfs.ext4");
    // (Its progress line would land in the middle of the test's output.)
    let made = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .args([&tree, &image])
        .arg("32M")
        .output()
        .unwrap();
    assert!(made.status.success(), "mke2fs: {made:?}");
    let before = sha256_file(&image);
    // cow_keep outlasts a reboot (a boot takes ~30 s under TCG).
    let conf = config(
        &dir,
        "root",
        "",
        "[nbd]\nexports = rootfs rootfs.ext4 cow\ncow_keep = 60\n",
    );
    let bootd = start_bootd(&net, &conf);
    bootd.wait_for_log("serving NBD on", Duration::from_secs(10));

    let a = "52:54:00:12:34:a1";
    let (first, ip_a) = boot_diskless(&net, &bootd, a);
    assert!(first.contains("BOOTD-NBD-ABSENT"), "{first}");
    let (second, _) = boot_diskless(&net, &bootd, a);
    let mine = format!("written by {a}");
    assert!(
        second.contains(&format!("BOOTD-NBD-FOUND {mine}")),
        "the same machine, rebooted, does not find its file:\n{second}\n{}",
        bootd.log()
    );
    let log = bootd.log();
    assert!(
        log.contains(
            "(52-54-00-12-34-A1): export rootfs (cow), its overlay from an earlier connection kept"
        ),
        "{log}"
    );
    // The test, taking machine A's address, sees A's disk.
    sh(&[
        "ip",
        "-n",
        &net.pair.client.name,
        "addr",
        "add",
        &format!("{ip_a}/24"),
        "dev",
        &net.bridge,
    ]);
    assert!(disk_contains(&net, &ip_a, &mine));

    let (third, _) = boot_diskless(&net, &bootd, "52:54:00:12:34:b2");
    assert!(
        third.contains("BOOTD-NBD-ABSENT"),
        "another machine sees the first one's file:\n{third}"
    );

    // Unused for cow_keep, machine A's overlay goes, and its disk is the image again.
    bootd.wait_for_log(
        "deleted the overlay of 52-54-00-12-34-A1 on export rootfs",
        Duration::from_secs(90),
    );
    assert!(!disk_contains(&net, &ip_a, &mine));
    assert_eq!(
        sha256_file(&image),
        before,
        "the image on bootd's disk changed"
    );
}

/// The site's DHCP server beside bootd: its address on the machines' network.
const SITE: &str = "10.126.0.2";

/// bootd in proxy mode: no pool, no lease file; the same boot files as `config`.
fn proxy_config(dir: &TempDir, root: &str) -> PathBuf {
    dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n\
             [bootp]\nproxy = on\naddress = {SERVER}\nnotify = 127.0.0.1:12345\n\
             [bootfile]\ndefault = pxelinux.0\n00000 = pxelinux.0\n00007 = grubx64.efi\n\
             [tftp]\nroot = {root}\n\
             [filters]\npxelinux.cfg/* = pxelinux.cfg/default\ngrub/grub.cfg-* = grub/grub.cfg\n"
        ),
    )
}

/// What bootd sent from ports 67 and 4011, as a capture shows it: each answer's
/// source port, `yiaddr` and message type (option 53).
#[derive(Debug)]
struct Answered {
    port: u16,
    yiaddr: [u8; 4],
    kind: Option<u8>,
}

/// The BOOTP answers in a pcap file of Ethernet frames (tcpdump -w).
fn answers_in(pcap: &[u8]) -> Vec<Answered> {
    let mut found = Vec::new();
    let mut at = 24;
    while let Some(header) = pcap.get(at..at + 16) {
        let captured = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        let Some(frame) = pcap.get(at + 16..at + 16 + captured) else {
            break;
        };
        at += 16 + captured;
        // Ethernet, IPv4 (its header length from IHL), UDP.
        let Some(ip) = frame.get(14..) else { continue };
        let Some(&version_ihl) = ip.first() else {
            continue;
        };
        let Some(udp) = ip.get(usize::from(version_ihl & 0x0f) * 4..) else {
            continue;
        };
        let Some(bootp) = udp.get(8..) else { continue };
        if bootp.len() < 240 {
            continue;
        }
        let mut kind = None;
        let mut options = &bootp[240..];
        while let [tag, rest @ ..] = options {
            match *tag {
                0 => options = rest,
                255 => break,
                _ => {
                    let Some((&len, value)) = rest.split_first() else {
                        break;
                    };
                    let len = usize::from(len);
                    if *tag == 53 {
                        kind = value.first().copied();
                    }
                    options = value.get(len..).unwrap_or(&[]);
                }
            }
        }
        found.push(Answered {
            port: u16::from_be_bytes([udp[0], udp[1]]),
            yiaddr: bootp[16..20].try_into().unwrap(),
            kind,
        });
    }
    found
}

/// Boots one machine of `firmware` through bootd in proxy mode beside the
/// site's DHCP server, and checks that the site gave the address, bootd none,
/// and bootd every file.
fn boot_beside_the_sites_server(firmware: Firmware, mac: &str) -> Duration {
    assert!(have_dnsmasq(), "dnsmasq is missing: run scripts/deps.sh");
    let net = VmNet::new();
    let dir = TempDir::new();
    let root = dir.path.join("tftp");
    boot_files(&root);
    if firmware == Firmware::Uefi {
        // GRUB takes its TFTP server from the site's DHCP answer alone, not
        // from the proxy's (dnsmasq names itself): its image names bootd.
        let image = root.join("grubx64.efi");
        let made = run_bounded(
            Command::new("grub-mkimage")
                .args(["-O", "x86_64-efi", "-o"])
                .arg(&image)
                .args(["-p", &format!("(tftp,{SERVER})/grub")])
                .args([
                    "efinet",
                    "tftp",
                    "net",
                    "linux",
                    "normal",
                    "configfile",
                    "echo",
                    "gzio",
                    "test",
                ]),
            Duration::from_secs(60),
        );
        made.assert_success();
    }
    let site_ns = Netns::new("d");
    let site_if = join_bridge(
        &net.pair.client,
        &net.bridge,
        &site_ns,
        Some(&format!("{SITE}/24")),
    );
    let site = SiteDhcp::start(&site_ns, &site_if, "10.126.0.50", "10.126.0.99", &dir);
    // Every datagram bootd sends from its DHCP and boot server ports.
    let capture = dir.path.join("bootd.pcap");
    let tcpdump = Spawned::start(
        net.pair
            .server
            .command("tcpdump")
            .args(["-i", &net.pair.server_if, "-n", "-U", "-w"])
            .arg(&capture)
            .args([
                "udp and src host",
                SERVER,
                "and (src port 67 or src port 4011)",
            ]),
    );
    assert!(
        tcpdump.wait_for_stderr("listening on", Duration::from_secs(10)),
        "tcpdump did not start: {}",
        tcpdump.stderr_so_far()
    );
    let listener = Listener::start(&net.pair.server, 12345);
    let bootd = Bootd::start(&net.pair.server, &proxy_config(&dir, "tftp"), &[]);
    bootd.wait_for_log("serving proxyDHCP", Duration::from_secs(10));
    bootd.wait_for_log("serving TFTP", Duration::from_secs(10));

    let uuid = "12345678-abcd-ef00-1111-abcdefabcdef";
    let vm = Vm::start(&net, firmware, mac, uuid);
    let Some(ip) = vm.wait_for_marker(BOOT_BOUND) else {
        let what = format!(
            "{firmware:?} beside dnsmasq: no `{MARKER}` within {BOOT_BOUND:?}\n===== dnsmasq's log:\n{}",
            site.log()
        );
        fail(&what, &[&vm], &bootd);
    };
    let took = vm.started.elapsed();
    let dashed = vm.dashed_mac();
    let check = |ok: bool, what: &str| {
        if !ok {
            let what = format!(
                "{firmware:?} beside dnsmasq: {what}\n===== dnsmasq's leases:\n{}\n===== dnsmasq's log:\n{}",
                site.leases(),
                site.log()
            );
            fail(&what, &[&vm], &bootd);
        }
    };
    // The site's server gave the address, to the firmware and to the OS.
    check(
        site.leased(mac, &ip),
        &format!("{ip} is not in dnsmasq's leases"),
    );
    check(
        vm.console().contains(&format!("server={SITE}")),
        "the OS's address did not come from the site's server",
    );
    // bootd gave every file.
    let log = bootd.log();
    for needle in transfers(firmware, &dashed, &root) {
        check(
            log.contains(&needle),
            &format!("bootd never logged `{needle}`"),
        );
    }
    // bootd gave no address: every answer it sent has yiaddr 0, none on port 67
    // is an ACK, and the UEFI machine asked port 4011.
    std::thread::sleep(Duration::from_millis(300));
    drop(tcpdump);
    let answers = answers_in(&std::fs::read(&capture).unwrap_or_default());
    check(
        !answers.is_empty(),
        "the capture holds no answer of bootd's",
    );
    check(
        answers.iter().all(|a| a.yiaddr == [0; 4]),
        &format!("bootd sent an address: {answers:?}"),
    );
    check(
        !answers.iter().any(|a| a.port == 67 && a.kind == Some(5)),
        &format!("bootd acknowledged a port-67 request: {answers:?}"),
    );
    let from_4011 = answers.iter().filter(|a| a.port == 4011).count();
    match firmware {
        Firmware::Uefi => check(from_4011 > 0, "the UEFI machine never asked port 4011"),
        Firmware::Bios => check(from_4011 == 0, "the BIOS machine asked port 4011"),
        Firmware::UefiHttp => unreachable!("the proxy tests boot BIOS and UEFI PXE firmware"),
    }
    // One BOOT, with the address the site gave the firmware; the OS is the
    // site's business, so no LEASE.
    let notes = listener.lines();
    let booted: Vec<&String> = notes.iter().filter(|n| n.starts_with("BOOT,")).collect();
    check(
        booted.len() == 1
            && booted[0].starts_with(&format!(
                "BOOT,78563412-cdab-00ef-1111-abcdefabcdef,{dashed},"
            )),
        &format!("notifications: {notes:?}"),
    );
    let booted_ip = booted[0].rsplit(',').next().unwrap_or_default();
    check(
        site.leased(mac, booted_ip),
        &format!("the notification's address {booted_ip} is not in dnsmasq's leases"),
    );
    check(
        !notes.iter().any(|n| n.starts_with("LEASE,")),
        &format!("notifications: {notes:?}"),
    );
    let done = vm.wait_for_poweroff(Duration::from_secs(30));
    assert!(
        done.status.is_some(),
        "the machine did not power off after the marker:\n{done}"
    );
    eprintln!(
        "{firmware:?} {mac} beside dnsmasq: {} answers from bootd, notifications {notes:?}",
        answers.len()
    );
    took
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn bios_machine_boots_through_the_proxy_beside_the_sites_dhcp_server() {
    ready();
    let _one = serialise();
    let took = boot_beside_the_sites_server(Firmware::Bios, "52:54:00:12:34:5a");
    eprintln!(
        "BIOS machine beside dnsmasq: marker after {:.1} s",
        took.as_secs_f64()
    );
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn uefi_machine_boots_through_the_proxy_and_port_4011_beside_the_sites_dhcp_server() {
    ready();
    let _one = serialise();
    let took = boot_beside_the_sites_server(Firmware::Uefi, "52:54:00:12:34:5b");
    eprintln!(
        "UEFI machine beside dnsmasq: marker after {:.1} s",
        took.as_secs_f64()
    );
}

/// A network for machines booting over HTTP: bootd with `-H` (port 80, on the
/// served address) serving `root`, iPXE clients given `boot.ipxe` over HTTP, PXE
/// ROMs given iPXE to chainload, UEFI HTTP boot clients `ipxe.efi`.
fn start_http_boot(net: &VmNet, dir: &TempDir) -> (Bootd, PathBuf) {
    let root = dir.path.join("tftp");
    boot_files(&root);
    let conf = dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = info\n\
             [bootp]\npool_start = {POOL}\npool_count = 20\nallow_simple_dhcp = off\n\
             lease_file = leases\n\
             [bootfile]\ndefault = undionly.kpxe\n00000 = undionly.kpxe\n00007 = ipxe.efi\n\
             00016 = ipxe.efi\nipxe = boot.ipxe\n\
             [tftp]\nroot = tftp\n"
        ),
    );
    let bootd = Bootd::start(&net.pair.server, &conf, &["-H"]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(10));
    bootd.wait_for_log("serving TFTP", Duration::from_secs(10));
    bootd.wait_for_log(
        &format!("serving HTTP on {SERVER}:80 from "),
        Duration::from_secs(10),
    );
    (bootd, root)
}

/// Boots one machine of `firmware` on the HTTP boot network to the marker and
/// checks what every such boot shares: the address of the firmware's phase again
/// for the OS, iPXE given the script's URL, and the script, kernel and initramfs
/// sent whole over HTTP. `also` are further lines bootd must have logged.
/// Returns the time to the marker.
fn boot_over_http(firmware: Firmware, mac: &str, also: &[String]) -> Duration {
    boot_over_http_then(firmware, mac, also, |_| {})
}

/// A machine booted over HTTP, up to its marker: what a further check looks at.
struct BootedOverHttp<'a> {
    net: &'a VmNet,
    dir: &'a TempDir,
    /// What bootd serves.
    root: &'a Path,
    /// The machine's MAC as bootd writes it (`52-54-00-…`).
    dashed: &'a str,
    /// The address its OS got.
    ip: &'a str,
}

/// [`boot_over_http`], then `after` once the machine's marker is seen and its
/// boot checked, while the machine and bootd still run.
fn boot_over_http_then(
    firmware: Firmware,
    mac: &str,
    also: &[String],
    after: impl FnOnce(&BootedOverHttp),
) -> Duration {
    let net = VmNet::new();
    let dir = TempDir::new();
    let (bootd, root) = start_http_boot(&net, &dir);
    let vm = Vm::start(&net, firmware, mac, "12345678-abcd-ef00-3333-abcdefabcdef");
    let Some(ip) = vm.wait_for_marker(BOOT_BOUND) else {
        fail(
            &format!("{firmware:?}: no `{MARKER}` within {BOOT_BOUND:?}"),
            &[&vm],
            &bootd,
        );
    };
    let took = vm.started.elapsed();
    let log = bootd.log();
    let dashed = vm.dashed_mac();
    let check = |ok: bool, what: &str| {
        if !ok {
            fail(&format!("{firmware:?}: {what}"), &[&vm], &bootd);
        }
    };
    // iPXE's own request, the last of the firmware's, says PXEClient.
    let ipxe_ip = log
        .lines()
        .filter(|l| l.contains(&format!("{dashed}: DHCPACK ")))
        .find(|l| l.ends_with(&format!("boot file http://{SERVER}/boot.ipxe (PXE)")))
        .and_then(|l| l.split(": DHCPACK ").nth(1))
        .and_then(|rest| rest.split_whitespace().next());
    check(
        ipxe_ip == Some(ip.as_str()),
        &format!("the OS got {ip}, iPXE was acknowledged {ipxe_ip:?} with the script's URL"),
    );
    check(
        acked(&log, &dashed, false).as_deref() == Some(ip.as_str()),
        "no DHCPACK to the OS in bootd's log",
    );
    check(
        !log.lines().any(|l| l.contains("runs iPXE already")),
        "iPXE was refused a file",
    );
    let mut wanted = vec![format!("({dashed}): GET /boot.ipxe 200, ")];
    for file in ["vmlinuz", "initrd.gz"] {
        wanted.push(format!(
            "({dashed}): GET /{file} 200, {} bytes",
            file_size(&root, file)
        ));
    }
    wanted.extend(also.iter().cloned());
    for needle in wanted {
        check(
            log.contains(&needle),
            &format!("bootd never logged `{needle}`"),
        );
    }
    after(&BootedOverHttp {
        net: &net,
        dir: &dir,
        root: &root,
        dashed: &dashed,
        ip: &ip,
    });
    let done = vm.wait_for_poweroff(Duration::from_secs(30));
    assert!(
        done.status.is_some(),
        "the machine did not power off after the marker:\n{done}"
    );
    took
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn bios_ipxe_rom_is_sent_straight_to_the_http_script_and_the_status_page_shows_it() {
    ready();
    let _one = serialise();
    // QEMU's option ROM is iPXE already: no TFTP at all.
    let took = boot_over_http_then(Firmware::Bios, "52:54:00:12:35:01", &[], |booted| {
        // The operator's view of that boot: /status in headless Chromium, from
        // bootd's namespace, while the machine is up.
        let url = format!("http://{SERVER}/status");
        let profile = booted.dir.path.join("chromium");
        let page = browser::dom(&booted.net.pair.server, &profile, &url);
        let machine = format!("<td>{}</td><td>{}</td>", booted.dashed, booted.ip);
        assert!(page.contains(&machine), "{machine} not in:\n{page}");
        let row = page
            .split("<tr class=\"machine\">")
            .find(|row| row.contains(&machine))
            .unwrap_or_default();
        // Its DHCP exchanges, then each file it fetched, with its size.
        assert!(row.contains("DHCPDISCOVER"), "{row}");
        assert!(row.contains("DHCP (operating system): "), "{row}");
        for file in ["boot.ipxe", "vmlinuz", "initrd.gz"] {
            let size = file_size(booted.root, file);
            let step = format!("HTTP <span class=\"file\">/{file}</span>: {size} bytes");
            assert!(row.contains(&step), "{step} not in:\n{row}");
        }
        let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page-vm.png");
        browser::screenshot(&booted.net.pair.server, &profile, &url, &screenshot);
    });
    eprintln!(
        "BIOS iPXE ROM over HTTP: marker after {:.1} s",
        took.as_secs_f64()
    );
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn uefi_pxe_chainloads_ipxe_over_tftp_then_boots_over_http() {
    ready();
    let _one = serialise();
    let size = std::fs::metadata("/usr/lib/ipxe/ipxe.efi")
        .map(|m| m.len())
        .unwrap_or_default();
    let took = boot_over_http(
        Firmware::Uefi,
        "52:54:00:12:35:02",
        &[
            "52-54-00-12-35-02: DHCPACK 10.126.0.100 via 255.255.255.255:68, boot file ipxe.efi (PXE)".into(),
            format!("sent ipxe.efi: {size} bytes"),
        ],
    );
    eprintln!(
        "UEFI PXE → iPXE → HTTP: marker after {:.1} s",
        took.as_secs_f64()
    );
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn uefi_http_boot_loads_ipxe_from_a_url_then_boots_over_http() {
    ready();
    let _one = serialise();
    let size = std::fs::metadata("/usr/lib/ipxe/ipxe.efi")
        .map(|m| m.len())
        .unwrap_or_default();
    let took = boot_over_http(
        Firmware::UefiHttp,
        "52:54:00:12:35:03",
        &[
            format!(
                "52-54-00-12-35-03: DHCPACK 10.126.0.100 via 255.255.255.255:68, boot file http://{SERVER}/ipxe.efi (HTTP boot)"
            ),
            format!("(52-54-00-12-35-03): GET /ipxe.efi 200, {size} bytes"),
        ],
    );
    eprintln!(
        "UEFI HTTP boot → iPXE → HTTP: marker after {:.1} s",
        took.as_secs_f64()
    );
}

/// From power-on to the installer's own DHCP request. Under TCG on a busy 2-CPU
/// machine it took 6 to 10 minutes, most of it the installer's hardware detection
/// (and over a minute its 8 MB kernel and 40 MB initramfs over lock-step TFTP
/// from the mirror); the bound leaves room for a busier one.
const INSTALLER_BOUND: Duration = Duration::from_secs(900);

/// The seeds' `pxe.cfg`, for a machine with a serial console and nobody at it:
/// the text installer at critical priority, language and keyboard given, so
/// that it goes straight to detecting the network and asking for an address.
const INSTALLER_PXE_CFG: &str = "DEFAULT install
PROMPT 0
TIMEOUT 0
LABEL install
  KERNEL debian-installer/amd64/linux
  APPEND initrd=debian-installer/amd64/initrd.gz console=ttyS0,115200 priority=critical locale=en_US.UTF-8 keymap=us hostname=bootd-vm domain=test --- console=ttyS0,115200
";

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn the_seeds_debian_example_boots_the_real_debian_installer() {
    ready();
    let _one = serialise();
    let net = VmNet::new();
    let dir = TempDir::new();
    // The mirror: Debian's netboot tree where a mirror keeps it.
    let site = dir.path.join("site");
    let netboot = site.join("debian/netboot");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/vm-assets.sh");
    let done = run_bounded(
        Command::new(script).arg("--debian-installer").arg(&netboot),
        Duration::from_secs(300),
    );
    done.assert_success();
    let web = mirror(&net, &site);
    // The seeds' example: everything from the mirror but pxelinux's
    // configuration, a local file beside bootd.ini named by a filter.
    dir.write("pybootd/etc/pxe.cfg", INSTALLER_PXE_CFG);
    let conf = dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = info\n\
             [bootp]\npool_start = {POOL}\npool_count = 20\nallow_simple_dhcp = off\n\
             lease_file = leases\n\
             [bootfile]\ndefault = pxelinux.0\n\
             [tftp]\nroot = http://{SERVER}:8080/debian/netboot\n\
             [filters]\npxelinux.cfg/* = pybootd/etc/pxe.cfg\n"
        ),
    );
    let bootd = start_bootd(&net, &conf);
    let vm = Vm::start_with_memory(
        &net,
        Firmware::Bios,
        "52:54:00:12:35:04",
        "12345678-abcd-ef00-4444-abcdefabcdef",
        1024,
    );
    let dashed = vm.dashed_mac();
    // The installer's own request is the first after the firmware's that is no
    // PXE request (pxelinux asks for no address of its own).
    let deadline = vm.started + INSTALLER_BOUND;
    let os_ip = loop {
        if let Some(ip) = acked(&bootd.log(), &dashed, false) {
            break ip;
        }
        if Instant::now() > deadline || vm.qemu.stdout_so_far().contains("Kernel panic") {
            fail(
                &format!("no DHCPACK to the installer within {INSTALLER_BOUND:?}"),
                &[&vm],
                &bootd,
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let took = vm.started.elapsed();
    let log = bootd.log();
    let check = |ok: bool, what: &str| {
        if !ok {
            fail(what, &[&vm], &bootd);
        }
    };
    let pxe_ip = acked(&log, &dashed, true);
    check(
        pxe_ip.as_deref() == Some(os_ip.as_str()),
        &format!("the installer got {os_ip}, the PXE phase {pxe_ip:?}"),
    );
    let files = netboot.join("debian-installer/amd64");
    for (logged, file) in [
        ("pxelinux.0", "pxelinux.0"),
        ("debian-installer/amd64/linux", "linux"),
        ("debian-installer/amd64/initrd.gz", "initrd.gz"),
    ] {
        let needle = format!("sent {logged}: {} bytes", file_size(&files, file));
        check(
            log.contains(&needle),
            &format!("bootd never logged `{needle}`"),
        );
    }
    check(
        log.contains(&format!(
            "sent pxelinux.cfg/01-{} (as ",
            dashed.to_lowercase()
        )) && log.contains("pybootd/etc/pxe.cfg)"),
        "pxelinux's configuration was not the local pxe.cfg",
    );
    check(
        vm.console().contains("Linux version"),
        "the installer's kernel said nothing on the serial console",
    );
    drop(web);
    eprintln!(
        "Debian installer: its own DHCPACK ({os_ip}) after {:.1} s",
        took.as_secs_f64()
    );
}

/// The menu's countdown in the room test, in seconds.
const ROOM_TIMEOUT: u64 = 5;
/// What the OS booted by phase 1 is given: a marker with an `=` in its value, to
/// find on the OS's console as proof the command line arrived verbatim.
const ROOM_CMDLINE: &str = "console=ttyS0,115200 panic=-1 bootd.marker=kexec=verbatim";
/// Padding beside the OS's kernel and initramfs, so that bootd's limited link
/// (the web seed) cannot send the whole image to both machines before they have
/// passed pieces to each other.
const ROOM_PADDING: usize = 24 << 20;
/// bootd's link while the machines fetch the OS: 24 MiB of padding and ~10 MB of
/// kernel and initramfs take ~17 s to one machine, twice that to two.
const ROOM_RATE: &str = "16mbit";
/// From power-on to the OS's marker for both machines, the menu, phase 1 and the
/// download included.
const ROOM_BOUND: Duration = Duration::from_secs(420);

/// Builds phase 1 (scripts/build-phase1.sh, cached) into `root/phase1/`.
fn phase1_files(root: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-phase1.sh");
    let done = run_bounded(Command::new(script).arg(root), Duration::from_secs(900));
    done.assert_success();
}

/// Seconds since midnight of a log line's RFC 3339 time (`2026-05-01T10:00:00.1+02:00 …`).
fn logged_at(line: &str) -> Option<f64> {
    let time = line.split_whitespace().next()?.split('T').nth(1)?;
    let clock: String = time
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ':' || *c == '.')
        .collect();
    let mut parts = clock.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// When bootd's HTTP service began and finished answering `GET path` to `dashed`
/// (its log line is written at the end, with the time the answer took).
fn http_times(log: &str, dashed: &str, path: &str) -> Option<(f64, f64)> {
    let line = log
        .lines()
        .find(|l| l.contains(&format!("({dashed}): GET {path} 200, ")))?;
    let end = logged_at(line)?;
    let took: f64 = line
        .rsplit_once(" bytes in ")?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((end - took, end))
}

/// Bytes aria2 received from `peer`, as phase 1 reports them on the console.
fn received_from(console: &str, peer: &str) -> u64 {
    console
        .lines()
        .filter(|l| l.trim_end().ends_with(&format!(" from peer {peer}")))
        .filter_map(|l| {
            l.split("aria2 received ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[test]
#[ignore = "needs root, network namespaces and QEMU: run sudo scripts/test.sh"]
fn two_machines_boot_the_menus_default_through_phase_1_and_share_its_pieces() {
    ready();
    let _one = serialise();
    let started = Instant::now();
    let net = VmNet::new();
    let dir = TempDir::new();
    // The HTTP root: phase 1, and the OS's folder (the marker kernel and initramfs
    // of the other tests, and the padding).
    let root = dir.path.join("www");
    phase1_files(&root);
    let assets = dir.path.join("assets");
    boot_files(&assets);
    let os = dir.path.join("oss/marked");
    std::fs::create_dir_all(&os).unwrap();
    for file in ["vmlinuz", "initrd.gz"] {
        std::fs::copy(assets.join(file), os.join(file)).unwrap();
    }
    std::fs::write(os.join("padding.bin"), pattern(ROOM_PADDING, 7)).unwrap();
    // The default is the second entry: were the first booted instead, its
    // marker would say so (and its kernel would be fetched from /oss/first/).
    let conf = dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = info\n\
             [bootp]\npool_start = {POOL}\npool_count = 20\nallow_simple_dhcp = off\n\
             lease_file = leases\n\
             [bootfile]\ndefault = undionly.kpxe\nipxe = menu.ipxe\n\
             [tftp]\nroot = www\n\
             [menu]\ndefault = marked\ntimeout = {ROOM_TIMEOUT}\nseed_time = 3\n\
             phase1_cmdline = console=ttyS0,115200 panic=-1\n\
             [os first]\nname = The first entry (not the default)\nmethod = direct\n\
             dir = oss/marked\nkernel = vmlinuz\ninitrd = initrd.gz\n\
             cmdline = console=ttyS0,115200 panic=-1 bootd.marker=first-entry\n\
             [os marked]\nname = The default (BitTorrent, kexec)\nmethod = kexec\n\
             dir = oss/marked\nkernel = vmlinuz\ninitrd = initrd.gz\ncmdline = {ROOM_CMDLINE}\n"
        ),
    );
    let bootd = Bootd::start(&net.pair.server, &conf, &["-H"]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(10));
    bootd.wait_for_log(
        &format!("serving HTTP on {SERVER}:80 from "),
        Duration::from_secs(10),
    );
    bootd.wait_for_log("room: torrent of marked", Duration::from_secs(60));
    let image: u64 = ["vmlinuz", "initrd.gz", "padding.bin"]
        .iter()
        .map(|f| file_size(&os, f))
        .sum();

    let vms = [
        Vm::start_with_memory(
            &net,
            Firmware::Bios,
            "52:54:00:12:36:01",
            "12345678-abcd-ef00-5555-abcdefabcd01",
            768,
        ),
        Vm::start_with_memory(
            &net,
            Firmware::Bios,
            "52:54:00:12:36:02",
            "12345678-abcd-ef00-5555-abcdefabcd02",
            768,
        ),
    ];
    let all: Vec<&Vm> = vms.iter().collect();
    let dashed: Vec<String> = vms.iter().map(Vm::dashed_mac).collect();
    // Once both have phase 1 (which bootd's link sends at full speed), the link
    // is limited for what follows: the OS, by BitTorrent.
    let deadline = Instant::now() + ROOM_BOUND;
    while !dashed.iter().all(|d| {
        bootd
            .log()
            .contains(&format!("({d}): GET /phase1/initrd.img 200, "))
    }) {
        if Instant::now() > deadline {
            fail("phase 1 was not fetched by both machines", &all, &bootd);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    net.pair.server.run(&[
        "tc",
        "qdisc",
        "add",
        "dev",
        &net.pair.server_if,
        "root",
        "tbf",
        "rate",
        ROOM_RATE,
        "burst",
        "256kb",
        "latency",
        "400ms",
    ]);
    let mut ips = Vec::new();
    for vm in &vms {
        while !vm.console().contains(MARKER) {
            if vm.console().contains("phase 1: a shell") || Instant::now() > deadline {
                fail(
                    &format!("{}: no `{MARKER}` from the OS phase 1 started", vm.mac),
                    &all,
                    &bootd,
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let Some(ip) = vm.wait_for_marker(ROOM_BOUND) else {
            fail("the marker line names no address", &all, &bootd);
        };
        eprintln!(
            "{}: the OS's marker after {:.1} s",
            vm.mac,
            vm.started.elapsed().as_secs_f64()
        );
        ips.push(ip);
    }
    let log = bootd.log();
    let check = |ok: bool, what: &str| {
        if !ok {
            fail(what, &all, &bootd);
        }
    };
    check(
        !log.contains(" /oss/first/"),
        "the first entry was booted, not the default",
    );
    for (i, vm) in vms.iter().enumerate() {
        let console = vm.console();
        let d = &dashed[i];
        // Nobody pressed a key: the default was booted once the countdown ran out.
        let menu = http_times(&log, d, "/menu.ipxe");
        let kernel = http_times(&log, d, "/phase1/vmlinuz");
        let (Some((_, menu_sent)), Some((kernel_asked, _))) = (menu, kernel) else {
            fail(
                &format!("{d}: no GET of /menu.ipxe then /phase1/vmlinuz in bootd's log"),
                &all,
                &bootd,
            );
        };
        // (Times of day: a countdown across midnight would come out negative.)
        let waited = (kernel_asked - menu_sent).rem_euclid(86_400.0);
        check(
            waited >= ROOM_TIMEOUT as f64,
            &format!(
                "{d}: phase 1 was asked for {waited:.2} s after the menu, before its {ROOM_TIMEOUT} s countdown ended"
            ),
        );
        // The configured command line reached the OS as written.
        check(
            console
                .lines()
                .any(|l| l.trim_end() == format!("bootd-vm: command line: {ROOM_CMDLINE}")),
            &format!("{}: the OS did not get `{ROOM_CMDLINE}` verbatim", vm.mac),
        );
        check(
            console.contains("phase 1: starting marked"),
            &format!("{}: phase 1 did not start the OS", vm.mac),
        );
        // Pieces came from the other machine, not only from the web seed.
        let other = &ips[1 - i];
        let from_peer = received_from(&console, other);
        check(
            from_peer > 0,
            &format!(
                "{}: aria2 received nothing from the other machine ({other})",
                vm.mac
            ),
        );
        eprintln!(
            "{}: the menu's countdown waited {waited:.1} s; {from_peer} of {image} bytes came from {other}",
            vm.mac
        );
    }
    eprintln!(
        "two machines through the menu, phase 1 and BitTorrent to the OS: {:.1} s in all; \
         the web seed sent {} bytes for two copies of {image}",
        started.elapsed().as_secs_f64(),
        web_seed_bytes(&log, "marked")
    );
}
