//! Start-up: check what the configuration needs from this host, open the
//! sockets, start each service on its own thread, and supervise them.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use mio::{Poll, Waker};

use crate::bootp::lease_file::{self, LeaseJournal, Target};
use crate::bootp::leases::LeaseTable;
use crate::bootp::proxy::BOOT_SERVER_PORT;
use crate::bootp::proxy_service::{ProxyService, ProxySockets};
use crate::bootp::pxe::{self, HttpServer};
use crate::bootp::service::{self, BootpService};
use crate::config::{Config, LogTarget, NbdMode, Problem, Service, Services, TftpRoot};
use crate::event::{EventBus, Mailbox, Message};
use crate::filters::{Filters, Rewrite};
use crate::http::service::HttpService;
use crate::limits;
use crate::metrics::Metrics;
use crate::nbd::service::NbdService;
use crate::net::{self, NetConfig};
use crate::notify;
use crate::privileges::{self, Place, Reach, RunAs, Verdict};
use crate::reload::Reloader;
use crate::room::builder::{self as room, RoomHandle};
use crate::room::published::Published;
use crate::service_loop::WAKER;
use crate::sockets;
use crate::startup::{self, StartUp};
use crate::status::StatusLine;
use crate::supervisor::{Ending, Supervisor};
use crate::systemd;
use crate::tftp::service::TftpService;

/// Room in each inbox; beyond it events are dropped (and logged), never waited for.
const INBOX_CAPACITY: usize = 4096;

/// What start-up found out about this host.
#[derive(Debug, Clone)]
pub struct Plan {
    pub services: Services,
    /// The served networks, one per pool (BOOTP, or TFTP address detection).
    pub nets: Vec<NetConfig>,
    /// Where TFTP listens from the start; `None`: wait for the BOOTP side's addresses.
    pub tftp_address: Option<Ipv4Addr>,
    /// Whether the NBD service runs (`[nbd] exports` names any, or `-n`).
    pub nbd: bool,
    /// Where HTTP listens from the start (with `-H`); `None`: as for TFTP.
    pub http_address: Option<Ipv4Addr>,
    /// Where NBD listens from the start; `None`: wait for the BOOTP side's addresses.
    pub nbd_address: Option<Ipv4Addr>,
    pub warnings: Vec<String>,
    /// Who bootd runs as once its services listen.
    pub run_as: RunAs,
    /// The directories bootd gives that user at start (see [`privileges`]).
    pub places: Vec<Place>,
    /// The log file bootd created at this start, given to that user too (set by
    /// the caller, which opened it).
    pub log_file: Option<std::path::PathBuf>,
}

/// Why this host cannot run the configuration: every problem found, errors and
/// warnings, in the order they were found. Displayed, it is its errors, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProblems {
    pub problems: Vec<Problem>,
}

impl fmt::Display for HostProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<&str> = self
            .problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| p.message.as_str())
            .collect();
        f.write_str(&errors.join("\n"))
    }
}

impl std::error::Error for HostProblems {}

/// Checks what `config` needs from this host for `services` (no socket is opened).
/// Every check runs, so that `bootd --check` reports every problem at once.
pub fn prepare(config: &Config, services: Services) -> Result<Plan, HostProblems> {
    check_host(config, services, true)
}

/// [`prepare`] for a configuration reloaded into a running bootd: what is only
/// made at start (the lease file and its directory, the log file, the user and
/// the directories given to it) is left unchecked, since a reload keeps it as
/// it is; after the drop from root, checking it as the new user would refuse
/// every reload for files bootd opened as root.
pub fn prepare_reload(config: &Config, services: Services) -> Result<Plan, HostProblems> {
    check_host(config, services, false)
}

fn check_host(config: &Config, services: Services, at_start: bool) -> Result<Plan, HostProblems> {
    let file = config.path.display();
    let mut problems = Vec::new();
    let mut error = |message: String| problems.push(Problem::error(None, message));
    let bootp = &config.bootp;
    let proxy = bootp.proxy && services.bootp();
    // The addresses whose networks are served: the pools, or in proxy mode
    // (which hands out none) the network of `address` when no pool names one.
    let pools = if bootp.proxy && bootp.pools.is_empty() && !bootp.address.is_unspecified() {
        &vec![bootp.address]
    } else {
        &bootp.pools
    };
    if pools.is_empty() && services.bootp() {
        error(if proxy {
            format!(
                "{file}: [bootp] proxy = on, but neither address nor pool_start is set: set [bootp] address to this server's address on the network the machines boot from"
            )
        } else {
            format!(
                "{file}: [bootp] pool_start is not set: bootd needs the first address to hand out, and serves the network that contains it"
            )
        });
    }
    let nbd = services.nbd() && !config.nbd.exports.is_empty();
    if services == Services::only(Service::Nbd) && config.nbd.exports.is_empty() {
        error(format!(
            "{file}: -n/--nbd runs the NBD service, but [nbd] exports names no disk image to serve"
        ));
    }
    // (pool_start, its network) for every pool whose network was found.
    let mut served: Vec<(Ipv4Addr, NetConfig)> = Vec::new();
    let mut every_pool_found = true;
    let httpd = config.httpd.clone().unwrap_or_default();
    let detect = services.bootp()
        || (services.tftp() && config.tftp.address.is_none())
        || (nbd && config.nbd.address.is_none())
        || (services.http() && httpd.address.is_none());
    if detect {
        for pool_start in pools {
            // (In proxy mode without pools, the address is looked for once.)
            let fallback = Some(bootp.address)
                .filter(|a| a != pool_start)
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            let net = match net::detect(*pool_start, fallback) {
                Ok(net) => net,
                Err(e) if bootp.proxy => {
                    error(format!(
                        "{e} With proxy = on, [bootp] address is this server's own address on the network machines boot from."
                    ));
                    every_pool_found = false;
                    continue;
                }
                Err(e) => {
                    error(e.to_string());
                    every_pool_found = false;
                    continue;
                }
            };
            if let Some((other, _)) = served.iter().find(|(_, n)| n.device == net.device) {
                error(format!(
                    "{file}: [bootp] pool_start: the pools from {other} and {pool_start} are both served by {}; bootd serves one network per interface, so give each pool the network of its own interface",
                    net.device
                ));
                every_pool_found = false;
                continue;
            }
            served.push((*pool_start, net));
        }
    }
    let mut tftp_address = None;
    if services.tftp() {
        tftp_address = match (config.tftp.address, served.first()) {
            (Some(address), _) => Some(address),
            (None, Some((_, net))) if !services.bootp() => Some(net.server()),
            (None, Some(_)) => None,
            // A pool whose network was not found is reported above.
            (None, None) if !pools.is_empty() => None,
            (None, None) => {
                error(format!(
                    "{file}: TFTP needs an address to listen on: set [tftp] address, or [bootp] pool_start so that bootd can find the served interface"
                ));
                None
            }
        };
        if let TftpRoot::Dir(root) = &config.tftp.root
            && !root.is_dir()
        {
            error(format!(
                "{file}: [tftp] root = {}: no such directory; create it or point root at the directory holding the boot files",
                root.display()
            ));
        }
    }
    let mut http_address = None;
    if services.http() {
        http_address = match (httpd.address, served.first()) {
            (Some(address), _) => Some(address),
            (None, Some((_, net))) if !services.bootp() => Some(net.server()),
            (None, Some(_)) => None,
            (None, None) if !pools.is_empty() => None,
            (None, None) => {
                error(format!(
                    "{file}: HTTP needs an address to listen on: set [httpd] address, or [bootp] pool_start so that bootd can find the served interface"
                ));
                None
            }
        };
        if let Some(TftpRoot::Dir(root)) = &httpd.root
            && !root.is_dir()
        {
            error(format!(
                "{file}: [httpd] root = {}: no such directory; create it, or leave root out to serve the [tftp] root",
                root.display()
            ));
        }
        if httpd.root.is_none()
            && !services.tftp()
            && let TftpRoot::Dir(root) = &config.tftp.root
            && !root.is_dir()
        {
            error(format!(
                "{file}: [tftp] root = {}: no such directory, and HTTP serves it ([httpd] root is not set)",
                root.display()
            ));
        }
    }
    let mut warnings = Vec::new();
    if services.http() && !services.bootp() && httpd.check_ip {
        warnings.push(format!(
            "{file}: [httpd] check_ip is not enforced: the DHCP service does not run, so bootd knows no leases"
        ));
    }
    let mut nbd_address = None;
    if nbd {
        nbd_address = match (config.nbd.address, served.first()) {
            (Some(address), _) => Some(address),
            (None, Some((_, net))) if !services.bootp() => Some(net.server()),
            (None, Some(_)) => None,
            (None, None) if !pools.is_empty() => None,
            (None, None) => {
                error(format!(
                    "{file}: NBD needs an address to listen on: set [nbd] address, or [bootp] pool_start so that bootd can find the served interface"
                ));
                None
            }
        };
        check_nbd(config, &mut error, &mut warnings);
    }
    if proxy {
        // A proxy hands out no address: no lease file, no pool.
        if config.boot_files.default.is_none() && config.boot_files.by_arch.is_empty() {
            warnings.push(format!(
                "{file}: [bootp] proxy = on but no boot file is configured ([bootfile] default, or [bootp] boot_file): bootd will answer no machine"
            ));
        }
    } else if services.bootp() {
        if at_start {
            match lease_file::check(&config.bootp.lease_file) {
                Ok(warning) => warnings.extend(warning),
                Err(e) => error(e.to_string()),
            }
        }
        let mut pool_errors = Vec::new();
        check_pools(
            config,
            &served,
            every_pool_found,
            &mut pool_errors,
            &mut warnings,
        );
        for e in pool_errors {
            error(e);
        }
        if config.boot_files.default.is_none() && config.boot_files.by_arch.is_empty() {
            warnings.push(format!(
                "{file}: no boot file is configured ([bootfile] default, or [bootp] boot_file): PXE clients will get an address but nothing to boot"
            ));
        }
        check_http_boot(config, services, &mut warnings);
    }
    if services.bootp() && services.tftp() {
        missing_boot_files(config, &mut warnings);
    }
    if at_start {
        check_log_file(config, &mut error);
    }
    let run_as = match privileges::decide(config.daemon.user.as_deref()) {
        Ok(run_as) => run_as,
        Err(e) => {
            error(e);
            RunAs::AsStarted
        }
    };
    let mut places = Vec::new();
    // A proxy keeps no lease file: nothing of the BOOTP side is written.
    let written = written_places(config, services.bootp() && !proxy, nbd, &run_as);
    for place in written.into_iter().filter(|_| at_start) {
        match privileges::judge(&place, &run_as) {
            Verdict::Writable => {}
            Verdict::Give => places.push(place),
            Verdict::NotWritable(why) => error(format!("{file}: {why}")),
        }
    }
    // Checked at start only: a reload keeps the roots it cannot open (and says so).
    if at_start {
        for (dir, reach, option, what) in read_places(config, services) {
            if let Some(why) = privileges::unreadable(&dir, reach, &option, what, &run_as) {
                error(format!("{file}: {why}"));
            }
        }
    }
    if problems.iter().any(Problem::is_error) {
        problems.extend(warnings.into_iter().map(|w| Problem::warning(None, w)));
        return Err(HostProblems { problems });
    }
    Ok(Plan {
        services,
        nets: served.into_iter().map(|(_, net)| net).collect(),
        tftp_address,
        http_address,
        nbd,
        nbd_address,
        warnings,
        run_as,
        places,
        log_file: None,
    })
}

/// The directories bootd writes in once it runs as `run_as`: the lease file's
/// (compactions), and the overlays' (each machine's overlay file). The lease
/// file's is checked here only for a user bootd becomes: as the user it was
/// started as, `lease_file::check` says whether it can write there.
fn written_places(config: &Config, bootp: bool, nbd: bool, run_as: &RunAs) -> Vec<Place> {
    let mut places = Vec::new();
    if bootp
        && matches!(run_as, RunAs::User(_))
        && let Ok(Target::File(path)) = lease_file::resolve(&config.bootp.lease_file)
        && let (Some(dir), Some(name)) = (path.parent(), path.file_name())
    {
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        let own_files = ["", ".lock", ".tmp", ".rejected"]
            .iter()
            .map(|suffix| {
                let mut own = name.to_os_string();
                own.push(suffix);
                own
            })
            .collect();
        places.push(Place {
            what: "the lease file's directory".into(),
            option: "[bootp] lease_file",
            dir: dir.to_path_buf(),
            own_files,
        });
    }
    let cow = config.nbd.exports.iter().any(|e| e.mode == NbdMode::Cow);
    if let (true, true, Some(dir)) = (nbd, cow, &config.nbd.cow_dir)
        && dir.is_dir()
    {
        places.push(Place {
            what: "where each machine's overlay is written".into(),
            option: "[nbd] cow_dir",
            dir: dir.clone(),
            own_files: Vec::new(),
        });
    }
    places
}

/// The local directories bootd reads files from after the drop, with the option
/// that names each: the TFTP and HTTP roots and the menu's operating systems.
fn read_places(config: &Config, services: Services) -> Vec<(PathBuf, Reach, String, &'static str)> {
    let mut places = Vec::new();
    if services.tftp()
        && let TftpRoot::Dir(dir) = &config.tftp.root
    {
        let what = "the files TFTP serves";
        places.push((dir.clone(), Reach::HeldOpen, "[tftp] root".into(), what));
    }
    if services.http() {
        let root = config.httpd.as_ref().and_then(|h| h.root.as_ref());
        if let TftpRoot::Dir(dir) = root.unwrap_or(&config.tftp.root) {
            let what = "the files HTTP serves";
            places.push((dir.clone(), Reach::HeldOpen, "[httpd] root".into(), what));
        }
        for os in &config.menu.oss {
            let option = format!("[os {}] dir", os.name);
            let what = "the operating system's files";
            places.push((os.dir.clone(), Reach::ByPath, option, what));
        }
    }
    places
}

/// `[logger] type = file`: the file must open for appending (the directory a new
/// one goes in must exist and take it).
fn check_log_file(config: &Config, error: &mut impl FnMut(String)) {
    let (LogTarget::File, Some(path)) = (config.logger.target, &config.logger.file) else {
        return;
    };
    let file = config.path.display();
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map(|_| ());
    let result = match opened {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Not there yet: bootd creates it at start.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            match std::fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => writable_directory(dir),
                Ok(_) => Err(std::io::Error::from(std::io::ErrorKind::NotADirectory)),
                Err(e) => Err(e),
            }
        }
        other => other,
    };
    if let Err(e) = result {
        error(format!(
            "{file}: [logger] file = {}: bootd cannot open it for appending ({e}); create its directory, or make it writable",
            path.display()
        ));
    }
}

/// Whether a file can be created in `dir` by this process, without creating one:
/// a temporary file made and removed at once.
fn writable_directory(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".bootd-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// A boot file the BOOTP service hands out that is not in the local TFTP root
/// (after `[filters]`) will fail that machine's boot: worth a warning, not an
/// error, since files may arrive after bootd starts.
fn missing_boot_files(config: &Config, warnings: &mut Vec<String>) {
    let TftpRoot::Dir(root) = &config.tftp.root else {
        return;
    };
    if !root.is_dir() {
        // Reported as an error already.
        return;
    }
    let Ok(filters) = Filters::with_local_files(&config.filters, &config.dir) else {
        return;
    };
    let files = &config.boot_files;
    let mut named: Vec<(String, &str)> = Vec::new();
    if let Some(default) = &files.default {
        named.push(("default".into(), default));
    }
    for (arch, file) in &files.by_arch {
        named.push((format!("{arch:05}"), file));
    }
    if let Some(ipxe) = &files.ipxe {
        named.push(("ipxe".into(), ipxe));
    }
    let file = config.path.display();
    for (key, name) in named {
        let path = match filters.apply(name) {
            Rewrite::Unchanged => root.join(name.trim_start_matches('/')),
            Rewrite::Name { name, .. } => root.join(name.trim_start_matches('/')),
            Rewrite::Local { path, .. } => path,
            // Which file it names is read at each request.
            Rewrite::Indirect { .. } => continue,
        };
        if !path.is_file() {
            warnings.push(format!(
                "{file}: [bootfile] {key} = {name}: {} is no file: a machine given this boot file cannot boot until it is there",
                path.display()
            ));
        }
    }
}

/// A `[bootfile]` entry for UEFI HTTP boot clients names a file bootd can only
/// send them as a URL on its HTTP service: without `-H` they go unanswered.
fn check_http_boot(config: &Config, services: Services, warnings: &mut Vec<String>) {
    if services.http() {
        return;
    }
    let file = config.path.display();
    for (arch, boot_file) in &config.boot_files.by_arch {
        if pxe::is_http_arch(*arch) && !pxe::is_url(boot_file) {
            warnings.push(format!(
                "{file}: [bootfile] {arch:05} = {boot_file}: UEFI HTTP boot clients ({}) load a URL, and bootd's HTTP service does not run: they will not be answered; run bootd with -H, or write the entry as an http:// URL",
                pxe::arch_name(*arch)
            ));
        }
    }
}

/// Every export's image must be there; overlays need their directory; an image
/// written in place is worth a warning.
/// Publishes the menu and starts the room's builder when the configuration has
/// operating systems. Their URL is `[menu] url`, else the HTTP service's address.
fn start_room(
    config: &Config,
    plan: &Plan,
    httpd: &crate::config::HttpdConfig,
    published: &Published,
) -> Result<Option<RoomHandle>, String> {
    if config.menu.oss.is_empty() {
        return Ok(None);
    }
    let address = plan
        .http_address
        .or_else(|| plan.nets.first().map(|n| n.network.address()));
    let url = match (&config.menu.url, address) {
        (Some(url), _) => url.clone(),
        (None, Some(address)) if httpd.port == 80 => format!("http://{address}"),
        (None, Some(address)) => format!("http://{address}:{}", httpd.port),
        (None, None) => {
            return Err(
                "[menu] url is needed: the HTTP service's address is not known at start".into(),
            );
        }
    };
    log::info!(
        "room: {} operating systems; the menu is {url}/{}",
        config.menu.oss.len(),
        crate::room::menu::MENU_PATH
    );
    room::start(config.menu.clone(), url, published)
        .map(Some)
        .map_err(|e| format!("cannot start the room's builder thread: {e}"))
}

fn check_nbd(config: &Config, error: &mut impl FnMut(String), warnings: &mut Vec<String>) {
    let file = config.path.display();
    for export in &config.nbd.exports {
        let path = export.path.display();
        match std::fs::metadata(&export.path) {
            Ok(meta) if meta.is_file() => {}
            Ok(meta) if std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) => {}
            Ok(_) => error(format!(
                "{file}: [nbd] exports: {} = {path} is neither a file nor a block device",
                export.name
            )),
            Err(e) => error(format!(
                "{file}: [nbd] exports: {} = {path}: {e}; give the path of the disk image to serve",
                export.name
            )),
        }
        if export.mode == NbdMode::Write {
            warnings.push(format!(
                "{file}: [nbd] export {} is written in place (mode write): every machine that connects writes to {path} itself, and two machines at once will corrupt its file system; use cow unless one machine alone uses it",
                export.name
            ));
        }
    }
    let cow = config.nbd.exports.iter().any(|e| e.mode == NbdMode::Cow);
    if let (true, Some(dir)) = (cow, &config.nbd.cow_dir)
        && !dir.is_dir()
    {
        error(format!(
            "{file}: [nbd] cow_dir = {}: no such directory; create it, or leave cow_dir out to keep overlays in memory",
            dir.display()
        ));
    }
}

/// Reports pools that start on an address no host may have (an error when
/// nothing is left to hand out), and pools and fixed addresses that reach
/// outside the served networks.
/// `every_pool_found`: without it a fixed address may lie in a network that was
/// not found, and saying it is outside every served network would mislead.
fn check_pools(
    config: &Config,
    served: &[(Ipv4Addr, NetConfig)],
    every_pool_found: bool,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let file = config.path.display();
    let bootp = &config.bootp;
    if bootp.pool_count > 0 {
        for (start, net) in served {
            let network = net.network;
            // The pool the BOOTP service will really hand out.
            let pool = LeaseTable::for_network(network, *start, bootp.pool_count, &[]);
            if *start == network.broadcast() {
                errors.push(format!(
                    "{file}: [bootp] pool_start = {start} is the broadcast address of {network} ({}): the pool has no address to hand out; start it at a host address of that network",
                    net.device
                ));
                continue;
            }
            if pool.pool_count() == 0 {
                errors.push(format!(
                    "{file}: [bootp] pool_start = {start} + {}: the pool has no address to hand out on {network} ({}) but this server's own; start it at another host address of that network",
                    bootp.pool_count, net.device
                ));
                continue;
            }
            if *start == network.network() {
                warnings.push(format!(
                    "{file}: [bootp] pool_start = {start} is the network address of {network} ({}), which no host may have: the pool is {}",
                    net.device,
                    pool.describe_pool()
                ));
            } else if *start == net.server() {
                warnings.push(format!(
                    "{file}: [bootp] pool_start = {start} is this server's own address on {}: the pool is {}",
                    net.device,
                    pool.describe_pool()
                ));
            }
            let last = Ipv4Addr::from(u32::from(*start).saturating_add(bootp.pool_count - 1));
            if !net.contains(last) || last == net.network.broadcast() {
                warnings.push(format!(
                    "{file}: [bootp] pool {start} + {} addresses runs past the network {} of {}; addresses outside it will not be handed out",
                    bootp.pool_count, net.network, net.device
                ));
            }
        }
    }
    if !every_pool_found {
        return;
    }
    for lease in &config.static_dhcp {
        match served.iter().map(|(_, n)| n).find(|n| n.contains(lease.ip)) {
            None => warnings.push(format!(
                "{file}:{}: [static_dhcp] {} = {} is outside every served network; that machine will not be served",
                lease.line, lease.mac, lease.ip
            )),
            Some(net) if !net.network.is_host(lease.ip) || lease.ip == net.server() => {
                warnings.push(format!(
                    "{file}:{}: [static_dhcp] {} = {} is the network, broadcast or server address of {} ({}); that machine gets a pool address instead",
                    lease.line, lease.mac, lease.ip, net.network, net.device
                ))
            }
            Some(_) => {}
        }
    }
}

/// Raises the open-file limit to what the services may hold at once: two sockets
/// and a file per TFTP transfer (see tftp::tid_socket), a socket and a file per
/// HTTP or NBD connection, plus room for everything else.
fn raise_open_files(config: &Config, plan: &Plan) {
    let httpd = config.httpd.clone().unwrap_or_default();
    let mut wanted = 256;
    let mut holders = Vec::new();
    if plan.services.tftp() {
        wanted += config.tftp.max_transfers as u64 * 3;
        holders.push(format!(
            "{} transfers of [tftp] max_transfers",
            config.tftp.max_transfers
        ));
    }
    if plan.services.http() {
        wanted += httpd.max_connections as u64 * 2;
        holders.push(format!(
            "{} connections of [httpd] max_connections",
            httpd.max_connections
        ));
    }
    if plan.nbd {
        wanted += config.nbd.max_connections as u64 * 2;
        holders.push(format!(
            "{} connections of [nbd] max_connections",
            config.nbd.max_connections
        ));
    }
    if holders.is_empty() {
        return;
    }
    match limits::raise_open_files(wanted) {
        Ok(limit) if limit < wanted => log::warn!(
            "open files are limited to {limit}: fewer than the {} may be served at once; raise LimitNOFILE",
            holders.join(" and the ")
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Opens the sockets, starts the services and supervises them until a stop signal
/// or a failure. Socket errors are returned before any thread starts.
/// What SIGHUP does: the configuration re-read and handed to the services, and
/// the boot menu and its torrents rebuilt from it.
struct MenuReloader {
    reloader: Reloader,
    room: Option<RoomHandle>,
}

impl crate::supervisor::Reload for MenuReloader {
    fn reload(&mut self) -> Option<crate::event::Reloaded> {
        let reloaded = crate::supervisor::Reload::reload(&mut self.reloader)?;
        if let Some(room) = &self.room {
            room.reload(reloaded.0.menu.clone());
        }
        Some(reloaded)
    }
}

/// `reloader` is what SIGHUP does.
pub fn run(config: Config, plan: Plan, reloader: Reloader) -> Result<Ending, String> {
    raise_open_files(&config, &plan);
    let proxy = plan.services.bootp() && config.bootp.proxy;
    // The lease file is locked before anything else: a second bootd on the same
    // file stops here, saying which one holds it. A proxy keeps no lease.
    let lease_file = if plan.services.bootp() && !proxy {
        let opened = LeaseJournal::open(&config.bootp.lease_file, service::unix_seconds())
            .map_err(|e| e.to_string())?;
        for (level, line) in &opened.notes {
            log::log!(*level, "{line}");
        }
        Some(opened)
    } else {
        None
    };
    if let RunAs::User(account) = &plan.run_as {
        for place in &plan.places {
            privileges::give(place, account).map_err(|e| {
                format!(
                    "{}: cannot give {}, {}, to the user {}: {e}",
                    place.option,
                    place.dir.display(),
                    place.what,
                    account.name
                )
            })?;
            log::info!(
                "{} is {}'s now: {}",
                place.dir.display(),
                account.name,
                place.what
            );
        }
        if let Some(path) = &plan.log_file {
            privileges::give_file(path, account).map_err(|e| {
                format!(
                    "[logger] file = {}: cannot give it to the user {}: {e}",
                    path.display(),
                    account.name
                )
            })?;
        }
    }
    // The BOOTP port is the one most likely taken (another DHCP server): open it
    // on every served interface before any thread starts.
    let mut served = Vec::new();
    let mut proxied = Vec::new();
    if plan.services.bootp() {
        for net in &plan.nets {
            let socket = sockets::bootp_socket(&net.device, config.bootp.port).map_err(|e| {
                sockets::explain_bind_error(
                    &format!("BOOTP/DHCP on port {} of {}", config.bootp.port, net.device),
                    &e,
                )
            })?;
            if !proxy {
                served.push((net.clone(), socket));
                continue;
            }
            let boot_server =
                sockets::bootp_socket(&net.device, BOOT_SERVER_PORT).map_err(|e| {
                    sockets::explain_bind_error(
                        &format!(
                            "the PXE boot server on port {BOOT_SERVER_PORT} of {}",
                            net.device
                        ),
                        &e,
                    )
                })?;
            proxied.push(ProxySockets {
                net: net.clone(),
                dhcp: socket,
                boot_server,
            });
        }
    }
    // Where the HTTP service answers, when it runs: iPXE and HTTP boot clients
    // are sent URLs on it.
    let http_server = plan.services.http().then(|| {
        let httpd = config.httpd.clone().unwrap_or_default();
        HttpServer {
            address: httpd.address,
            port: httpd.port,
        }
    });
    let mut supervisor =
        Supervisor::new().map_err(|e| format!("cannot install the signal handlers: {e}"))?;
    // Filled in once the HTTP service starts the menu's builder.
    let mut room_handle = None;
    let notifies = (!served.is_empty() || !proxied.is_empty()) && !config.bootp.notify.is_empty();
    // The status line counts bindings from the lease events: only a service manager
    // reads it, so without one the BOOTP service publishes to no one more.
    let status = systemd::notify_socket_set().then(|| {
        let records = lease_file.as_ref().map_or(&[][..], |l| &l.records[..]);
        let networks = plan.services.bootp().then_some(plan.nets.len());
        StatusLine::new(std::time::Instant::now(), networks, records)
    });
    let EventReaders {
        tftp,
        http,
        notify,
        nbd,
        status: status_inbox,
        bus,
    } = EventReaders::open(
        plan.services.tftp(),
        plan.services.http(),
        notifies,
        plan.nbd,
        status.is_some().then(|| supervisor.waker()),
    )?;

    // Every service publishes its counts here; the HTTP service serves them.
    let proxy_runs = (lease_file.is_none() || served.is_empty()) && !proxied.is_empty();
    let metrics = if proxy_runs {
        Metrics::for_proxy([config.bootp.port, BOOT_SERVER_PORT])
    } else {
        Metrics::new()
    };

    if let Some(inbox) = nbd {
        let service = NbdService {
            config: config.nbd.clone(),
            address: plan.nbd_address,
            poll: inbox.poll,
            waker: inbox.waker,
            inbox: inbox.receiver,
            metrics: Arc::clone(&metrics),
        };
        supervisor
            .spawn("nbd", inbox.mailbox, move || service.run())
            .map_err(|e| format!("cannot start the NBD thread: {e}"))?;
    }

    if let Some(inbox) = tftp {
        let service = TftpService {
            config: config.tftp.clone(),
            address: plan.tftp_address,
            poll: inbox.poll,
            waker: inbox.waker,
            inbox: inbox.receiver,
            filter_rules: config.filters.clone(),
            config_dir: config.dir.clone(),
            metrics: Arc::clone(&metrics),
        };
        supervisor
            .spawn("tftp", inbox.mailbox, move || service.run())
            .map_err(|e| format!("cannot start the TFTP thread: {e}"))?;
    }

    if let Some(inbox) = http {
        let httpd = config.httpd.clone().unwrap_or_default();
        let published = Published::default();
        room_handle = start_room(&config, &plan, &httpd, &published)?;
        let service = HttpService {
            root: httpd
                .root
                .clone()
                .unwrap_or_else(|| config.tftp.root.clone()),
            address: plan.http_address,
            check_ip: httpd.check_ip && plan.services.bootp(),
            http_timeout: config.tftp.http_timeout,
            config: httpd,
            poll: inbox.poll,
            waker: inbox.waker,
            inbox: inbox.receiver,
            filter_rules: config.filters.clone(),
            config_dir: config.dir.clone(),
            published,
            metrics: Arc::clone(&metrics),
        };
        supervisor
            .spawn("http", inbox.mailbox, move || service.run())
            .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
    }

    if let Some((mailbox, inbox)) = notify {
        let targets = config.bootp.notify.clone();
        supervisor
            .spawn("notify", mailbox, move || notify::run(targets, inbox))
            .map_err(|e| format!("cannot start the notifier thread: {e}"))?;
    }

    if let Some(lease_file) = lease_file.filter(|_| !served.is_empty()) {
        let inbox = LoopInbox::open()?;
        let service = BootpService {
            config: config.clone(),
            served,
            poll: inbox.poll,
            waker: inbox.waker,
            inbox: inbox.receiver,
            events: bus,
            journal: lease_file.journal,
            records: lease_file.records,
            http: http_server,
            metrics: Arc::clone(&metrics),
        };
        supervisor
            .spawn("bootp", inbox.mailbox, move || service.run())
            .map_err(|e| format!("cannot start the BOOTP thread: {e}"))?;
    } else if !proxied.is_empty() {
        let inbox = LoopInbox::open()?;
        let service = ProxyService {
            config: config.clone(),
            served: proxied,
            poll: inbox.poll,
            waker: inbox.waker,
            inbox: inbox.receiver,
            events: bus,
            http: http_server,
            metrics: Arc::clone(&metrics),
        };
        supervisor
            .spawn("bootp", inbox.mailbox, move || service.run())
            .map_err(|e| format!("cannot start the proxyDHCP thread: {e}"))?;
    }

    supervisor.on_reload(Box::new(MenuReloader {
        reloader,
        room: room_handle,
    }));
    let mut startup = StartUp::new(
        std::time::Instant::now(),
        startup::expected_listeners(&config, &plan),
        plan.run_as.clone(),
        status.zip(status_inbox),
        metrics,
    );
    Ok(supervisor.run_with(&mut startup))
}

/// The inbox of a service with a mio loop: the loop's poll, the waker that
/// senders wake it with, and both ends of its channel.
struct LoopInbox {
    poll: Poll,
    waker: Arc<Waker>,
    mailbox: Mailbox,
    receiver: Receiver<Message>,
}

impl LoopInbox {
    fn open() -> Result<LoopInbox, String> {
        let poll = new_poll()?;
        let waker = new_waker(&poll)?;
        let (mailbox, receiver) = Mailbox::new(INBOX_CAPACITY, Some(Arc::clone(&waker)));
        Ok(LoopInbox {
            poll,
            waker,
            mailbox,
            receiver,
        })
    }
}

/// The inboxes of the threads that read events (TFTP, notifier, NBD), and the bus
/// that reaches every one of them. Made before any thread starts, so the BOOTP
/// service, which publishes, can only be given a bus with every subscriber in it.
struct EventReaders {
    tftp: Option<LoopInbox>,
    /// HTTP learns from lease events which addresses hold a binding (`check_ip`).
    http: Option<LoopInbox>,
    notify: Option<(Mailbox, Receiver<Message>)>,
    /// NBD learns from lease events which machine holds each address.
    nbd: Option<LoopInbox>,
    /// The supervisor counts bindings for its status line.
    status: Option<Receiver<Message>>,
    bus: EventBus,
}

impl EventReaders {
    /// `status`: the supervisor's waker, when it reads events too.
    fn open(
        tftp: bool,
        http: bool,
        notify: bool,
        nbd: bool,
        status: Option<Arc<Waker>>,
    ) -> Result<EventReaders, String> {
        let tftp = tftp.then(LoopInbox::open).transpose()?;
        let http = http.then(LoopInbox::open).transpose()?;
        let notify = notify.then(|| Mailbox::new(INBOX_CAPACITY, None));
        let nbd = nbd.then(LoopInbox::open).transpose()?;
        let status = status.map(|waker| Mailbox::new(INBOX_CAPACITY, Some(waker)));
        let mut subscribers = Vec::new();
        if let Some(inbox) = &tftp {
            subscribers.push(("tftp", inbox.mailbox.clone()));
        }
        if let Some(inbox) = &http {
            subscribers.push(("http", inbox.mailbox.clone()));
        }
        if let Some((mailbox, _)) = &notify {
            subscribers.push(("notify", mailbox.clone()));
        }
        if let Some(inbox) = &nbd {
            subscribers.push(("nbd", inbox.mailbox.clone()));
        }
        if let Some((mailbox, _)) = &status {
            subscribers.push(("status", mailbox.clone()));
        }
        Ok(EventReaders {
            tftp,
            http,
            notify,
            nbd,
            status: status.map(|(_, inbox)| inbox),
            bus: EventBus::new(subscribers),
        })
    }
}

fn new_poll() -> Result<Poll, String> {
    Poll::new().map_err(|e| format!("cannot create an event loop: {e}"))
}

fn new_waker(poll: &Poll) -> Result<Arc<Waker>, String> {
    Waker::new(poll.registry(), WAKER)
        .map(Arc::new)
        .map_err(|e| format!("cannot create an event-loop waker: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::types::Ipv4Network;
    use std::path::Path;

    fn served(address: Ipv4Addr, prefix_len: u8) -> NetConfig {
        NetConfig {
            device: "eth1".into(),
            label: "eth1".into(),
            index: None,
            network: Ipv4Network::new(address, prefix_len).unwrap(),
            mtu: None,
        }
    }

    #[test]
    fn the_bus_reaches_every_thread_that_reads_events() {
        let event = crate::event::Event::ServerAddress(Ipv4Addr::new(10, 0, 0, 1));
        let delivered =
            |inbox: &Receiver<Message>| inbox.try_recv() == Ok(Message::Event(event.clone()));
        for nbd in [false, true] {
            for (tftp, notify) in [(true, true), (true, false), (false, true), (false, false)] {
                // HTTP reads events when TFTP does, in this table.
                let readers = EventReaders::open(tftp, tftp, notify, nbd, None).unwrap();
                readers.bus.publish(event.clone());
                let to_tftp = readers
                    .tftp
                    .as_ref()
                    .map(|inbox| delivered(&inbox.receiver));
                let to_notify = readers.notify.as_ref().map(|(_, inbox)| delivered(inbox));
                let to_nbd = readers.nbd.as_ref().map(|inbox| delivered(&inbox.receiver));
                let to_http = readers
                    .http
                    .as_ref()
                    .map(|inbox| delivered(&inbox.receiver));
                assert_eq!(to_http, tftp.then_some(true), "http {tftp} notify {notify}");
                assert_eq!(to_tftp, tftp.then_some(true), "tftp {tftp} notify {notify}");
                assert_eq!(
                    to_notify,
                    notify.then_some(true),
                    "tftp {tftp} notify {notify}"
                );
                assert_eq!(to_nbd, nbd.then_some(true), "nbd {nbd}");
            }
        }
    }

    #[test]
    fn a_proxy_serves_the_network_of_its_address_and_opens_no_lease_file() {
        let text = "[bootp]\nproxy = on\naddress = 127.0.0.1\nlease_file = /proc/nonexistent/leases\n[bootfile]\ndefault = pxelinux.0\n";
        let config = load_str(Path::new("t.ini"), text, Path::new("/"))
            .unwrap()
            .config;
        let plan = prepare(&config, Services::only(Service::Bootp)).unwrap();
        assert_eq!(plan.nets.len(), 1);
        assert_eq!(plan.nets[0].server(), Ipv4Addr::LOCALHOST);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        // Without either address, it says which one to set.
        let config = load_str(Path::new("t.ini"), "[bootp]\nproxy = on\n", Path::new("/"))
            .unwrap()
            .config;
        let error = prepare(&config, Services::only(Service::Bootp))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "t.ini: [bootp] proxy = on, but neither address nor pool_start is set: set [bootp] address to this server's address on the network the machines boot from"
        );
    }

    #[test]
    fn an_http_boot_entry_without_the_http_service_is_a_warning() {
        let text = "[bootfile]\ndefault = pxelinux.0\n00007 = ipxe.efi\n00016 = ipxe.efi\n00019 = http://10.0.0.2/ipxe.efi\n";
        let config = load_str(Path::new("t.ini"), text, Path::new("/"))
            .unwrap()
            .config;
        let mut warnings = Vec::new();
        check_http_boot(&config, Services::ALL, &mut warnings);
        assert_eq!(
            warnings,
            [
                "t.ini: [bootfile] 00016 = ipxe.efi: UEFI HTTP boot clients (x64 UEFI HTTP) load a URL, and bootd's HTTP service does not run: they will not be answered; run bootd with -H, or write the entry as an http:// URL"
            ]
        );
        let mut warnings = Vec::new();
        check_http_boot(&config, Services::ALL.with_http(), &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_reservation_no_host_may_hold_is_reported() {
        let text = "[bootp]\npool_start = 10.0.0.100\n[static_dhcp]\n02-00-00-00-00-01 = 10.0.0.255\n02-00-00-00-00-02 = 10.0.0.1\n02-00-00-00-00-03 = 10.0.0.7\n";
        let config = load_str(Path::new("t.ini"), text, Path::new("/"))
            .unwrap()
            .config;
        let mut warnings = Vec::new();
        check_pools(
            &config,
            &[(
                Ipv4Addr::new(10, 0, 0, 100),
                served(Ipv4Addr::new(10, 0, 0, 1), 24),
            )],
            true,
            &mut Vec::new(),
            &mut warnings,
        );
        assert_eq!(
            warnings,
            vec![
                "t.ini:4: [static_dhcp] 02-00-00-00-00-01 = 10.0.0.255 is the network, broadcast or server address of 10.0.0.0/24 (eth1); that machine gets a pool address instead",
                "t.ini:5: [static_dhcp] 02-00-00-00-00-02 = 10.0.0.1 is the network, broadcast or server address of 10.0.0.0/24 (eth1); that machine gets a pool address instead",
            ]
        );
    }

    /// What `check_pools` says about the pool of `text` on 10.0.0.1/24:
    /// (errors, warnings).
    fn pool_problems(text: &str) -> (Vec<String>, Vec<String>) {
        let config = load_str(Path::new("t.ini"), text, Path::new("/"))
            .unwrap()
            .config;
        let start = config.bootp.pools[0];
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        check_pools(
            &config,
            &[(start, served(Ipv4Addr::new(10, 0, 0, 1), 24))],
            true,
            &mut errors,
            &mut warnings,
        );
        (errors, warnings)
    }

    #[test]
    fn a_pool_start_no_host_may_hold_is_reported() {
        let (errors, warnings) = pool_problems("[bootp]\npool_start = 10.0.0.0\n");
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            warnings,
            vec![
                "t.ini: [bootp] pool_start = 10.0.0.0 is the network address of 10.0.0.0/24 (eth1), which no host may have: the pool is 8 addresses, 10.0.0.1 to 10.0.0.9 without this server's own"
            ]
        );
        let (errors, warnings) = pool_problems("[bootp]\npool_start = 10.0.0.1\n");
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            warnings,
            vec![
                "t.ini: [bootp] pool_start = 10.0.0.1 is this server's own address on eth1: the pool is 9 addresses, 10.0.0.1 to 10.0.0.10 without this server's own"
            ]
        );
        let (errors, warnings) = pool_problems("[bootp]\npool_start = 10.0.0.255\n");
        assert_eq!(
            errors,
            vec![
                "t.ini: [bootp] pool_start = 10.0.0.255 is the broadcast address of 10.0.0.0/24 (eth1): the pool has no address to hand out; start it at a host address of that network"
            ]
        );
        assert_eq!(warnings, Vec::<String>::new());
        let (errors, _) = pool_problems("[bootp]\npool_start = 10.0.0.1\npool_count = 1\n");
        assert_eq!(
            errors,
            vec![
                "t.ini: [bootp] pool_start = 10.0.0.1 + 1: the pool has no address to hand out on 10.0.0.0/24 (eth1) but this server's own; start it at another host address of that network"
            ]
        );
        // A reservation-only server (pool_count = 0) is no problem.
        let only_reserved = "[bootp]\npool_start = 10.0.0.1\npool_count = 0\n";
        assert_eq!(pool_problems(only_reserved), (Vec::new(), Vec::new()));
        assert_eq!(
            pool_problems("[bootp]\npool_start = 10.0.0.100\n"),
            (Vec::new(), Vec::new())
        );
    }
}
