//! `bootd`: parse the command line, load the configuration, run the daemon.

use std::process::ExitCode;

use bootd::cli::{self, Command, USAGE};
use bootd::config::{self, Loaded, LogTarget};
use bootd::daemon;
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
            ExitCode::SUCCESS
        }
        Command::Check { config, services } => check(&config, services),
        Command::Run { config, services } => run(&config, services),
    }
}

fn load(path: &std::path::Path) -> Result<Loaded, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("bootd: configuration error:\n{e}");
        ExitCode::from(EXIT_ERROR)
    })
}

/// `--check`: every problem on stderr, the effective settings on stdout.
fn check(path: &std::path::Path, services: bootd::config::Services) -> ExitCode {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let plan = daemon::prepare(&loaded.config, services);
    if let Ok(plan) = &plan {
        for warning in &plan.warnings {
            eprintln!("warning: {warning}");
        }
    }
    print!(
        "{}",
        config::effective_settings(&path.display().to_string(), &loaded.settings)
    );
    match plan {
        Ok(plan) => {
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
        Err(e) => {
            eprintln!("bootd: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(path: &std::path::Path, services: bootd::config::Services) -> ExitCode {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(e) = bootd::logging::init(&loaded.config.logger) {
        eprintln!("bootd: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    supervisor::install_panic_logger();
    log::info!(
        "bootd {} starting with {}",
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    let to_stderr = loaded.config.logger.target == LogTarget::Stderr;
    let plan = match daemon::prepare(&loaded.config, services) {
        Ok(plan) => plan,
        Err(e) => {
            log::error!("{e}");
            eprintln_unless_logged(to_stderr, &e);
            return ExitCode::from(EXIT_ERROR);
        }
    };
    for warning in &plan.warnings {
        log::warn!("{warning}");
    }
    match daemon::run(loaded.config, plan) {
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
