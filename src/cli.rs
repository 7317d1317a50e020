//! The command line: `bootd [-c FILE] [-p|--pxe] [-t|--tftp] [-n|--nbd] [-H|--http] [--check] [-h] [-V]`.

use std::path::PathBuf;

use crate::config::{Service, Services};

pub const DEFAULT_CONFIG: &str = "/etc/bootd.ini";

pub const USAGE: &str = "\
Usage: bootd [-c FILE] [-p|--pxe] [-t|--tftp] [-n|--nbd] [-H|--http] [--check]

Network-boot daemon: BOOTP/DHCP/PXE, TFTP, HTTP and NBD, configured by a pybootd INI file.

Options:
  -c, --config FILE  configuration file (default /etc/bootd.ini)
  -p, --pxe          run only the BOOTP/DHCP/PXE service (and HTTP with -H)
  -t, --tftp         run only the TFTP service (and HTTP with -H)
  -n, --nbd          run only the NBD service ([nbd] exports; and HTTP with -H)
  -H, --http         run the HTTP file service as well ([httpd])
      --check        check the configuration and the network, print the
                     effective settings, and exit (0: fine, 1: errors)
  -h, --help         show this help and exit
  -V, --version      show the version and exit

Exit status: 0 clean stop, 1 configuration or runtime error, 2 usage error.
Signals: SIGTERM or SIGINT stop bootd; SIGHUP is acknowledged in the log.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run { config: PathBuf, services: Services },
    Check { config: PathBuf, services: Services },
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
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-p" | "--pxe" => only.push((Service::Bootp, "-p/--pxe".into())),
            "-t" | "--tftp" => only.push((Service::Tftp, "-t/--tftp".into())),
            "-n" | "--nbd" => only.push((Service::Nbd, "-n/--nbd".into())),
            "-H" | "--http" => http = true,
            "--check" => check = true,
            "-c" | "--config" => {
                let value = match inline_value {
                    Some(v) => v,
                    None => args
                        .next()
                        .ok_or_else(|| UsageError(format!("{flag} needs a file name")))?,
                };
                if value.is_empty() {
                    return Err(UsageError(format!("{flag} needs a file name")));
                }
                if config.replace(PathBuf::from(value)).is_some() {
                    return Err(UsageError("-c/--config is given twice".into()));
                }
            }
            _ if flag.starts_with("-c") && flag.len() > 2 => {
                // `-cFILE`
                if config.replace(PathBuf::from(&flag[2..])).is_some() {
                    return Err(UsageError("-c/--config is given twice".into()));
                }
            }
            _ => return Err(UsageError(format!("unknown argument `{arg}`"))),
        }
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
    let config = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    Ok(if check {
        Command::Check { config, services }
    } else {
        Command::Run { config, services }
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
                services: Services::ALL
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
                    services: Services::ALL
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
}
