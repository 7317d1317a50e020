//! `bootd`: parse the command line, load the configuration, run the daemon (or
//! check it, or list its leases).

use std::path::Path;
use std::process::ExitCode;

use bootd::cli::{self, Command, USAGE};
use bootd::config::{self, Loaded, LogTarget, Problem, Services};
use bootd::daemon;
use bootd::lease_list;
use bootd::privileges::RunAs;
use bootd::reload::{Overrides, Reloader};
use bootd::supervisor::{self, Ending};

const EXIT_ERROR: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bootd: {}\n\n{USAGE}", e.0);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("bootd {}", env!("CARGO_PKG_VERSION"));
            println!("features: {}", FEATURES.join(" "));
            ExitCode::SUCCESS
        }
        Command::Check {
            config,
            services,
            user,
            quiet,
        } => check(&config, services, user, quiet),
        Command::Run {
            config,
            services,
            user,
            debug,
        } => run(&config, services, user, debug),
        Command::Leases { config, json } => leases(&config, json),
    }
}

/// The cargo features this binary was built with, `+` when in and `-` when out.
const FEATURES: &[&str] = &[
    if cfg!(feature = "https") {
        "+https"
    } else {
        "-https"
    },
    if cfg!(feature = "systemd") {
        "+systemd"
    } else {
        "-systemd"
    },
];

/// `bootd leases`: the lease file's bindings on stdout; unreadable lines on stderr.
fn leases(path: &Path, json: bool) -> ExitCode {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let lease_file = &loaded.config.bootp.lease_file;
    let listing = match lease_list::read(lease_file) {
        Ok(listing) => listing,
        Err(e) => {
            eprintln!("bootd: [bootp] lease_file = {}: {e}", lease_file.display());
            return ExitCode::from(EXIT_ERROR);
        }
    };
    for line in &listing.unreadable {
        eprintln!("bootd: {line}: line skipped");
    }
    if listing.file.is_none() {
        eprintln!(
            "bootd: [bootp] lease_file = {}: bindings are not kept",
            lease_file.display()
        );
    }
    if json {
        print!("{}", lease_list::json(&listing));
    } else {
        print!("{}", lease_list::table(&listing.bindings));
    }
    ExitCode::SUCCESS
}

/// Loads the configuration to run it: every problem of a file that cannot be used
/// goes to stderr (the logger is not set up yet).
fn load(path: &Path) -> Result<Loaded, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("bootd: configuration error:");
        for problem in &e.problems {
            eprintln!("{problem}");
        }
        ExitCode::from(EXIT_ERROR)
    })
}

/// `--check`: every problem on stderr, in line order (the file's, then the host's),
/// and the effective settings and served networks on stdout. The host is checked
/// only once the file has no error: a setting that failed to parse stands at its
/// default, and checking the host for that default would report a false problem.
fn check(path: &Path, services: Services, user: Option<String>, quiet: bool) -> ExitCode {
    let (loaded, file_problems) = match config::load(path) {
        Ok(mut loaded) => {
            if user.is_some() {
                loaded.config.daemon.user = user;
            }
            let warnings = loaded
                .warnings
                .iter()
                .map(|w| Problem::warning(None, w.clone()))
                .collect();
            (Some(loaded), warnings)
        }
        Err(e) => (None, e.problems),
    };
    for problem in &file_problems {
        eprintln!("{problem}");
    }
    let Some(loaded) = loaded else {
        let errors = file_problems.iter().filter(|p| p.is_error()).count();
        eprintln!(
            "bootd: {} in {}; the host is checked once the file has none",
            count(errors, "error"),
            path.display()
        );
        return ExitCode::from(EXIT_ERROR);
    };
    let (plan, host_problems) = match daemon::prepare(&loaded.config, services) {
        Ok(plan) => {
            let warnings = plan
                .warnings
                .iter()
                .map(|w| Problem::warning(None, w.clone()))
                .collect();
            (Some(plan), warnings)
        }
        Err(e) => (None, e.problems),
    };
    for problem in &host_problems {
        eprintln!("{problem}");
    }
    if !quiet {
        print!(
            "{}",
            config::effective_settings(&path.display().to_string(), &loaded.settings)
        );
    }
    let Some(plan) = plan else {
        let errors = host_problems.iter().filter(|p| p.is_error()).count();
        eprintln!("bootd: {} on this host", count(errors, "error"));
        return ExitCode::from(EXIT_ERROR);
    };
    if quiet {
        return ExitCode::SUCCESS;
    }
    match &plan.run_as {
        RunAs::User(account) => {
            println!("; runs as the user {account} once its sockets are open");
            for place in &plan.places {
                println!(
                    "; gives {} ({}) to {} at start",
                    place.dir.display(),
                    place.what,
                    account.name
                );
            }
        }
        RunAs::Root => println!("; runs as root ([bootd] user = root)"),
        RunAs::AsStarted => {}
    }
    for net in &plan.nets {
        println!(
            "; network: {} {}/{} (broadcast {}, MTU {})",
            net.label,
            net.server(),
            net.network.prefix_len(),
            net.network.broadcast(),
            net.mtu.map_or("unknown".into(), |m| m.to_string())
        );
    }
    println!("; configuration OK");
    ExitCode::SUCCESS
}

/// `1 error`, `2 errors`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn run(path: &Path, services: Services, user: Option<String>, debug: bool) -> ExitCode {
    let mut loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // pybootd's -d: the foreground run of someone debugging, on the terminal.
    let overrides = Overrides { user, debug };
    overrides.apply(&mut loaded.config);
    // A log file made now is bootd's own, to give to the user it runs as.
    let created_log_file = match (&loaded.config.logger.target, &loaded.config.logger.file) {
        (LogTarget::File, Some(file)) if !file.exists() => Some(file.clone()),
        _ => None,
    };
    if let Err(e) = bootd::logging::init(&loaded.config.logger) {
        eprintln!("bootd: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    let code = run_logged(path, services, loaded, created_log_file, overrides);
    // Log lines are written by their own thread: give it a moment to write the
    // last ones, but no more, should the log reader be stalled.
    bootd::logging::flush(bootd::logging::EXIT_FLUSH);
    code
}

/// Runs the daemon once the logger is installed.
fn run_logged(
    path: &Path,
    services: Services,
    loaded: Loaded,
    created_log_file: Option<std::path::PathBuf>,
    overrides: Overrides,
) -> ExitCode {
    supervisor::install_panic_logger();
    log::info!(
        "bootd {} starting with {}",
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    let to_stderr = matches!(
        loaded.config.logger.target,
        LogTarget::Stderr | LogTarget::Journal
    );
    let plan = match daemon::prepare(&loaded.config, services) {
        Ok(plan) => daemon::Plan {
            log_file: created_log_file,
            ..plan
        },
        Err(e) => {
            for problem in &e.problems {
                if problem.is_error() {
                    log::error!("{}", problem.message);
                    eprintln_unless_logged(to_stderr, &problem.message);
                } else {
                    log::warn!("{}", problem.message);
                }
            }
            return ExitCode::from(EXIT_ERROR);
        }
    };
    for warning in &plan.warnings {
        log::warn!("{warning}");
    }
    let reloader = Reloader::new(
        path.to_path_buf(),
        services,
        overrides,
        loaded.config.clone(),
        plan.nets.clone(),
    );
    match daemon::run(loaded.config, plan, reloader) {
        Ok(Ending::Clean) => {
            log::info!("bootd stopped");
            ExitCode::SUCCESS
        }
        Ok(Ending::Failure) => ExitCode::from(EXIT_ERROR),
        Err(e) => {
            log::error!("{e}");
            eprintln_unless_logged(to_stderr, &e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A start-up failure must reach the person who started bootd even when the log
/// goes to a file or syslog.
fn eprintln_unless_logged(logged_to_stderr: bool, message: &str) {
    if !logged_to_stderr {
        eprintln!("bootd: {message}");
    }
}
