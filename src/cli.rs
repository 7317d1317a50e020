//! The command line: `bootd [-c FILE] [-p|-t|-n] [-H] [-d] [--user USER] [--check [--quiet]]`,
//! and `bootd leases [-c FILE] [--json]`.

use std::path::PathBuf;

use crate::config::{Service, Services};

pub const DEFAULT_CONFIG: &str = "/etc/bootd.ini";

pub const USAGE: &str = "\
Usage: bootd [-c FILE] [-p|--pxe] [-t|--tftp] [-n|--nbd] [-H|--http] [-d] [--user USER]
       bootd --check [-q] [-c FILE] [-p|-t|-n] [-H] [--user USER]
       bootd leases [-c FILE] [--json]

Network-boot daemon: BOOTP/DHCP/PXE, TFTP, HTTP and NBD, configured by a pybootd INI file.

Options:
  -c, --config FILE  configuration file (default /etc/bootd.ini)
  -p, --pxe          run only the BOOTP/DHCP/PXE service (and HTTP with -H)
  -t, --tftp         run only the TFTP service (and HTTP with -H)
  -n, --nbd          run only the NBD service ([nbd] exports; and HTTP with -H)
  -H, --http         run the HTTP file service as well ([httpd])
  -d, --debug        log at debug level on stderr, whatever [logger] says
      --user USER    started as root, run as USER once the sockets are open
                     (default: [bootd] user, else bootd, else nobody; root
                     stays root)
      --check        check the configuration and the network, print the
                     effective settings, and exit (0: fine, 1: errors)
  -q, --quiet        with --check: print only the errors and warnings
  -h, --help         show this help and exit
  -V, --version      show the version and the compiled features, and exit

Commands:
  leases             list the bindings of the lease file (MAC, address, state,
                     last change), also while bootd runs; --json for scripts

Exit status: 0 clean stop, 1 configuration or runtime error, 2 usage error.
Signals: SIGTERM or SIGINT stop bootd; SIGHUP reloads the configuration and
reopens the log file.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run {
        config: PathBuf,
        services: Services,
        /// `--user`: overrides `[bootd] user`.
        user: Option<String>,
        /// `-d`: debug level on stderr.
        debug: bool,
    },
    Check {
        config: PathBuf,
        services: Services,
        user: Option<String>,
        /// `-q`: the problems only, not the settings.
        quiet: bool,
    },
    /// `bootd leases`: the lease file's bindings.
    Leases {
        config: PathBuf,
        json: bool,
    },
    Help,
    Version,
}

/// A usage error: the message to print before the usage text; exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    let mut config: Option<PathBuf> = None;
    // The service each `-p`/`-t`/`-n` chose, as written.
    let mut only: Vec<(Service, String)> = Vec::new();
    let mut http = false;
    let mut check = false;
    let mut quiet = false;
    let mut debug = false;
    let mut json = false;
    let mut user: Option<String> = None;
    let mut args = args.into_iter().peekable();
    let leases = args.next_if(|a| a == "leases").is_some();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value_of = |flag: &str, what: &str| -> Result<String, UsageError> {
            let value = match inline_value.clone() {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| UsageError(format!("{flag} needs {what}")))?,
            };
            if value.is_empty() {
                return Err(UsageError(format!("{flag} needs {what}")));
            }
            Ok(value)
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-c" | "--config" => {
                let value = value_of(&flag, "a file name")?;
                if config.replace(PathBuf::from(value)).is_some() {
                    return Err(UsageError("-c/--config is given twice".into()));
                }
            }
            _ if flag.starts_with("-c") && flag.len() > 2 && !flag.starts_with("--") => {
                // `-cFILE`
                if config.replace(PathBuf::from(&flag[2..])).is_some() {
                    return Err(UsageError("-c/--config is given twice".into()));
                }
            }
            "--json" if leases => json = true,
            "-p" | "--pxe" if !leases => only.push((Service::Bootp, "-p/--pxe".into())),
            "-t" | "--tftp" if !leases => only.push((Service::Tftp, "-t/--tftp".into())),
            "-n" | "--nbd" if !leases => only.push((Service::Nbd, "-n/--nbd".into())),
            "-H" | "--http" if !leases => http = true,
            "--check" if !leases => check = true,
            "-q" | "--quiet" if !leases => quiet = true,
            "-d" | "--debug" if !leases => debug = true,
            "--user" if !leases => {
                let value = value_of(&flag, "a user name")?;
                if user.replace(value).is_some() {
                    return Err(UsageError("--user is given twice".into()));
                }
            }
            _ if leases => {
                return Err(UsageError(format!(
                    "unknown argument `{arg}` for `bootd leases`, which takes -c FILE and --json"
                )));
            }
            _ => return Err(UsageError(format!("unknown argument `{arg}`"))),
        }
    }
    let config = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    if leases {
        return Ok(Command::Leases { config, json });
    }
    only.dedup_by(|a, b| a.0 == b.0);
    let services = match only.as_slice() {
        [] => Services::ALL,
        [(service, _)] => Services::only(*service),
        [(_, first), (_, second), ..] => {
            return Err(UsageError(format!(
                "{first} and {second} exclude each other: each runs one service alone; give none to run every service"
            )));
        }
    };
    let services = if http { services.with_http() } else { services };
    if check {
        if debug {
            return Err(UsageError(
                "-d/--debug runs bootd in the foreground; --check does not run it".into(),
            ));
        }
        return Ok(Command::Check {
            config,
            services,
            user,
            quiet,
        });
    }
    if quiet {
        return Err(UsageError(
            "-q/--quiet goes with --check (bootd --check --quiet)".into(),
        ));
    }
    Ok(Command::Run {
        config,
        services,
        user,
        debug,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_to_every_service_and_etc_bootd_ini() {
        assert_eq!(
            p(&[]),
            Ok(Command::Run {
                config: PathBuf::from("/etc/bootd.ini"),
                services: Services::ALL,
                user: None,
                debug: false,
            })
        );
    }

    #[test]
    fn config_forms() {
        for args in [
            &["-c", "x.ini"][..],
            &["--config", "x.ini"],
            &["--config=x.ini"],
            &["-cx.ini"],
        ] {
            assert_eq!(
                p(args),
                Ok(Command::Run {
                    config: PathBuf::from("x.ini"),
                    services: Services::ALL,
                    user: None,
                    debug: false,
                }),
                "{args:?}"
            );
        }
        assert!(p(&["-c"]).is_err());
        assert!(p(&["-c", "a", "-c", "b"]).is_err());
    }

    #[test]
    fn service_selection() {
        let services = |args: &[&str]| match p(args) {
            Ok(Command::Run { services, .. }) => services,
            other => panic!("{other:?}"),
        };
        assert_eq!(services(&["-p"]), Services::only(Service::Bootp));
        assert_eq!(services(&["--pxe"]), Services::only(Service::Bootp));
        assert_eq!(services(&["-t"]), Services::only(Service::Tftp));
        assert_eq!(services(&["--tftp"]), Services::only(Service::Tftp));
        assert_eq!(services(&["-n"]), Services::only(Service::Nbd));
        assert_eq!(services(&["--nbd", "-n"]), Services::only(Service::Nbd));
        let e = p(&["-p", "-t"]).unwrap_err();
        assert!(e.0.contains("exclude each other"));
        let e = p(&["-t", "--nbd"]).unwrap_err();
        assert!(
            e.0.contains("-t/--tftp and -n/--nbd exclude each other"),
            "{}",
            e.0
        );
        // -H adds HTTP to whatever else runs, as pybootd 1.8's does.
        assert_eq!(services(&["-H"]), Services::ALL.with_http());
        assert_eq!(services(&["--http"]), Services::ALL.with_http());
        assert_eq!(
            services(&["-p", "-H"]),
            Services::only(Service::Bootp).with_http()
        );
        assert_eq!(
            services(&["-H", "-t"]),
            Services::only(Service::Tftp).with_http()
        );
        assert!(services(&["-t", "-H"]).http() && !services(&["-t"]).http());
        assert!(services(&["-n", "-H"]).http() && services(&["-n", "-H"]).nbd());
        let only_nbd = Services::only(Service::Nbd);
        assert!(only_nbd.nbd() && !only_nbd.bootp() && !only_nbd.tftp());
        assert!(Services::ALL.nbd() && Services::ALL.bootp() && Services::ALL.tftp());
    }

    #[test]
    fn check_help_version_and_unknown() {
        assert!(matches!(
            p(&["--check", "-c", "f"]),
            Ok(Command::Check { .. })
        ));
        assert_eq!(p(&["-h"]), Ok(Command::Help));
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        assert_eq!(
            p(&["--frobnicate"]),
            Err(UsageError("unknown argument `--frobnicate`".into()))
        );
    }

    #[test]
    fn debug_user_and_quiet() {
        assert_eq!(
            p(&["-d", "--user", "nobody"]),
            Ok(Command::Run {
                config: PathBuf::from("/etc/bootd.ini"),
                services: Services::ALL,
                user: Some("nobody".into()),
                debug: true,
            })
        );
        assert!(matches!(
            p(&["--debug", "--user=root"]),
            Ok(Command::Run { debug: true, user: Some(u), .. }) if u == "root"
        ));
        assert_eq!(
            p(&["--check", "-q", "-c", "f"]),
            Ok(Command::Check {
                config: PathBuf::from("f"),
                services: Services::ALL,
                user: None,
                quiet: true,
            })
        );
        assert!(p(&["--quiet"]).unwrap_err().0.contains("goes with --check"));
        assert!(p(&["--check", "-d"]).is_err());
        assert!(p(&["--user"]).is_err());
        assert!(p(&["--user", "a", "--user", "b"]).is_err());
    }

    #[test]
    fn leases_takes_a_config_and_json() {
        assert_eq!(
            p(&["leases"]),
            Ok(Command::Leases {
                config: PathBuf::from("/etc/bootd.ini"),
                json: false
            })
        );
        assert_eq!(
            p(&["leases", "--json", "-c", "x.ini"]),
            Ok(Command::Leases {
                config: PathBuf::from("x.ini"),
                json: true
            })
        );
        let e = p(&["leases", "-p"]).unwrap_err();
        assert!(e.0.contains("for `bootd leases`"), "{}", e.0);
        // Only as the first word.
        assert!(p(&["-c", "x.ini", "leases"]).is_err());
        assert!(p(&["--json"]).is_err());
    }
}
