//! Parsers for single option values. Each returns a message saying what is accepted;
//! the loader adds the file, line, section and option.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::types::DnsSetting;
use crate::types::{MacAddr, Uuid};

pub type ValueResult<T> = Result<T, String>;

const TRUE_WORDS: [&str; 8] = ["on", "true", "enable", "enabled", "yes", "high", "ok", "1"];
const FALSE_WORDS: [&str; 8] = [
    "off", "false", "disable", "disabled", "no", "low", "ko", "0",
];

/// pybootd's boolean words, case-insensitive. Anything else is an error, not a silent false.
pub fn boolean(text: &str) -> ValueResult<bool> {
    let word = text.trim();
    if TRUE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
        Ok(true)
    } else if FALSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
        Ok(false)
    } else {
        Err(format!(
            "not a boolean; use one of {} (true) or {} (false)",
            TRUE_WORDS.join(" "),
            FALSE_WORDS.join(" ")
        ))
    }
}

pub fn ipv4(text: &str) -> ValueResult<Ipv4Addr> {
    text.trim().parse().map_err(|_| {
        "not an IPv4 address (expected four numbers 0-255 such as 192.168.1.100)".into()
    })
}

/// Addresses separated by `;` (or `,`), spaces allowed; an empty list is allowed.
pub fn ipv4_list(text: &str) -> ValueResult<Vec<Ipv4Addr>> {
    let mut list: Vec<Ipv4Addr> = Vec::new();
    // One look-up per item, however long the list.
    let mut seen = std::collections::HashSet::new();
    for item in text
        .split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let ip: Ipv4Addr = item.parse().map_err(|_| {
            format!(
                "`{item}` is not an IPv4 address (expected addresses such as 192.168.1.100, separated by `;`)"
            )
        })?;
        if !seen.insert(ip) {
            return Err(format!("{ip} is listed twice"));
        }
        list.push(ip);
    }
    Ok(list)
}

pub fn port(text: &str) -> ValueResult<u16> {
    match text.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err("not a UDP port (expected a number from 1 to 65535)".into()),
    }
}

/// An unsigned integer within `min..=max`.
pub fn integer(text: &str, min: u64, max: u64) -> ValueResult<u64> {
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("not a whole number from {min} to {max}")),
    }
}

/// Seconds, fractions allowed (`2.5`), within `min..=max`.
pub fn seconds(text: &str, min: f64, max: f64) -> ValueResult<Duration> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= min && s <= max => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("not a number of seconds from {min} to {max}")),
    }
}

/// `AA-BB-CC-DD-EE-FF`, `AA:BB:CC:DD:EE:FF` or `AABBCCDDEEFF`, any case.
pub fn mac(text: &str) -> ValueResult<MacAddr> {
    text.parse()
        .map_err(|e: crate::types::MacParseError| e.to_string())
}

/// A MAC pattern of pybootd (`[mac]`, `[buggy_clients]`): hex digits with optional
/// `-`/`:` separators, left-aligned in 48 bits (`AA-BB-CC` is `AA:BB:CC:00:00:00`),
/// optionally `/N`. As in pybootd, `/N` leaves the N lowest bits free: `AA-BB-CC/24`
/// is the OUI AA:BB:CC, read the way a sysadmin reads it. Without `/N` the entry is exact.
/// Returns (value, mask).
pub fn mac_pattern(text: &str) -> ValueResult<(u64, u64)> {
    let text = text.trim();
    let (digits_part, wildcard_bits) = match text.split_once('/') {
        Some((d, n)) => {
            let n = n
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 48)
                .ok_or("the number after `/` must be 0 to 48 (the low bits left free)")?;
            (d, n)
        }
        None => (text, 0),
    };
    let digits: String = digits_part
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    if digits.is_empty() || digits.len() > 12 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(
            "not a MAC pattern (expected up to six hex pairs, optionally /N, such as AA-BB-CC/24)"
                .into(),
        );
    }
    let padded = format!("{digits:0<12}");
    let value = u64::from_str_radix(&padded, 16).map_err(|_| "not a MAC pattern".to_string())?;
    let full = 0xFFFF_FFFF_FFFFu64;
    let mask = full & !((1u64 << wildcard_bits) - 1);
    Ok((value, mask))
}

fn uuid_value(text: &str) -> ValueResult<u128> {
    text.parse::<Uuid>()
        .map(Uuid::as_u128)
        .map_err(|e| e.to_string())
}

/// A `[uuid]` key: a UUID, optionally `/MASK` where the mask is itself written as a UUID (pybootd).
pub fn uuid_pattern(text: &str) -> ValueResult<(u128, u128)> {
    match text.split_once('/') {
        Some((value, mask)) => Ok((uuid_value(value)?, uuid_value(mask)?)),
        None => Ok((uuid_value(text)?, u128::MAX)),
    }
}

/// `dns`: `auto`, or addresses separated by `;` (pybootd) or `,`, spaces allowed.
pub fn dns(text: &str) -> ValueResult<DnsSetting> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("auto") {
        return Ok(DnsSetting::Auto);
    }
    let mut list = Vec::new();
    for item in text
        .split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        list.push(item.parse().map_err(|_| {
            format!("`{item}` is not an IPv4 address; use `auto` or addresses separated by `;`")
        })?);
    }
    Ok(if list.is_empty() {
        DnsSetting::None
    } else {
        DnsSetting::List(list)
    })
}

/// `[bootd] user`: a user name as `useradd` accepts it (letters, digits, `_`,
/// `.`, `-`, not starting with `-`, at most 32 bytes). Whether it exists is the
/// host's business, checked at start and by `--check`.
pub fn user_name(text: &str) -> ValueResult<String> {
    let name = text.trim();
    let fits = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if fits {
        Ok(name.to_string())
    } else {
        Err(
            "not a user name (letters, digits, `_`, `.` and `-`, at most 32); root keeps root"
                .into(),
        )
    }
}

/// `notify`: `host:port[;host:port…]`. Host names are resolved once, at start-up.
pub fn notify_targets(text: &str) -> ValueResult<Vec<SocketAddr>> {
    let mut targets = Vec::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((host, port_text)) = item.rsplit_once(':') else {
            return Err(format!(
                "`{item}` has no port; write host:port, such as 127.0.0.1:12345"
            ));
        };
        let port = port(port_text).map_err(|e| format!("`{item}`: {e}"))?;
        let host = host.trim();
        if host.is_empty() {
            return Err(format!(
                "`{item}` has no host; write host:port, such as 127.0.0.1:12345"
            ));
        }
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("`{item}`: cannot resolve `{host}`: {e}"))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| format!("`{item}`: `{host}` has no IPv4 address"))?;
        targets.push(addr);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert_eq!(user_name(" bootd "), Ok("bootd".to_string()));
        assert_eq!(user_name("svc_boot-1.x"), Ok("svc_boot-1.x".to_string()));
        for bad in ["", "-x", "a b", "a:b", "ä", &"u".repeat(33)] {
            assert!(user_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_boolean_word_in_any_case() {
        for w in TRUE_WORDS {
            assert_eq!(boolean(w), Ok(true), "{w}");
            assert_eq!(boolean(&w.to_uppercase()), Ok(true), "{w}");
        }
        for w in FALSE_WORDS {
            assert_eq!(boolean(w), Ok(false), "{w}");
            assert_eq!(boolean(&w.to_uppercase()), Ok(false), "{w}");
        }
        assert_eq!(boolean(" Enabled "), Ok(true));
        for bad in ["y", "t", "", "nope", "2", "truee"] {
            let e = boolean(bad).unwrap_err();
            assert!(e.contains("enable") && e.contains("disabled"), "{e}");
        }
    }

    #[test]
    fn ipv4_is_strict_dotted_quad() {
        assert_eq!(ipv4("10.0.0.1"), Ok(Ipv4Addr::new(10, 0, 0, 1)));
        for bad in ["10.0.0.300", "10.1", "host", "", "10.0.0.1/24"] {
            assert!(
                ipv4(bad).unwrap_err().contains("not an IPv4 address"),
                "{bad}"
            );
        }
    }

    #[test]
    fn ports_and_integers() {
        assert_eq!(port("69"), Ok(69));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("x").is_err());
        assert_eq!(integer("10", 0, 20), Ok(10));
        assert_eq!(
            integer("21", 0, 20).unwrap_err(),
            "not a whole number from 0 to 20"
        );
        assert!(integer("-1", 0, 20).is_err());
    }

    #[test]
    fn seconds_take_fractions() {
        assert_eq!(seconds("2.5", 0.1, 60.0), Ok(Duration::from_millis(2500)));
        assert!(seconds("0", 0.1, 60.0).is_err());
        assert!(seconds("NaN", 0.1, 60.0).is_err());
        assert!(seconds("inf", 0.1, 60.0).is_err());
    }

    #[test]
    fn mac_forms() {
        let want = MacAddr([0xaa, 0xbb, 0xcc, 0x01, 0x02, 0x03]);
        assert_eq!(mac("AA-BB-CC-01-02-03"), Ok(want));
        assert_eq!(mac("aa:bb:cc:01:02:03"), Ok(want));
        assert_eq!(mac("aabbcc010203"), Ok(want));
        assert!(mac("AA-BB-CC-01-02").is_err());
        assert!(mac("GG-BB-CC-01-02-03").is_err());
        assert_eq!(want.to_string(), "AA-BB-CC-01-02-03");
    }

    #[test]
    fn mac_patterns_follow_pybootd() {
        assert_eq!(
            mac_pattern("AA-BB-CC/24"),
            Ok((0xAABBCC000000, 0xFFFFFF000000))
        );
        assert_eq!(
            mac_pattern("aa-bb-cc-dd-ee-ff"),
            Ok((0xAABBCCDDEEFF, 0xFFFFFFFFFFFF))
        );
        // pybootd: `/8` frees the 8 lowest bits.
        assert_eq!(
            mac_pattern("AA-BB-CC-DD/8"),
            Ok((0xAABBCCDD0000, 0xFFFFFFFFFF00))
        );
        assert!(mac_pattern("zz-11/4").is_err());
        assert!(mac_pattern("AA/49").is_err());
        assert!(mac_pattern("AA-BB-CC-DD-EE-FF-00").is_err());
        assert!(mac_pattern("").is_err());
    }

    #[test]
    fn uuid_patterns() {
        let (v, m) = uuid_pattern("12345678-abcd-ef00-1111-abcdefabcdef").unwrap();
        assert_eq!(v, 0x12345678abcdef001111abcdefabcdef);
        assert_eq!(m, u128::MAX);
        let (_, m) = uuid_pattern(
            "12345678-abcd-ef00-1111-abcdefabcdef/ffffffff-0000-0000-0000-000000000000",
        )
        .unwrap();
        assert_eq!(m, 0xffffffff << 96);
        assert!(uuid_pattern("1234").is_err());
    }

    #[test]
    fn dns_lists() {
        assert_eq!(
            dns("8.8.8.8;1.1.1.1"),
            Ok(DnsSetting::List(vec![
                Ipv4Addr::new(8, 8, 8, 8),
                Ipv4Addr::new(1, 1, 1, 1)
            ]))
        );
        // A space after `;` broke every pybootd reply; here it is just a space.
        assert_eq!(dns("8.8.8.8; 1.1.1.1"), dns("8.8.8.8,1.1.1.1"));
        assert_eq!(dns("AUTO"), Ok(DnsSetting::Auto));
        assert_eq!(dns(""), Ok(DnsSetting::None));
        assert!(dns("8.8.8.8;x").unwrap_err().contains("`x`"));
    }

    #[test]
    fn notify_lists() {
        let t = notify_targets("127.0.0.1:12345; 127.0.0.2:99").unwrap();
        assert_eq!(
            t,
            vec![
                "127.0.0.1:12345".parse().unwrap(),
                "127.0.0.2:99".parse().unwrap()
            ]
        );
        assert!(notify_targets("127.0.0.1").unwrap_err().contains("no port"));
        assert!(notify_targets(":80").unwrap_err().contains("no host"));
        assert!(notify_targets("127.0.0.1:0").is_err());
    }
}
