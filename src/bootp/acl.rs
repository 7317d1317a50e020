//! `[bootp] access`: who may boot. [`AccessControl`] is the policy the endpoints
//! ask, made from the configuration; this module also holds the local lists of
//! `access = mac` and `access = uuid`. An exact entry beats a pattern; otherwise
//! the first matching entry in file order decides; no match means refused. Every
//! answer names the entry and its line, so the log says why a machine did not boot.

use std::time::Instant;

use super::http_auth::HttpDecisions;
use super::server::{AccessGrant, AccessPolicy, AccessQuery, AccessVerdict, AllowAll};
use crate::config::{Access, Config, MacRule, UuidRule};
use crate::types::{MacAddr, Uuid};

/// The policy of `[bootp] access`, as the DHCP and proxy endpoints hold it.
pub(crate) enum AccessControl {
    Everyone(AllowAll),
    Macs(MacList),
    Uuids(UuidList),
    /// Boxed: much larger than the others, and made once.
    Http(Box<HttpDecisions>),
}

impl AccessControl {
    pub(crate) fn new(config: &Config) -> AccessControl {
        match config.bootp.access {
            None => AccessControl::Everyone(AllowAll),
            Some(Access::Mac) => AccessControl::Macs(MacList {
                rules: config.mac_acl.clone(),
            }),
            Some(Access::Uuid) => AccessControl::Uuids(UuidList {
                rules: config.uuid_acl.clone(),
            }),
            Some(Access::Http) => AccessControl::Http(Box::new(HttpDecisions::new(
                &config.http,
                config.bootp.remembered_clients,
            ))),
        }
    }

    pub(crate) fn policy(&mut self) -> &mut dyn AccessPolicy {
        match self {
            AccessControl::Everyone(p) => p,
            AccessControl::Macs(p) => p,
            AccessControl::Uuids(p) => p,
            AccessControl::Http(p) => p.as_mut(),
        }
    }
}

/// The entry of a MAC list that decides for `mac`, if any (also `[buggy_clients]`).
pub fn decide_mac(rules: &[MacRule], mac: MacAddr) -> Option<&MacRule> {
    rules
        .iter()
        .find(|r| r.is_exact() && r.matches(mac))
        .or_else(|| rules.iter().find(|r| r.matches(mac)))
}

/// The entry of a UUID list that decides for `uuid`, if any. Firmware sends
/// option 97 in SMBIOS byte order, so the machine `dmidecode` shows as
/// `12345678-abcd-ef00-…` arrives as `78563412-cdab-00ef-…` (and pybootd logged
/// that form): an entry written either way matches, the form on the wire first.
pub fn decide_uuid(rules: &[UuidRule], uuid: Uuid) -> Option<&UuidRule> {
    let swapped = uuid.smbios_swapped();
    let exact = |u: Uuid| rules.iter().find(move |r| r.is_exact() && r.matches(u));
    let pattern = |u: Uuid| rules.iter().find(move |r| r.matches(u));
    exact(uuid)
        .or_else(|| exact(swapped))
        .or_else(|| pattern(uuid))
        .or_else(|| pattern(swapped))
}

/// `access = mac`: every request is checked, reservations included, so an
/// explicit `disable` always wins over `[static_dhcp]`.
pub struct MacList {
    pub rules: Vec<MacRule>,
}

impl AccessPolicy for MacList {
    fn check(&mut self, _now: Instant, query: &AccessQuery) -> AccessVerdict {
        match decide_mac(&self.rules, query.mac) {
            Some(rule) if rule.allow => AccessVerdict::Allow(AccessGrant::default()),
            Some(rule) => AccessVerdict::Deny(format!(
                "[mac] {} (line {}) disables it",
                rule.text, rule.line
            )),
            None => AccessVerdict::Deny("no [mac] entry matches it".into()),
        }
    }
}

/// `access = uuid`: the UUID of option 97, or the one its PXE phase showed.
pub struct UuidList {
    pub rules: Vec<UuidRule>,
}

impl AccessPolicy for UuidList {
    fn check(&mut self, _now: Instant, query: &AccessQuery) -> AccessVerdict {
        let Some(uuid) = query.uuid else {
            return AccessVerdict::Deny(
                "no UUID known: access = uuid needs option 97 of a PXE request, and this machine has made none through bootd".into(),
            );
        };
        match decide_uuid(&self.rules, uuid) {
            Some(rule) if rule.allow => AccessVerdict::Allow(AccessGrant::default()),
            Some(rule) => AccessVerdict::Deny(format!(
                "[uuid] {} (line {}) disables UUID {}",
                rule.text, rule.line, uuid
            )),
            None => AccessVerdict::Deny(format!(
                "no [uuid] entry matches UUID {} (dmidecode shows it as {})",
                uuid,
                uuid.smbios_swapped()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootp::server::Phase;
    use crate::config::load_str;
    use std::path::Path;

    fn rules(text: &str) -> (Vec<MacRule>, Vec<UuidRule>) {
        let loaded = load_str(Path::new("t.ini"), text, Path::new("/")).unwrap();
        (loaded.config.mac_acl, loaded.config.uuid_acl)
    }

    fn mac(text: &str) -> MacAddr {
        text.parse().unwrap()
    }

    fn query(mac: MacAddr, uuid: Option<u128>) -> AccessQuery {
        let uuid = uuid.map(Uuid);
        AccessQuery {
            mac,
            uuid,
            pxe: uuid.is_some(),
            phase: Phase::Idle,
            next_phase: Phase::Pxe,
            address: None,
            message_type: None,
        }
    }

    fn allowed(policy: &mut dyn AccessPolicy, q: &AccessQuery) -> Result<(), String> {
        match policy.check(Instant::now(), q) {
            AccessVerdict::Allow(_) => Ok(()),
            AccessVerdict::Deny(reason) => Err(reason),
            AccessVerdict::Pending => Err("pending".into()),
        }
    }

    /// An OUI entry (`/24`) matches every MAC of that vendor and no other.
    #[test]
    fn oui_pattern_allows_its_vendor_only() {
        let (mac_rules, _) = rules("[mac]\nAA-BB-CC/24 = enable\n");
        let mut list = MacList { rules: mac_rules };
        assert_eq!(
            allowed(&mut list, &query(mac("aabbcc123456"), None)),
            Ok(())
        );
        assert_eq!(
            allowed(&mut list, &query(mac("001122334455"), None)),
            Err("no [mac] entry matches it".into())
        );
    }

    /// An exact entry beats a pattern, wherever it stands.
    #[test]
    fn exact_entry_beats_a_pattern() {
        let (mac_rules, _) = rules("[mac]\nAA-BB-CC/24 = enable\nAA-BB-CC-00-00-01 = disable\n");
        let mut list = MacList { rules: mac_rules };
        assert_eq!(
            allowed(&mut list, &query(mac("aabbcc000001"), None)),
            Err("[mac] AA-BB-CC-00-00-01 (line 3) disables it".into())
        );
        assert_eq!(
            allowed(&mut list, &query(mac("aabbcc000002"), None)),
            Ok(())
        );
    }

    /// `/N` leaves the N lowest bits free.
    #[test]
    fn slash_n_frees_the_low_bits() {
        let (mac_rules, _) = rules("[mac]\nAA-BB-CC-DD/8 = enable\n");
        let mut list = MacList { rules: mac_rules };
        assert_eq!(
            allowed(&mut list, &query(mac("aabbccdd007f"), None)),
            Ok(())
        );
        assert!(allowed(&mut list, &query(mac("aabbccdd0100"), None)).is_err());
    }

    #[test]
    fn first_pattern_in_file_order_decides() {
        let (mac_rules, _) = rules("[mac]\nAA-BB/32 = disable\nAA-BB-CC/24 = enable\n");
        let mut list = MacList { rules: mac_rules };
        assert_eq!(
            allowed(&mut list, &query(mac("aabbcc000001"), None)),
            Err("[mac] AA-BB/32 (line 2) disables it".into())
        );
    }

    /// Deliberately unlike pybootd: a machine holding an address, or
    /// reserved in [static_dhcp], is still checked; a `disable` always wins.
    #[test]
    fn every_request_is_checked_even_with_an_address() {
        let (mac_rules, _) = rules("[mac]\nAA-BB-CC-DD-EE-FF = disable\n");
        let mut list = MacList { rules: mac_rules };
        let mut q = query(mac("aabbccddeeff"), None);
        q.address = Some(std::net::Ipv4Addr::new(10, 0, 0, 5));
        assert!(allowed(&mut list, &q).is_err());
    }

    /// Firmware sends option 97 in SMBIOS order; a list copied from dmidecode
    /// matches as well as one copied from bootd's (or pybootd's) log.
    #[test]
    fn uuid_entries_match_in_either_byte_order() {
        let on_the_wire = 0x78563412_cdab_00ef_1111_abcdefabcdef;
        let m = mac("001122334455");
        for listed in [
            "12345678-abcd-ef00-1111-abcdefabcdef",
            "78563412-cdab-00ef-1111-abcdefabcdef",
        ] {
            let (_, uuid_rules) = rules(&format!("[uuid]\n{listed} = enable\n"));
            let mut list = UuidList { rules: uuid_rules };
            assert_eq!(
                allowed(&mut list, &query(m, Some(on_the_wire))),
                Ok(()),
                "{listed}"
            );
        }
        let (_, uuid_rules) = rules("[uuid]\n00000000-0000-0000-0000-000000000001 = enable\n");
        let mut list = UuidList { rules: uuid_rules };
        assert_eq!(
            allowed(&mut list, &query(m, Some(on_the_wire))),
            Err("no [uuid] entry matches UUID 78563412-cdab-00ef-1111-abcdefabcdef (dmidecode shows it as 12345678-abcd-ef00-1111-abcdefabcdef)".into())
        );
    }

    /// UUID lists, and an OS request inheriting its PXE phase's UUID (the
    /// server passes the inherited UUID in the query).
    #[test]
    fn uuid_list_and_a_missing_uuid() {
        let (_, uuid_rules) = rules(
            "[uuid]\n12345678-abcd-ef00-1111-abcdefabcdef = enable\n00000000-0000-0000-0000-00000000dead = disable\n",
        );
        let mut list = UuidList { rules: uuid_rules };
        let m = mac("001122334455");
        assert_eq!(
            allowed(
                &mut list,
                &query(m, Some(0x12345678_abcd_ef00_1111_abcdefabcdef))
            ),
            Ok(())
        );
        assert_eq!(
            allowed(&mut list, &query(m, Some(0xdead))),
            Err("[uuid] 00000000-0000-0000-0000-00000000dead (line 3) disables UUID 00000000-0000-0000-0000-00000000dead".into())
        );
        assert!(
            allowed(&mut list, &query(m, Some(7)))
                .unwrap_err()
                .starts_with("no [uuid] entry matches")
        );
        assert!(
            allowed(&mut list, &query(m, None))
                .unwrap_err()
                .starts_with("no UUID known")
        );
    }
}
