//! `access = http`, the decisions (sans-IO): pybootd's GET
//! `<location><pxe|dhcp>?mac=AA-BB-CC-DD-EE-FF[&uuid=…][&ip=…]`; 200 serves the
//! machine (a body may name it with `Client:` and give its boot file with `File:`),
//! any other status refuses it, no answer within the timeout ignores the request.
//!
//! The query never runs on the BOOTP thread: `check` answers `Pending` and queues
//! the query; worker threads (`auth_workers`) run it and the shell feeds the answer
//! back with `answer`. A decision holds for the machine's phase (PXE, then OS), so
//! a ROM's retransmissions cost one query; retransmissions while a query is out
//! start no second one. Failures and timeouts are not remembered: the machine's
//! next retransmission asks again.
//!
//! Bounded whatever clients send: at most `[http] max_queries` queries are out
//! at once, and a machine that would need one more is refused at once (an
//! answer already known is still given, never made to wait); answers are
//! remembered for the `[bootp] remembered_clients` most recent machines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::recent::RecentMap;
use super::server::{AccessGrant, AccessPolicy, AccessQuery, AccessVerdict, Phase};
use crate::config::HttpAuthConfig;
use crate::types::MacAddr;

/// How long an answer stands for a machine in the same phase.
pub const DECISION_TTL: Duration = Duration::from_secs(60);
/// The largest answer body read.
pub const MAX_BODY: usize = 64 * 1024;

/// A query for the workers to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u64,
    pub mac: MacAddr,
    pub url: String,
    /// When the request waiting on it is given up: the query ends by then.
    pub deadline: Instant,
}

/// What the authorisation server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status {
        code: u16,
        body: String,
    },
    /// No HTTP answer at all: connection refused, timeout, bad URL.
    Failed(String),
}

/// A query out for a machine, for its next phase.
#[derive(Debug, Clone)]
struct Pending {
    id: u64,
    phase: Phase,
    deadline: Instant,
}

/// The server's answer for a machine, for one phase.
#[derive(Debug, Clone)]
struct Decided {
    phase: Phase,
    verdict: AccessVerdict,
    /// Not consumed yet (with `always_check`, only a fresh answer counts).
    fresh: bool,
    until: Instant,
}

pub struct HttpDecisions {
    location: String,
    pxe_path: String,
    dhcp_path: String,
    timeout: Duration,
    always_check: bool,
    /// At most `max_queries` (`[http] max_queries`) entries: small enough that
    /// walking them costs nothing.
    pending: HashMap<MacAddr, Pending>,
    max_queries: usize,
    /// Answers, for the clients remembered (`[bootp] remembered_clients`).
    decided: RecentMap<MacAddr, Decided>,
    queued: Vec<Query>,
    next_id: u64,
}

impl HttpDecisions {
    /// Decisions remembered for at most `remembered` machines.
    pub fn new(config: &HttpAuthConfig, remembered: usize) -> HttpDecisions {
        HttpDecisions {
            location: config.location.clone().unwrap_or_default(),
            pxe_path: config.pxe_path.clone().unwrap_or_default(),
            dhcp_path: config.dhcp_path.clone().unwrap_or_default(),
            timeout: config.timeout,
            always_check: config.always_check,
            pending: HashMap::new(),
            max_queries: config.max_queries,
            decided: RecentMap::new(remembered),
            queued: Vec::new(),
            next_id: 1,
        }
    }

    /// Queries `check` asked for since the last call.
    pub fn take_queries(&mut self) -> Vec<Query> {
        std::mem::take(&mut self.queued)
    }

    /// Records an answer; returns the machine whose parked request should now be
    /// handled again, and a line for the log. Late answers (after the timeout) are
    /// ignored.
    pub fn answer(&mut self, id: u64, answer: Answer, now: Instant) -> Option<(MacAddr, String)> {
        let mac = *self
            .pending
            .iter()
            .find(|(_, p)| p.id == id)
            .map(|(mac, _)| mac)?;
        let phase = self.pending.remove(&mac)?.phase;
        let (verdict, until, line) = match answer {
            Answer::Status { code: 200, body } => {
                let grant = parse_body(&body);
                let line = format!(
                    "HTTP authorisation allows it{}{}",
                    grant
                        .host_name
                        .as_ref()
                        .map_or(String::new(), |n| format!(", Client: {n}")),
                    grant
                        .boot_file
                        .as_ref()
                        .map_or(String::new(), |f| format!(", File: {f}"))
                );
                (AccessVerdict::Allow(grant), now + DECISION_TTL, line)
            }
            Answer::Status { code, .. } => {
                let reason = format!("the HTTP authorisation server answered {code}");
                (
                    AccessVerdict::Deny(reason.clone()),
                    now + DECISION_TTL,
                    reason,
                )
            }
            Answer::Failed(error) => {
                let reason = format!("the HTTP authorisation server could not be asked: {error}");
                // Only the parked request takes it; the next one asks again.
                (AccessVerdict::Deny(reason.clone()), now, reason)
            }
        };
        let decided = Decided {
            phase,
            verdict,
            fresh: true,
            until,
        };
        self.decided.insert(mac, decided);
        Some((mac, line))
    }

    /// Gives up on queries past their deadline; each machine and why, for the log.
    pub fn expire(&mut self, now: Instant) -> Vec<(MacAddr, String)> {
        let timeout = self.timeout;
        let mut expired = Vec::new();
        self.pending.retain(|mac, p| {
            if p.deadline > now {
                return true;
            }
            expired.push((
                *mac,
                format!(
                    "the HTTP authorisation server did not answer within {} s",
                    timeout.as_secs_f64()
                ),
            ));
            false
        });
        expired
    }

    /// When `expire` next has work: the earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Queries in flight.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Machines whose answer is remembered.
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.decided.len()
    }

    fn url(&self, query: &AccessQuery) -> String {
        let path = if query.pxe {
            &self.pxe_path
        } else {
            &self.dhcp_path
        };
        let mut url = format!("{}{}?mac={}", self.location, path, query.mac);
        if let Some(uuid) = query.uuid {
            url.push_str(&format!("&uuid={uuid}"));
        }
        if !query.pxe
            && let Some(ip) = query.address
        {
            url.push_str(&format!("&ip={ip}"));
        }
        url
    }
}

impl AccessPolicy for HttpDecisions {
    fn check(&mut self, now: Instant, query: &AccessQuery) -> AccessVerdict {
        let mac = query.mac;
        if self
            .pending
            .get(&mac)
            .is_some_and(|p| p.phase == query.next_phase)
        {
            return AccessVerdict::Pending;
        }
        let always_check = self.always_check;
        if let Some(decided) = self.decided.get_mut(&mac)
            && decided.phase == query.next_phase
        {
            let usable = if always_check {
                decided.fresh
            } else {
                decided.fresh || decided.until > now
            };
            if usable {
                decided.fresh = false;
                return decided.verdict.clone();
            }
        }
        // Answers already known were given above: only a new question waits
        // for room, and it is refused at once rather than queued behind others.
        if self.pending.len() >= self.max_queries && !self.pending.contains_key(&mac) {
            return AccessVerdict::Deny(format!(
                "{} queries to the HTTP authorisation server are already waiting ([http] max_queries): not asked",
                self.pending.len()
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        let url = self.url(query);
        let deadline = now + self.timeout;
        self.queued.push(Query {
            id,
            mac,
            url,
            deadline,
        });
        self.pending.insert(
            mac,
            Pending {
                id,
                phase: query.next_phase,
                deadline,
            },
        );
        AccessVerdict::Pending
    }
}

/// `Client: NAME` → option 12, `File: NAME` → the boot file; other lines ignored.
pub fn parse_body(body: &str) -> AccessGrant {
    let mut grant = AccessGrant::default();
    for line in body.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || value.contains(':') {
            continue;
        }
        match key.trim().to_ascii_lowercase().as_str() {
            "client" => grant.host_name = Some(value.to_string()),
            "file" => grant.boot_file = Some(value.to_string()),
            _ => {}
        }
    }
    grant
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Uuid;
    use std::net::Ipv4Addr;

    fn config(always_check: bool) -> HttpAuthConfig {
        HttpAuthConfig {
            location: Some("http://10.0.0.2:8080".into()),
            pxe_path: Some("/boot".into()),
            dhcp_path: Some("/linux".into()),
            timeout: Duration::from_secs(2),
            always_check,
            max_queries: 64,
        }
    }

    const MAC: MacAddr = MacAddr([0x00, 0x0a, 0x86, 0xa2, 0x2f, 0x3e]);

    fn query(pxe: bool, next_phase: Phase) -> AccessQuery {
        AccessQuery {
            mac: MAC,
            uuid: pxe.then_some(Uuid(0x12345678_abcd_ef00_1111_abcdefabcdef)),
            pxe,
            phase: Phase::Idle,
            next_phase,
            address: (!pxe).then_some(Ipv4Addr::new(10, 0, 0, 100)),
            message_type: None,
        }
    }

    #[test]
    fn pxe_and_os_queries_use_their_paths_and_the_dashed_mac_form() {
        let t = Instant::now();
        let mut d = HttpDecisions::new(&config(false), 1000);
        assert_eq!(d.check(t, &query(true, Phase::Pxe)), AccessVerdict::Pending);
        let q = d.take_queries();
        assert_eq!(
            q[0].url,
            "http://10.0.0.2:8080/boot?mac=00-0A-86-A2-2F-3E&uuid=12345678-abcd-ef00-1111-abcdefabcdef"
        );
        let mut d = HttpDecisions::new(&config(false), 1000);
        d.check(t, &query(false, Phase::OsDhcp));
        let q = d.take_queries();
        assert_eq!(
            q[0].url,
            "http://10.0.0.2:8080/linux?mac=00-0A-86-A2-2F-3E&ip=10.0.0.100"
        );
    }

    #[test]
    fn retransmissions_while_pending_start_no_second_query() {
        let t = Instant::now();
        let mut d = HttpDecisions::new(&config(false), 1000);
        for _ in 0..5 {
            assert_eq!(d.check(t, &query(true, Phase::Pxe)), AccessVerdict::Pending);
        }
        assert_eq!(d.take_queries().len(), 1);
        assert_eq!(d.pending(), 1);
    }

    #[test]
    fn a_200_allows_for_the_phase_with_client_and_file() {
        let t = Instant::now();
        let mut d = HttpDecisions::new(&config(false), 1000);
        d.check(t, &query(true, Phase::Pxe));
        let id = d.take_queries()[0].id;
        let (mac, line) = d
            .answer(
                id,
                Answer::Status {
                    code: 200,
                    body: "\n\nClient: Tester-069\nFile: custom.0\n".into(),
                },
                t,
            )
            .unwrap();
        assert_eq!(mac, MAC);
        assert_eq!(
            line,
            "HTTP authorisation allows it, Client: Tester-069, File: custom.0"
        );
        let grant = AccessGrant {
            host_name: Some("Tester-069".into()),
            boot_file: Some("custom.0".into()),
        };
        // The parked request, then the ROM's retransmissions: no new query.
        for _ in 0..3 {
            assert_eq!(
                d.check(t, &query(true, Phase::Pxe)),
                AccessVerdict::Allow(grant.clone())
            );
        }
        assert!(d.take_queries().is_empty());
        // The OS phase is a new phase: a new query, on the dhcp path.
        assert_eq!(
            d.check(t, &query(false, Phase::OsDhcp)),
            AccessVerdict::Pending
        );
        assert!(d.take_queries()[0].url.contains("/linux?"));
    }

    #[test]
    fn any_other_status_refuses_and_is_remembered_for_a_while() {
        let t = Instant::now();
        let mut d = HttpDecisions::new(&config(false), 1000);
        d.check(t, &query(true, Phase::Pxe));
        let id = d.take_queries()[0].id;
        d.answer(
            id,
            Answer::Status {
                code: 401,
                body: String::new(),
            },
            t,
        );
        let refused = AccessVerdict::Deny("the HTTP authorisation server answered 401".into());
        assert_eq!(d.check(t, &query(true, Phase::Pxe)), refused);
        assert_eq!(d.check(t, &query(true, Phase::Pxe)), refused);
        assert!(d.take_queries().is_empty());
        // After the decision's lifetime the machine is asked about again.
        let later = t + DECISION_TTL + Duration::from_secs(1);
        assert_eq!(
            d.check(later, &query(true, Phase::Pxe)),
            AccessVerdict::Pending
        );
    }

    #[test]
    fn no_answer_within_the_timeout_ignores_and_the_next_retransmission_asks_again() {
        let t = Instant::now();
        let mut d = HttpDecisions::new(&config(false), 1000);
        d.check(t, &query(true, Phase::Pxe));
        let id = d.take_queries()[0].id;
        assert_eq!(d.next_deadline(), Some(t + Duration::from_secs(2)));
        assert!(d.expire(t + Duration::from_secs(1)).is_empty());
        let expired = d.expire(t + Duration::from_secs(2));
        assert_eq!(expired.len(), 1);
        assert!(
            expired[0].1.contains("did not answer within 2 s"),
            "{}",
            expired[0].1
        );
        // The late answer changes nothing.
        assert_eq!(
            d.answer(
                id,
                Answer::Status {
                    code: 200,
                    body: String::new()
                },
                t
            ),
            None
        );
        let later = t + Duration::from_secs(3);
        assert_eq!(
            d.check(later, &query(true, Phase::Pxe)),
            AccessVerdict::Pending
        );
        assert_eq!(d.take_queries().len(), 1);
    }

    #[test]
    fn a_failed_query_refuses_once_then_asks_again() {
        let t = Instant::now();
        let mut d = HttpDecisions::new(&config(false), 1000);
        d.check(t, &query(true, Phase::Pxe));
        let id = d.take_queries()[0].id;
        d.answer(id, Answer::Failed("Connection refused".into()), t);
        assert!(
            matches!(d.check(t, &query(true, Phase::Pxe)), AccessVerdict::Deny(r) if r.contains("Connection refused"))
        );
        assert_eq!(d.check(t, &query(true, Phase::Pxe)), AccessVerdict::Pending);
    }

    #[test]
    fn always_check_asks_on_every_request() {
        let t = Instant::now();
        let mut d = HttpDecisions::new(&config(true), 1000);
        d.check(t, &query(true, Phase::Pxe));
        let id = d.take_queries()[0].id;
        d.answer(
            id,
            Answer::Status {
                code: 200,
                body: String::new(),
            },
            t,
        );
        assert!(matches!(
            d.check(t, &query(true, Phase::Pxe)),
            AccessVerdict::Allow(_)
        ));
        assert_eq!(d.check(t, &query(true, Phase::Pxe)), AccessVerdict::Pending);
        assert_eq!(d.take_queries().len(), 1);
    }

    #[test]
    fn body_lines() {
        assert_eq!(parse_body(""), AccessGrant::default());
        let g = parse_body("client: a\nFILE:  b.efi \nOther: x\nbroken line\nfile: c:d\n");
        assert_eq!(g.host_name.as_deref(), Some("a"));
        assert_eq!(g.boot_file.as_deref(), Some("b.efi"));
    }
}
