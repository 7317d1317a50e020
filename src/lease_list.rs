//! `bootd leases`: the bindings of the lease file, one line per machine (its last
//! record), as a table for people or JSON for scripts. The file is read with the
//! BOOTP service's own parser, without taking its lock and without writing: a
//! running bootd goes on undisturbed, and a line it is writing at that instant is
//! left out, as the service itself would leave it out.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::bootp::lease_file::{self, Target};
use crate::bootp::leases::{self, LeaseRecord, RecordState};

/// What `bootd leases` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The file read (a symbolic link's target); `None` for /dev/null.
    pub file: Option<PathBuf>,
    /// Each MAC's last record, by address.
    pub bindings: Vec<LeaseRecord>,
    /// Lines that give no record (their line numbers and why), for stderr.
    pub unreadable: Vec<String>,
}

/// Reads `lease_file` (as `[bootp] lease_file` names it).
pub fn read(lease_file: &Path) -> Result<Listing, String> {
    let path = match lease_file::resolve(lease_file).map_err(|e| e.to_string())? {
        Target::Discard => {
            return Ok(Listing {
                file: None,
                bindings: Vec::new(),
                unreadable: Vec::new(),
            });
        }
        Target::File(path) => path,
    };
    let mut bytes = Vec::new();
    let opened = OpenOptions::new()
        .read(true)
        // Never through a link put there since it was resolved, never blocked by a FIFO.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path);
    match opened {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        }
        // No binding was ever written.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    }
    let content = leases::parse_lease_file(&bytes);
    let unreadable = content
        .rejected
        .iter()
        .map(|line| format!("{}:{}: {}", path.display(), line.number, line.error))
        .collect();
    Ok(Listing {
        file: Some(path),
        bindings: latest(&content.records),
        unreadable,
    })
}

/// Each MAC's last record (later lines win), ordered by address, then MAC.
pub fn latest(records: &[LeaseRecord]) -> Vec<LeaseRecord> {
    let mut last: HashMap<_, &LeaseRecord> = HashMap::new();
    for record in records {
        last.insert(record.mac, record);
    }
    let mut bindings: Vec<LeaseRecord> = last.into_values().cloned().collect();
    bindings.sort_by_key(|r| (r.ip, r.mac.as_u64()));
    bindings
}

fn state(record: &LeaseRecord) -> &'static str {
    match record.state {
        RecordState::Bound => "bound",
        RecordState::Released => "released",
        RecordState::Declined => "declined",
    }
}

/// Unix seconds as `2024-06-10T12:00:00Z`.
fn utc(epoch: u64) -> String {
    let time = i64::try_from(epoch)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok());
    match time {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => format!("@{epoch}"),
    }
}

/// The table: a header, then one aligned line per machine.
pub fn table(bindings: &[LeaseRecord]) -> String {
    let rows: Vec<[String; 6]> = bindings
        .iter()
        .map(|r| {
            [
                r.mac.to_string(),
                r.ip.to_string(),
                state(r).to_string(),
                utc(r.epoch),
                if r.pxe { "yes" } else { "no" }.to_string(),
                r.uuid.map_or_else(|| "-".to_string(), |u| u.to_string()),
            ]
        })
        .collect();
    let header = ["MAC", "ADDRESS", "STATE", "LAST CHANGE", "PXE", "UUID"].map(str::to_string);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// JSON: `{"lease_file": …, "bindings": [{"mac", "address", "state",
/// "last_change" (Unix seconds), "last_change_utc", "pxe", "uuid"}, …]}`.
pub fn json(listing: &Listing) -> String {
    let mut out = String::from("{\"lease_file\": ");
    match &listing.file {
        Some(path) => out.push_str(&json_string(&path.display().to_string())),
        None => out.push_str("null"),
    }
    out.push_str(", \"bindings\": [");
    for (i, r) in listing.bindings.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let uuid = r
            .uuid
            .map_or_else(|| "null".to_string(), |u| json_string(&u.to_string()));
        let _ = write!(
            out,
            "{{\"mac\": {}, \"address\": {}, \"state\": {}, \"last_change\": {}, \"last_change_utc\": {}, \"pxe\": {}, \"uuid\": {uuid}}}",
            json_string(&r.mac.to_string()),
            json_string(&r.ip.to_string()),
            json_string(state(r)),
            r.epoch,
            json_string(&utc(r.epoch)),
            r.pxe,
        );
    }
    out.push_str("]}\n");
    out
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<LeaseRecord> {
        leases::parse_lease_file(text.as_bytes()).records
    }

    const FILE: &str = "# bootd leases\n\
        52-54-00-12-34-57 10.0.0.101 1718000000 bound\n\
        52-54-00-12-34-56 10.0.0.100 1718000000 bound pxe uuid=01020304-0506-0708-090a-0b0c0d0e0f10\n\
        52-54-00-12-34-57 10.0.0.101 1718000042 released\n";

    #[test]
    fn each_machine_is_listed_once_with_its_last_record_by_address() {
        let bindings = latest(&parse(FILE));
        assert_eq!(bindings.len(), 2);
        assert_eq!(bindings[0].ip.to_string(), "10.0.0.100");
        assert_eq!(bindings[1].state, RecordState::Released);
        assert_eq!(bindings[1].epoch, 1718000042);
    }

    #[test]
    fn the_table_is_aligned_under_its_header() {
        let text = table(&latest(&parse(FILE)));
        assert_eq!(
            text,
            "MAC                ADDRESS     STATE     LAST CHANGE           PXE  UUID\n\
             52-54-00-12-34-56  10.0.0.100  bound     2024-06-10T06:13:20Z  yes  01020304-0506-0708-090a-0b0c0d0e0f10\n\
             52-54-00-12-34-57  10.0.0.101  released  2024-06-10T06:14:02Z  no   -\n"
        );
        assert_eq!(table(&[]), "MAC  ADDRESS  STATE  LAST CHANGE  PXE  UUID\n");
    }

    #[test]
    fn json_names_every_field() {
        let listing = Listing {
            file: Some(PathBuf::from("/var/lib/bootd/leases")),
            bindings: latest(&parse(FILE)),
            unreadable: Vec::new(),
        };
        assert_eq!(
            json(&listing),
            "{\"lease_file\": \"/var/lib/bootd/leases\", \"bindings\": [\
             {\"mac\": \"52-54-00-12-34-56\", \"address\": \"10.0.0.100\", \"state\": \"bound\", \"last_change\": 1718000000, \"last_change_utc\": \"2024-06-10T06:13:20Z\", \"pxe\": true, \"uuid\": \"01020304-0506-0708-090a-0b0c0d0e0f10\"}, \
             {\"mac\": \"52-54-00-12-34-57\", \"address\": \"10.0.0.101\", \"state\": \"released\", \"last_change\": 1718000042, \"last_change_utc\": \"2024-06-10T06:14:02Z\", \"pxe\": false, \"uuid\": null}]}\n"
        );
        assert_eq!(json_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
        let none = Listing {
            file: None,
            bindings: Vec::new(),
            unreadable: Vec::new(),
        };
        assert_eq!(json(&none), "{\"lease_file\": null, \"bindings\": []}\n");
    }

    #[test]
    fn a_missing_file_holds_no_binding_and_a_bad_line_is_named() {
        let dir = std::env::temp_dir().join(format!("bootd-lease-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases");
        let _ = std::fs::remove_file(&path);
        let listing = read(&path).unwrap();
        assert!(listing.bindings.is_empty());
        std::fs::write(&path, format!("{FILE}garbage\n52-54-00-12-34-58 10.0.0.10")).unwrap();
        let listing = read(&path).unwrap();
        assert_eq!(listing.bindings.len(), 2);
        assert_eq!(listing.unreadable.len(), 1, "{:?}", listing.unreadable);
        assert!(listing.unreadable[0].ends_with(
            ":5: expected `MAC ADDRESS TIME STATE`, found 1 field(s) (truncated line?)"
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
