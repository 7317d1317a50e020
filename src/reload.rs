//! SIGHUP: read the configuration file again, check it as `--check` does, and
//! hand it to the running services, or keep the one in force when it has errors.
//!
//! Each service applies a new configuration to new requests (its endpoint's
//! `handle_reload`) and keeps what is in flight. Settings that made sockets,
//! threads or pools at start cannot change under them: [`restart_needed`] names
//! each one that changed, the log says so, and the services keep the old value
//! until bootd is restarted.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{self, Access, Config, LogTarget, Services};
use crate::daemon;
use crate::event::Reloaded;
use crate::logging;
use crate::net::NetConfig;

/// What the command line changed in the configuration file's settings: a
/// reload applies it again, so that `-d` or `--user` outlive a SIGHUP.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--user`.
    pub user: Option<String>,
    /// `-d`/`--debug`: the log on stderr at debug level.
    pub debug: bool,
}

impl Overrides {
    pub fn apply(&self, config: &mut Config) {
        if self.user.is_some() {
            config.daemon.user = self.user.clone();
        }
        if self.debug {
            config.logger.target = LogTarget::Stderr;
            config.logger.level = log::LevelFilter::Debug;
        }
    }
}

/// The daemon's side of SIGHUP: the configuration in force, and how to load the
/// next one.
pub struct Reloader {
    path: PathBuf,
    services: Services,
    overrides: Overrides,
    /// The configuration bootd started with: its sockets, threads and pools are
    /// still those, whatever reloads came since.
    started: Config,
    /// The served networks at start: what the sockets were bound to.
    nets: Vec<NetConfig>,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        services: Services,
        overrides: Overrides,
        started: Config,
        nets: Vec<NetConfig>,
    ) -> Reloader {
        Reloader {
            path,
            services,
            overrides,
            started,
            nets,
        }
    }

    /// Loads and checks the file again; logs every problem. `None` when it has
    /// an error (the configuration in force stays); otherwise the configuration
    /// to hand each service. The log file is reopened either way, for logrotate.
    pub fn reload(&mut self) -> Option<Reloaded> {
        let file = self.path.display().to_string();
        log::info!("SIGHUP received: reloading {file}");
        if self.started.logger.target == LogTarget::File {
            logging::reopen();
        }
        let mut loaded = match config::load(&self.path) {
            Ok(loaded) => loaded,
            Err(e) => {
                for problem in &e.problems {
                    if problem.is_error() {
                        log::error!("reload: {problem}");
                    } else {
                        log::warn!("reload: {problem}");
                    }
                }
                log::error!(
                    "reload: {file} has {} errors; the configuration in force stays",
                    e.errors().count()
                );
                return None;
            }
        };
        for warning in &loaded.warnings {
            log::warn!("reload: {warning}");
        }
        self.overrides.apply(&mut loaded.config);
        let plan = match daemon::prepare_reload(&loaded.config, self.services) {
            Ok(plan) => plan,
            Err(e) => {
                let mut errors = 0;
                for problem in &e.problems {
                    if problem.is_error() {
                        errors += 1;
                        log::error!("reload: {}", problem.message);
                    } else {
                        log::warn!("reload: {}", problem.message);
                    }
                }
                log::error!(
                    "reload: {file} has {errors} errors on this host; the configuration in force stays"
                );
                return None;
            }
        };
        for warning in &plan.warnings {
            log::warn!("reload: {warning}");
        }
        for change in restart_needed(&self.started, &loaded.config, &self.nets, &plan.nets) {
            log::warn!("reload: {change}; it needs a restart, the old value stays in force");
        }
        log::info!("reload: {file} is in force for new requests");
        Some(Reloaded(Arc::new(loaded.config)))
    }
}

/// The settings that changed from `old` to `new` which a running bootd cannot
/// apply (sockets, threads, pools, the log's destination, who it runs as), each
/// said as `[section] option changed from A to B`. `old_nets` and `new_nets`
/// are the networks served before and as the new file finds them.
pub fn restart_needed(
    old: &Config,
    new: &Config,
    old_nets: &[NetConfig],
    new_nets: &[NetConfig],
) -> Vec<String> {
    let mut changes = Vec::new();
    let mut compare = |name: &str, a: &dyn Debug, b: &dyn Debug| {
        let (a, b) = (format!("{a:?}"), format!("{b:?}"));
        if a != b {
            changes.push(format!("{name} changed from {a} to {b}"));
        }
    };
    let (o, n) = (&old.bootp, &new.bootp);
    compare("[bootp] port", &o.port, &n.port);
    compare("[bootp] proxy", &o.proxy, &n.proxy);
    compare("[bootp] address", &o.address, &n.address);
    compare("[bootp] pool_start", &o.pools, &n.pools);
    compare("[bootp] pool_count", &o.pool_count, &n.pool_count);
    compare("[bootp] lease_file", &o.lease_file, &n.lease_file);
    compare("[bootp] dns", &o.dns, &n.dns);
    compare("[bootp] netmask", &o.netmask, &n.netmask);
    compare(
        "[bootp] remembered_clients",
        &o.remembered_clients,
        &n.remembered_clients,
    );
    // The notifier thread runs only when there is somewhere to notify.
    compare(
        "[bootp] notify (whether any target is set)",
        &o.notify.is_empty(),
        &n.notify.is_empty(),
    );
    // While access stays `http`, the decisions made and the queries in flight
    // are kept, and with them the server they were asked of.
    if o.access == Some(Access::Http) && n.access == Some(Access::Http) {
        compare("[http]", &old.http, &new.http);
    }
    let (o, n) = (&old.tftp, &new.tftp);
    compare("[tftp] address", &o.address, &n.address);
    compare("[tftp] port", &o.port, &n.port);
    compare("[tftp] single_port", &o.single_port, &n.single_port);
    compare("[tftp] busy_poll", &o.busy_poll, &n.busy_poll);
    // The HTTP service takes a new root and filters; its sockets and its
    // address check are made at start.
    let httpd = |c: &Config| c.httpd.as_ref().map(|h| (h.address, h.port, h.check_ip));
    compare(
        "[httpd] (address, port, check_ip)",
        &httpd(old),
        &httpd(new),
    );
    let (o, n) = (&old.nbd, &new.nbd);
    compare("[nbd] address", &o.address, &n.address);
    compare("[nbd] port", &o.port, &n.port);
    compare("[nbd] exports", &o.exports, &n.exports);
    compare("[nbd] cow_dir", &o.cow_dir, &n.cow_dir);
    let (o, n) = (&old.logger, &new.logger);
    compare("[logger] type", &o.target, &n.target);
    compare("[logger] level", &o.level, &n.level);
    compare("[logger] file", &o.file, &n.file);
    compare("[bootd] user", &old.daemon.user, &new.daemon.user);
    let served = |nets: &[NetConfig]| -> Vec<String> {
        nets.iter()
            .map(|n| format!("{} {}", n.device, n.network))
            .collect()
    };
    compare("the served networks", &served(old_nets), &served(new_nets));
    changes
}

impl crate::supervisor::Reload for Reloader {
    fn reload(&mut self) -> Option<Reloaded> {
        Reloader::reload(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    fn config(text: &str) -> Config {
        load_str(Path::new("t.ini"), text, Path::new("/"))
            .unwrap()
            .config
    }

    #[test]
    fn access_lists_boot_files_and_filters_need_no_restart() {
        let old = config("[bootp]\npool_start = 10.0.0.100\n[bootfile]\ndefault = pxelinux.0\n");
        let new = config(
            "[bootp]\npool_start = 10.0.0.100\naccess = mac\n[mac]\n02-00-00-00-00-01 = enable\n[bootfile]\ndefault = lpxelinux.0\n[filters]\na = b\n[static_dhcp]\n02-00-00-00-00-01 = 10.0.0.7\n",
        );
        assert_eq!(restart_needed(&old, &new, &[], &[]), Vec::<String>::new());
    }

    #[test]
    fn a_new_http_root_needs_no_restart_a_new_http_port_does() {
        let old = config("[bootp]\npool_start = 10.0.0.100\n[httpd]\nroot = /srv/a\n");
        let new = config("[bootp]\npool_start = 10.0.0.100\n[httpd]\nroot = /srv/b\n");
        assert_eq!(restart_needed(&old, &new, &[], &[]), Vec::<String>::new());
        let moved =
            config("[bootp]\npool_start = 10.0.0.100\n[httpd]\nroot = /srv/b\nport = 8080\n");
        let changes = restart_needed(&old, &moved, &[], &[]);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(changes[0].starts_with("[httpd] (address, port, check_ip) changed"));
    }

    #[test]
    fn the_authorisation_server_changed_under_access_http_is_named() {
        let http = "[bootp]\npool_start = 10.0.0.100\naccess = http\n[http]\nlocation = http://10.0.0.2\npxe = /boot\ndhcp = /linux\n";
        let old = config(http);
        let new = config(&http.replace("10.0.0.2", "10.0.0.3"));
        let changes = restart_needed(&old, &new, &[], &[]);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(
            changes[0].starts_with("[http] changed from "),
            "{changes:?}"
        );
        // Another policy is made anew, from the new [http].
        let mac = config(
            "[bootp]\npool_start = 10.0.0.100\naccess = mac\n[mac]\n02-00-00-00-00-01 = enable\n",
        );
        assert_eq!(restart_needed(&mac, &new, &[], &[]), Vec::<String>::new());
    }

    #[test]
    fn ports_addresses_and_pools_that_changed_are_named() {
        let old = config("[bootp]\npool_start = 10.0.0.100\n[tftp]\nport = 69\n");
        let new = config(
            "[bootp]\npool_start = 10.0.0.50\nport = 1067\n[tftp]\nport = 6969\naddress = 10.0.0.1\n",
        );
        assert_eq!(
            restart_needed(&old, &new, &[], &[]),
            [
                "[bootp] port changed from 67 to 1067",
                "[bootp] pool_start changed from [10.0.0.100] to [10.0.0.50]",
                "[tftp] address changed from None to Some(10.0.0.1)",
                "[tftp] port changed from 69 to 6969",
            ]
        );
    }
}
