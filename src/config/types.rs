//! The typed configuration every service reads. Built by `config::load` from a
//! pybootd-style INI file; nothing here parses text. Each struct's `Default` is the
//! table of options' defaults (see `options.rs`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::filters::FilterRule;
use crate::types::{MacAddr, Uuid};

/// One of bootd's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Bootp,
    Tftp,
    Nbd,
}

/// Which services `bootd` runs: every one the configuration sets up, or one
/// alone (`-p`, `-t`, `-n`); and the HTTP file service besides with `-H`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    only: Option<Service>,
    http: bool,
}

impl Services {
    /// BOOTP and TFTP, and NBD when `[nbd] exports` names any (no option).
    pub const ALL: Services = Services {
        only: None,
        http: false,
    };

    /// One service alone.
    pub const fn only(service: Service) -> Services {
        Services {
            only: Some(service),
            http: false,
        }
    }

    /// These services and the HTTP file service (`-H`).
    pub fn with_http(self) -> Services {
        Services { http: true, ..self }
    }

    fn runs(self, service: Service) -> bool {
        self.only.is_none_or(|only| only == service)
    }
    pub fn bootp(self) -> bool {
        self.runs(Service::Bootp)
    }
    pub fn tftp(self) -> bool {
        self.runs(Service::Tftp)
    }
    /// NBD may run (it does when there are exports, and must with `-n`).
    pub fn nbd(self) -> bool {
        self.runs(Service::Nbd)
    }
    pub fn http(self) -> bool {
        self.http
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file the configuration was read from (for messages).
    pub path: PathBuf,
    /// The directory relative paths in it are taken from (the file's own).
    pub dir: PathBuf,
    pub daemon: DaemonConfig,
    pub logger: LoggerConfig,
    pub bootp: BootpConfig,
    pub boot_files: BootFiles,
    pub static_dhcp: Vec<StaticLease>,
    pub buggy_clients: Vec<MacRule>,
    pub mac_acl: Vec<MacRule>,
    pub uuid_acl: Vec<UuidRule>,
    pub http: HttpAuthConfig,
    pub tftp: TftpConfig,
    pub filters: Vec<FilterRule>,
    pub httpd: Option<HttpdConfig>,
    pub nbd: NbdConfig,
    /// The operating systems of the boot menu and how they are booted.
    pub menu: MenuConfig,
}

/// `[bootd]`: the process itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Who bootd becomes once its sockets and files are open, when started as root;
    /// `None`: `bootd` if that user exists, else `nobody`.
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    /// stderr read by journald: each line starts with its priority (`<3>`…`<7>`)
    /// and carries no timestamp of its own.
    Journal,
    Stdout,
    File,
    Syslog,
    None,
}

#[derive(Debug, Clone)]
pub struct LoggerConfig {
    pub target: LogTarget,
    pub level: log::LevelFilter,
    /// Path for `type = file`.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Mac,
    Uuid,
    Http,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsSetting {
    /// No option 6.
    None,
    /// The `nameserver` lines of /etc/resolv.conf, or the server itself.
    Auto,
    List(Vec<Ipv4Addr>),
}

#[derive(Debug, Clone)]
pub struct BootpConfig {
    /// proxyDHCP beside the site's DHCP server: no address handed out, no lease
    /// kept; PXE clients get boot information on port 67 and on port 4011.
    pub proxy: bool,
    pub access: Option<Access>,
    /// Fallback for network detection when the (first) pool matches no interface;
    /// in proxy mode without `pool_start`, the address whose network is served.
    pub address: Ipv4Addr,
    pub port: u16,
    pub allow_simple_dhcp: bool,
    pub servername: String,
    pub domain: String,
    pub dns: DnsSetting,
    /// Option 3; `None` means "the server's own address".
    pub gateway: Option<Ipv4Addr>,
    /// `set_gateway = off` sends no option 3, for networks where bootd's host is no router.
    pub send_gateway: bool,
    /// Option 1 override; default is the interface mask.
    pub netmask: Option<Ipv4Addr>,
    pub lease_time: u32,
    pub notify: Vec<SocketAddr>,
    /// `pool_start`: the first address of each pool, one pool of `pool_count`
    /// addresses per served network (several are `;`-separated). Required when the
    /// BOOTP service runs (and for TFTP address detection). Each pool's network is
    /// served from the interface holding an address in it.
    pub pools: Vec<Ipv4Addr>,
    pub pool_count: u32,
    /// Where confirmed MAC→address bindings are kept across restarts.
    pub lease_file: PathBuf,
    /// How many clients without a binding are remembered (boot phase, UUID,
    /// offer, authorisation answer, released address, lines said once); the
    /// least recently seen are forgotten first.
    pub remembered_clients: usize,
}

/// Boot file per client architecture (RFC 4578 option 93 / option 60 `Arch:`).
#[derive(Debug, Clone, Default)]
pub struct BootFiles {
    pub default: Option<String>,
    /// (architecture code, file), in file order.
    pub by_arch: Vec<(u16, String)>,
    /// `[bootfile] ipxe`: the file for clients already running iPXE (option 77
    /// `iPXE` or option 175), typically a script; a URL on the HTTP service when
    /// it runs. Handing them the iPXE loader again makes them chain-load
    /// forever. `None` (the default): iPXE clients get their architecture's
    /// file like everyone else, unless that file is an iPXE loader.
    pub ipxe: Option<String>,
}

impl BootFiles {
    /// The file for `arch`, or `None` when the architecture has no entry.
    pub fn for_arch(&self, arch: u16) -> Option<&str> {
        self.by_arch
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, f)| f.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticLease {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    /// Line in the configuration file, for messages.
    pub line: usize,
}

/// A `[mac]` / `[buggy_clients]` entry: `value & mask == mac & mask` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacRule {
    /// The key as written, for log lines.
    pub text: String,
    pub value: u64,
    pub mask: u64,
    pub allow: bool,
    pub line: usize,
}

impl MacRule {
    pub fn is_exact(&self) -> bool {
        self.mask == 0xFFFF_FFFF_FFFF
    }
    pub fn matches(&self, mac: MacAddr) -> bool {
        mac.as_u64() & self.mask == self.value & self.mask
    }
}

/// A `[uuid]` entry: 128-bit value and mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UuidRule {
    pub text: String,
    pub value: u128,
    pub mask: u128,
    pub allow: bool,
    pub line: usize,
}

impl UuidRule {
    pub fn is_exact(&self) -> bool {
        self.mask == u128::MAX
    }
    pub fn matches(&self, uuid: Uuid) -> bool {
        uuid.as_u128() & self.mask == self.value & self.mask
    }
}

#[derive(Debug, Clone)]
pub struct HttpAuthConfig {
    /// `http://host[:port][/prefix]`, scheme added when the file omits it.
    pub location: Option<String>,
    pub pxe_path: Option<String>,
    pub dhcp_path: Option<String>,
    pub timeout: Duration,
    pub always_check: bool,
    /// Queries out at once; a machine that would need one more is refused at once.
    pub max_queries: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TftpRoot {
    Dir(PathBuf),
    /// URL prefix without a trailing slash.
    Url(String),
}

#[derive(Debug, Clone)]
pub struct TftpConfig {
    /// Listen address; `None` means "the address the BOOTP side detected".
    pub address: Option<Ipv4Addr>,
    pub port: u16,
    /// Largest block size granted to a client that asks (RFC 2348); `None`: the interface MTU decides.
    pub max_blocksize: Option<u16>,
    /// Largest window granted (RFC 7440), 1–64.
    pub max_windowsize: u16,
    /// Retransmission timeout unless the client negotiates one.
    pub timeout: Duration,
    /// Retransmissions of one packet before the transfer is abandoned.
    pub retries: u32,
    pub max_transfers: usize,
    /// Transfers one client address may hold at once.
    pub max_transfers_per_client: usize,
    /// Longest retransmission timeout granted to a client that asks for one.
    pub max_timeout: Duration,
    pub root: TftpRoot,
    /// Connect/header deadline for an `http://` root.
    pub http_timeout: Duration,
    /// Longest poll without sleeping while transfers wait for ACKs (zero: off).
    pub busy_poll: Duration,
    /// Every transfer talks from the TFTP port rather than a port of its own.
    pub single_port: bool,
}

/// `[httpd]` (pybootd 1.8's section): the HTTP file service run with `-H`.
#[derive(Debug, Clone)]
pub struct HttpdConfig {
    /// Listen address; `None`: the address the BOOTP side serves from.
    pub address: Option<Ipv4Addr>,
    pub port: u16,
    /// `None`: the TFTP root.
    pub root: Option<TftpRoot>,
    /// Serve only addresses that hold a lease (when the DHCP service runs).
    pub check_ip: bool,
    pub max_connections: usize,
    /// Silence allowed between requests, and from a client that stops reading.
    pub timeout: Duration,
    /// Time a client has to send a whole request head.
    pub request_timeout: Duration,
}

/// What a client may do to an NBD export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NbdMode {
    /// Reads only; writes are refused (EPERM).
    ReadOnly,
    /// Each machine's writes go to its own overlay; the image is never written.
    Cow,
    /// Writes go to the image itself.
    Write,
}

impl NbdMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NbdMode::ReadOnly => "readonly",
            NbdMode::Cow => "cow",
            NbdMode::Write => "write",
        }
    }
}

/// One `[nbd] exports` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbdExport {
    /// The name clients ask for.
    pub name: String,
    /// The image: a file or a block device.
    pub path: PathBuf,
    pub mode: NbdMode,
    /// Read the whole image into memory at start.
    pub copy_to_ram: bool,
}

#[derive(Debug, Clone)]
pub struct NbdConfig {
    /// Listen address; `None` means "the addresses the BOOTP side serves from".
    pub address: Option<Ipv4Addr>,
    pub port: u16,
    pub exports: Vec<NbdExport>,
    /// Where overlays keep their pages; `None`: in memory.
    pub cow_dir: Option<PathBuf>,
    /// How long a machine's overlay outlives its last connection.
    pub cow_keep: Duration,
    /// The largest overlay of one machine on one export, in bytes.
    pub cow_max_size: u64,
    pub max_connections: usize,
}

/// How a menu entry boots its operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMethod {
    /// Phase 1 fetches the kernel and initrd by BitTorrent, then starts them with kexec.
    Kexec,
    /// iPXE loads the kernel and initrd over HTTP itself (no BitTorrent).
    Direct,
    /// Phase 1 fetches a program by BitTorrent and runs it.
    Bin,
    /// iPXE boots a disk image (an ISO) over HTTP with `sanboot`, reading it as it
    /// needs it (what BootTorrent ran QEMU for).
    Sanboot,
}

impl BootMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            BootMethod::Kexec => "kexec",
            BootMethod::Direct => "direct",
            BootMethod::Bin => "bin",
            BootMethod::Sanboot => "sanboot",
        }
    }

    /// Whether its files travel by BitTorrent (a torrent is made for it).
    pub fn uses_torrent(self) -> bool {
        matches!(self, BootMethod::Kexec | BootMethod::Bin)
    }
}

/// One operating system of the menu: an `[os NAME]` section, or a BootTorrent
/// `oss/NAME/config.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsConfig {
    /// Its key: the section's or the folder's name (also the torrent's name and the
    /// folder its files are served under).
    pub name: String,
    /// The menu's label.
    pub display: String,
    pub method: BootMethod,
    /// The folder holding its files.
    pub dir: PathBuf,
    /// Kernel and initrd, relative to `dir` (`kexec` and `direct`).
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    /// The kernel command line, passed on verbatim.
    pub cmdline: String,
    /// The program to run, relative to `dir`, and its arguments (`bin`).
    pub bin: Option<String>,
    pub binargs: String,
    /// The disk image iPXE boots, relative to `dir` (`sanboot`).
    pub image: Option<String>,
    /// Where it was defined, for messages: `bootd.ini:12` or `oss/x/config.yaml`.
    pub origin: String,
}

/// `[menu]` and the operating systems, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuConfig {
    /// The entry booted when the countdown ends; `None`: the first.
    pub default: Option<String>,
    /// Seconds before the default boots: 0 at once, negative never.
    pub timeout: i64,
    /// A BootTorrent `oss/` folder whose OSes follow the `[os …]` sections.
    pub oss_dir: Option<PathBuf>,
    /// The base URL clients reach bootd's HTTP service at; `None`: from its address.
    pub url: Option<String>,
    /// Phase 1's kernel and initramfs, as names under the HTTP root.
    pub phase1_kernel: String,
    pub phase1_initrd: String,
    /// Words added to phase 1's kernel command line (its console, say).
    pub phase1_cmdline: String,
    /// Seconds phase 1 keeps sharing after its download completes.
    pub seed_time: u64,
    /// A tracker's announce URL written in every torrent.
    pub tracker: Option<String>,
    pub oss: Vec<OsConfig>,
}
