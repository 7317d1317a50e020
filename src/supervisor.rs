//! Service threads and their supervision: SIGTERM/SIGINT stop every thread within
//! a second, SIGHUP hands every service the configuration reloaded, and a thread that fails or panics takes the
//! daemon down with a log line and exit status 1, never leaving it half alive.
//! What the daemon does between start-up and stop besides (finish start-up once
//! the services listen, report its status) are [`Duties`] the supervisor's loop
//! runs on time.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::event::{Mailbox, Message, Reloaded};

/// How long stopping services may take before bootd exits regardless.
pub const STOP_DEADLINE: Duration = Duration::from_secs(1);

const SIGNALS: Token = Token(0);
const EXITS: Token = Token(1);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Returned(Result<(), String>),
    Panicked,
}

struct ServiceExit {
    name: &'static str,
    outcome: Outcome,
}

/// Reports the thread's end, also when it unwinds from a panic.
struct ExitReporter {
    name: &'static str,
    result: Option<Result<(), String>>,
    exits: Sender<ServiceExit>,
    waker: Arc<Waker>,
}

impl Drop for ExitReporter {
    fn drop(&mut self) {
        let outcome = match self.result.take() {
            Some(result) if !std::thread::panicking() => Outcome::Returned(result),
            _ => Outcome::Panicked,
        };
        let _ = self.exits.send(ServiceExit {
            name: self.name,
            outcome,
        });
        let _ = self.waker.wake();
    }
}

/// Work for the supervisor's thread besides watching signals and services, driven
/// like an endpoint: called at its `poll_timeout`, and whenever the thread wakes.
pub trait Duties {
    /// When `handle_timeout` is due next, if ever.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Does what is due at `now`; an error stops bootd (exit status 1).
    fn handle_timeout(&mut self, now: Instant) -> Result<(), String>;
    /// bootd is stopping: called once, before the services are told to.
    fn stopping(&mut self);
}

/// What SIGHUP does: loads the configuration again; `None` keeps the one in
/// force (the reasons are logged).
pub trait Reload {
    fn reload(&mut self) -> Option<Reloaded>;
}

/// No duties at all.
struct NoDuties;

impl Duties for NoDuties {
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) -> Result<(), String> {
        Ok(())
    }
    fn stopping(&mut self) {}
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Stopped by a signal, every service clean: exit 0.
    Clean,
    /// A service failed or panicked, or did not stop: exit 1.
    Failure,
}

pub struct Supervisor {
    poll: Poll,
    signals: Signals,
    waker: Arc<Waker>,
    exits: Sender<ServiceExit>,
    exit_reports: Receiver<ServiceExit>,
    services: Vec<(&'static str, Mailbox, JoinHandle<()>)>,
    reloader: Option<Box<dyn Reload>>,
}

impl Supervisor {
    /// Installs the signal handlers; call before spawning services.
    pub fn new() -> io::Result<Supervisor> {
        let poll = Poll::new()?;
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), EXITS)?);
        let (exits, exit_reports) = crossbeam_channel::unbounded();
        Ok(Supervisor {
            poll,
            signals,
            waker,
            exits,
            exit_reports,
            services: Vec::new(),
            reloader: None,
        })
    }

    /// Wakes this supervisor's loop: for the inbox of its [`Duties`].
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Runs `body` on a thread named `name`; `mailbox` is how the supervisor tells it to stop.
    pub fn spawn<F>(&mut self, name: &'static str, mailbox: Mailbox, body: F) -> io::Result<()>
    where
        F: FnOnce() -> Result<(), String> + Send + 'static,
    {
        let exits = self.exits.clone();
        let waker = Arc::clone(&self.waker);
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut reporter = ExitReporter {
                    name,
                    result: None,
                    exits,
                    waker,
                };
                reporter.result = Some(body());
            })?;
        self.services.push((name, mailbox, handle));
        Ok(())
    }

    /// What SIGHUP does; without it, SIGHUP is only logged.
    pub fn on_reload(&mut self, reloader: Box<dyn Reload>) {
        self.reloader = Some(reloader);
    }

    /// Waits for a stop signal or a failing service, then stops everything.
    pub fn run(self) -> Ending {
        self.run_with(&mut NoDuties)
    }

    /// [`Supervisor::run`], doing `duties` meanwhile.
    pub fn run_with(mut self, duties: &mut dyn Duties) -> Ending {
        let mut events = Events::with_capacity(16);
        let mut ending = None;
        let mut exited: Vec<&'static str> = Vec::new();
        while ending.is_none() {
            let timeout = duties
                .poll_timeout()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("supervisor poll failed: {e}; stopping");
                ending = Some(Ending::Failure);
                break;
            }
            for event in events.iter() {
                if event.token() == SIGNALS {
                    for signal in self.signals.pending() {
                        match signal {
                            SIGHUP => match self.reloader.as_mut() {
                                Some(reloader) => {
                                    if let Some(config) = reloader.reload() {
                                        self.broadcast(Message::Reload(config));
                                    }
                                }
                                None => log::info!("SIGHUP received: nothing to reload"),
                            },
                            _ => {
                                let name = if signal == SIGINT {
                                    "SIGINT"
                                } else {
                                    "SIGTERM"
                                };
                                log::info!("{name} received: stopping");
                                ending.get_or_insert(Ending::Clean);
                            }
                        }
                    }
                }
            }
            while let Ok(exit) = self.exit_reports.try_recv() {
                exited.push(exit.name);
                match exit.outcome {
                    Outcome::Returned(Ok(())) => {
                        log::error!(
                            "the {} service stopped unexpectedly; stopping bootd",
                            exit.name
                        )
                    }
                    Outcome::Returned(Err(e)) => {
                        log::error!("the {} service failed: {e}; stopping bootd", exit.name)
                    }
                    Outcome::Panicked => {
                        log::error!(
                            "the {} service crashed (see the panic above); stopping bootd",
                            exit.name
                        )
                    }
                }
                ending = Some(Ending::Failure);
            }
            if ending.is_none()
                && let Err(e) = duties.handle_timeout(Instant::now())
            {
                log::error!("{e}; stopping bootd");
                ending = Some(Ending::Failure);
            }
        }
        duties.stopping();
        let mut ending = ending.unwrap_or(Ending::Failure);
        if !self.stop_all(&mut exited) {
            ending = Ending::Failure;
        }
        ending
    }

    fn broadcast(&self, message: Message) {
        for (name, mailbox, _) in &self.services {
            if !mailbox.send(message.clone()) {
                match message {
                    Message::Reload(_) => log::warn!(
                        "reload: the {name} service's inbox is full; it keeps its old configuration"
                    ),
                    _ => log::debug!("the {name} service did not take {message:?}"),
                }
            }
        }
    }

    /// Asks every service to stop and waits up to `STOP_DEADLINE`; false when one
    /// failed while stopping or did not stop in time.
    fn stop_all(mut self, exited: &mut Vec<&'static str>) -> bool {
        self.broadcast(Message::Stop);
        let deadline = Instant::now() + STOP_DEADLINE;
        let mut clean = true;
        while exited.len() < self.services.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.exit_reports.recv_timeout(left) {
                Ok(exit) => {
                    exited.push(exit.name);
                    match exit.outcome {
                        Outcome::Returned(Ok(())) => {
                            log::debug!("the {} service stopped", exit.name)
                        }
                        Outcome::Returned(Err(e)) => {
                            log::error!("the {} service failed while stopping: {e}", exit.name);
                            clean = false;
                        }
                        Outcome::Panicked => {
                            log::error!("the {} service crashed while stopping", exit.name);
                            clean = false;
                        }
                    }
                }
                Err(_) => {
                    for (name, _, _) in &self.services {
                        if !exited.contains(name) {
                            log::error!(
                                "the {name} service did not stop within {} ms; exiting anyway",
                                STOP_DEADLINE.as_millis()
                            );
                        }
                    }
                    return false;
                }
            }
        }
        for (_, _, handle) in self.services.drain(..) {
            let _ = handle.join();
        }
        clean
    }
}

/// Logs a panic of any thread through the logger (and stderr when logging is off),
/// so a crash is never silent.
pub fn install_panic_logger() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let message = format!("the {name} thread panicked: {info}");
        if log::max_level() == log::LevelFilter::Off || !log::log_enabled!(log::Level::Error) {
            eprintln!("bootd: {message}");
        } else {
            log::error!("{message}");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> (Mailbox, Receiver<Message>) {
        Mailbox::new(8, None)
    }

    #[test]
    fn a_failing_service_ends_the_daemon_as_failure() {
        let mut supervisor = Supervisor::new().unwrap();
        let (stay_mailbox, stay_inbox) = mailbox();
        supervisor
            .spawn("stays", stay_mailbox, move || {
                // Runs until told to stop, like a real service.
                match stay_inbox.recv() {
                    Ok(Message::Stop) => Ok(()),
                    other => Err(format!("unexpected {other:?}")),
                }
            })
            .unwrap();
        let (fail_mailbox, _fail_inbox) = mailbox();
        supervisor
            .spawn("fails", fail_mailbox, || Err("socket gone".into()))
            .unwrap();
        let started = Instant::now();
        assert_eq!(supervisor.run(), Ending::Failure);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_panicking_service_ends_the_daemon_as_failure() {
        let mut supervisor = Supervisor::new().unwrap();
        let (m, _inbox) = mailbox();
        supervisor
            .spawn("panics", m, || -> Result<(), String> {
                let items: Vec<u8> = Vec::new();
                // An out-of-bounds index: the kind of bug the supervisor must catch.
                let index = items.len() + 1;
                Err(format!("{}", items[index]))
            })
            .unwrap();
        assert_eq!(supervisor.run(), Ending::Failure);
    }
}
