//! PXE specifics of a DHCP exchange: who is a PXE client (or a UEFI HTTP boot
//! client, or iPXE), which architecture it runs, which boot file it gets (a URL
//! on bootd's HTTP service for iPXE and HTTP boot clients), and the PXE options
//! of the reply (43, 60, 97).
//!
//! Facts from RFC 4578 (with erratum 4624: 7 is x64 UEFI, 9 is EBC), the IANA
//! "Processor Architecture Types" registry, and PXE 2.1.

use std::net::Ipv4Addr;

use crate::config::{BootFiles, is_ipxe_loader};
use crate::types::Uuid;

use super::wire::{Options, tag};

/// Option 60 prefix of PXE ROMs, also the value servers send back.
pub const PXE_CLIENT_CLASS: &[u8] = b"PXEClient";
/// Option 60 prefix of UEFI HTTP boot clients, also the value their offer must
/// carry (EDK2 compares these 10 bytes).
pub const HTTP_CLIENT_CLASS: &[u8] = b"HTTPClient";

/// PXE 2.1 option 43 sub-option: discovery control.
pub const SUBOPT_DISCOVERY_CONTROL: u8 = 6;
/// PXE 2.1 option 43 sub-option: the boot item a boot server request asks for
/// (type, 2 bytes, then layer, 2 bytes).
pub const SUBOPT_BOOT_ITEM: u8 = 71;
/// PXE 2.1 option 43 sub-option: end of the encapsulated options.
pub const SUBOPT_END: u8 = 255;
/// Discovery control bit 3: boot the file named in the reply, skip boot server
/// discovery (PXE 2.1 §2.4.5).
pub const DISCOVERY_BOOT_FILE_ONLY: u8 = 0x08;

/// True for a PXE client: option 97 present (any length) or option 60 starting
/// with `PXEClient`. pybootd required option 97 of exactly 17 bytes, but some ROMs
/// omit 97 altogether, so either sign is enough.
pub fn is_pxe_client(options: &Options) -> bool {
    options.client_machine_id().is_some()
        || options
            .vendor_class()
            .is_some_and(|class| class.starts_with(PXE_CLIENT_CLASS))
}

/// True for a UEFI HTTP boot client: option 60 starting with `HTTPClient`.
pub fn is_http_client(options: &Options) -> bool {
    options
        .vendor_class()
        .is_some_and(|class| class.starts_with(HTTP_CLIENT_CLASS))
}

/// True when the client already runs iPXE: user class (77) `iPXE`, or iPXE's own
/// option 175. Handing such a client the iPXE loader again makes it loop.
pub fn is_ipxe(options: &Options) -> bool {
    options.contains(tag::IPXE_ENCAPSULATED)
        || options.user_classes().iter().any(|class| *class == b"iPXE")
}

/// The client architecture: the first entry of option 93, else the `Arch:NNNNN`
/// field (decimal) of a `PXEClient:` or `HTTPClient:` option 60.
pub fn client_architecture(options: &Options) -> Option<u16> {
    if let Some(arch) = options.client_architectures().first() {
        return Some(*arch);
    }
    arch_from_vendor_class(options.vendor_class()?)
}

/// `PXEClient:Arch:00007:UNDI:003016` → 7. Case-insensitive on the words, as
/// pybootd was; anything malformed → `None`.
pub fn arch_from_vendor_class(class: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(class).ok()?;
    let mut fields = text.split(':');
    let kind = fields.next()?;
    if !kind.eq_ignore_ascii_case("PXEClient") && !kind.eq_ignore_ascii_case("HTTPClient") {
        return None;
    }
    if !fields.next()?.eq_ignore_ascii_case("Arch") {
        return None;
    }
    let digits = fields.next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A short name for an architecture code, for log lines.
pub fn arch_name(arch: u16) -> &'static str {
    match arch {
        0 => "x86 BIOS",
        1 => "NEC/PC98",
        2 => "Itanium",
        3 => "DEC Alpha",
        4 => "Arc x86",
        5 => "Intel Lean Client",
        6 => "x86 UEFI",
        // RFC 4578 swapped 7 and 9; erratum 4624 and IANA have them this way.
        7 => "x64 UEFI",
        8 => "Xscale UEFI",
        9 => "EBC",
        0x0a => "ARM32 UEFI",
        0x0b => "ARM64 UEFI",
        0x0c => "PowerPC Open Firmware",
        0x0d => "PowerPC ePAPR",
        0x0e => "POWER OPAL v3",
        0x0f => "x86 UEFI HTTP",
        0x10 => "x64 UEFI HTTP",
        0x11 => "EBC HTTP",
        0x12 => "ARM32 UEFI HTTP",
        0x13 => "ARM64 UEFI HTTP",
        0x14 => "x86 BIOS HTTP",
        0x15 => "ARM32 uboot",
        0x16 => "ARM64 uboot",
        0x17 => "ARM uboot HTTP",
        0x18 => "RISC-V 32 UEFI",
        0x19 => "RISC-V 32 UEFI HTTP",
        0x1a => "RISC-V 64 UEFI",
        0x1b => "RISC-V 64 UEFI HTTP",
        0x1c => "RISC-V 128 UEFI",
        0x1d => "RISC-V 128 UEFI HTTP",
        0x1e => "s390 Basic",
        0x1f => "s390 Extended",
        0x20 => "MIPS32 UEFI",
        0x21 => "MIPS64 UEFI",
        0x22 => "Sunway 32 UEFI",
        0x23 => "Sunway 64 UEFI",
        0x24 => "LoongArch32 UEFI",
        0x25 => "LoongArch32 UEFI HTTP",
        0x26 => "LoongArch64 UEFI",
        0x27 => "LoongArch64 UEFI HTTP",
        0x29 => "ARM rpiboot",
        _ => "unknown architecture",
    }
}

/// Whether `arch` is a UEFI HTTP boot architecture (IANA's "… HTTP" entries):
/// clients of these load their boot file from a URL.
pub fn is_http_arch(arch: u16) -> bool {
    matches!(arch, 0x0f..=0x14 | 0x17 | 0x19 | 0x1b | 0x1d | 0x25 | 0x27)
}

/// Which boot file a client gets, and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootFileChoice {
    /// The `[bootfile]` entry for the client's architecture.
    ForArch { arch: u16, file: String },
    /// The `default` entry because the client's architecture has none: worth a
    /// warning, since a UEFI machine handed a BIOS loader will not boot.
    DefaultForUnlistedArch { arch: u16, file: String },
    /// The `default` entry for a client that announced no architecture.
    Default { file: String },
    /// The client runs iPXE and `[bootfile] ipxe` names what it gets instead.
    ForIpxe { file: String },
    /// The client runs iPXE, `[bootfile] ipxe` is not set, and the file it would
    /// get otherwise is an iPXE loader: iPXE would load itself again, forever,
    /// so it gets no file at all (and a warning says what to set).
    IpxeLoaderRefused { file: String },
    /// No entry applies and there is no `default`.
    None { arch: Option<u16> },
}

impl BootFileChoice {
    /// The file the client is sent (none for a refused iPXE loader).
    pub fn file(&self) -> Option<&str> {
        match self {
            BootFileChoice::ForArch { file, .. }
            | BootFileChoice::DefaultForUnlistedArch { file, .. }
            | BootFileChoice::Default { file }
            | BootFileChoice::ForIpxe { file } => Some(file),
            BootFileChoice::IpxeLoaderRefused { .. } | BootFileChoice::None { .. } => None,
        }
    }
}

/// Picks the boot file: iPXE clients first (when configured), then the entry for
/// the architecture, then `default` (pybootd 1.8 dropped clients of unlisted
/// architectures instead). An iPXE client is never handed an iPXE loader.
pub fn choose_boot_file(boot_files: &BootFiles, arch: Option<u16>, ipxe: bool) -> BootFileChoice {
    if ipxe && let Some(file) = &boot_files.ipxe {
        return BootFileChoice::ForIpxe { file: file.clone() };
    }
    let choice = choose_by_arch(boot_files, arch);
    match choice.file() {
        Some(file) if ipxe && is_ipxe_loader(file) => BootFileChoice::IpxeLoaderRefused {
            file: file.to_owned(),
        },
        _ => choice,
    }
}

fn choose_by_arch(boot_files: &BootFiles, arch: Option<u16>) -> BootFileChoice {
    if let Some(arch) = arch
        && let Some(file) = boot_files.for_arch(arch)
    {
        return BootFileChoice::ForArch {
            arch,
            file: file.to_owned(),
        };
    }
    match (&boot_files.default, arch) {
        // Worth a warning only when per-architecture entries exist: with `default`
        // alone, every client is meant to get it.
        (Some(file), Some(arch)) if !boot_files.by_arch.is_empty() => {
            BootFileChoice::DefaultForUnlistedArch {
                arch,
                file: file.clone(),
            }
        }
        (Some(file), _) => BootFileChoice::Default { file: file.clone() },
        (None, arch) => BootFileChoice::None { arch },
    }
}

/// Whether a `[bootfile]` value already is a URL (`http://…`, `tftp://…`): it
/// goes to the client as it is written.
pub fn is_url(file: &str) -> bool {
    file.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    })
}

/// Where bootd's HTTP file service answers, when it runs (`-H`): iPXE's
/// `[bootfile] ipxe` and the files of UEFI HTTP boot clients are sent as URLs
/// on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpServer {
    /// `[httpd] address`; `None`: the address the client's network is served from.
    pub address: Option<Ipv4Addr>,
    /// `[httpd] port`.
    pub port: u16,
}

impl HttpServer {
    /// The URL of `file` as served by the HTTP service to clients of the network
    /// served from `server_ip`: `http://ADDRESS[:PORT]/PATH`, the port left out
    /// when it is 80. A file already given as a URL is kept as it is.
    pub fn url(&self, file: &str, server_ip: Ipv4Addr) -> String {
        if is_url(file) {
            return file.to_string();
        }
        // An address, never a host name: EDK2 takes a URL naming a host only
        // when the offer also carries DNS servers, and iPXE needs DNS for it.
        let host = self
            .address
            .filter(|a| !a.is_unspecified())
            .unwrap_or(server_ip);
        let port = match self.port {
            80 => String::new(),
            port => format!(":{port}"),
        };
        let path = percent_encode(file.trim_start_matches('/'));
        format!("http://{host}{port}/{path}")
    }
}

/// `text` fit for a URL path: bytes outside RFC 3986's unreserved and path
/// characters are written `%XX` (the HTTP service decodes them once).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Option 43 for a PXE client: discovery control = 0x08, then the encapsulated END.
///
/// Why 0x08 and nothing else: bit 3 tells the ROM to boot the file named in this
/// reply and skip boot-server discovery, which is exactly what a reply naming
/// the file and its TFTP server needs (proxy mode sends no option 43 to the
/// firmware it wants on port 4011 instead, see [`super::proxy`]). pybootd sent 0x0A (bit 1, "no multicast
/// discovery", is moot once discovery is skipped) plus sub-options 8/9/10, a
/// one-entry boot server list and a menu with a prompt: a menu invites the ROM
/// to show a prompt and then discover, a step it does not need, and
/// EDK2's PXE code boots the offered file directly when no menu is present. Fewer
/// sub-options also leave more room under small option-57 limits.
pub fn vendor_options_boot_file_only() -> Vec<u8> {
    vec![
        SUBOPT_DISCOVERY_CONTROL,
        1,
        DISCOVERY_BOOT_FILE_ONLY,
        SUBOPT_END,
    ]
}

/// The boot item (sub-option 71 of option 43: type then layer, 4 bytes) of a
/// request to a PXE boot server, as sent; `None` when there is none or option 43
/// is malformed.
pub fn boot_item(options: &Options) -> Option<[u8; 4]> {
    let mut rest = options.get(tag::VENDOR_SPECIFIC)?;
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            0 => rest = tail,
            SUBOPT_END => return None,
            _ => {
                let (&len, tail) = tail.split_first()?;
                let value = tail.get(..usize::from(len))?;
                if code == SUBOPT_BOOT_ITEM {
                    return value.try_into().ok();
                }
                rest = tail.get(usize::from(len)..)?;
            }
        }
    }
    None
}

/// Option 43 of an answer to a boot server request: its boot item, echoed (iPXE
/// drops an answer whose item type differs from the one it asked for).
pub fn vendor_options_boot_item(item: [u8; 4]) -> Vec<u8> {
    let mut options = vec![SUBOPT_BOOT_ITEM, 4];
    options.extend_from_slice(&item);
    options.push(SUBOPT_END);
    options
}

/// Option 97: type 0 followed by a 16-byte GUID, its bytes in wire order (the way
/// pybootd and the access lists print them).
pub fn client_uuid(options: &Options) -> Option<Uuid> {
    match options.client_machine_id()? {
        [0, guid @ ..] => Some(Uuid::from_bytes(guid.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(u8, &[u8])]) -> Options {
        let mut o = Options::new();
        for (t, v) in pairs {
            o.set(*t, v.to_vec());
        }
        o
    }

    #[test]
    fn pxe_detection_needs_97_or_pxeclient_class() {
        assert!(is_pxe_client(&options(&[(
            60,
            b"PXEClient:Arch:00000:UNDI:002001"
        )])));
        assert!(is_pxe_client(&options(&[(60, b"PXEClient")])));
        // 97 of any length counts: only its presence is a sign.
        assert!(is_pxe_client(&options(&[(97, &[0; 17])])));
        assert!(is_pxe_client(&options(&[(97, &[0; 16])])));
        assert!(!is_pxe_client(&options(&[(60, b"MSFT 5.0")])));
        assert!(!is_pxe_client(&options(&[(60, b"pxeclient")])));
        assert!(!is_pxe_client(&Options::new()));
    }

    #[test]
    fn boot_item_is_read_past_other_sub_options_and_never_past_the_end() {
        let item = options(&[(43, &[6, 1, 8, 0, 71, 4, 0x80, 0x00, 0, 1, 255])]);
        assert_eq!(boot_item(&item), Some([0x80, 0, 0, 1]));
        assert_eq!(boot_item(&options(&[(43, &[6, 1, 8, 255])])), None);
        // Cut short, the wrong length, or after END: no item.
        assert_eq!(boot_item(&options(&[(43, &[71, 4, 0x80])])), None);
        assert_eq!(boot_item(&options(&[(43, &[71, 2, 0x80, 0])])), None);
        assert_eq!(
            boot_item(&options(&[(43, &[255, 71, 4, 1, 2, 3, 4])])),
            None
        );
        assert_eq!(boot_item(&options(&[(43, &[6])])), None);
        assert_eq!(boot_item(&Options::new()), None);
        assert_eq!(
            vendor_options_boot_item([0x80, 0, 0, 1]),
            vec![71, 4, 0x80, 0, 0, 1, 255]
        );
    }

    #[test]
    fn ipxe_detection() {
        assert!(is_ipxe(&options(&[(77, b"iPXE")])));
        assert!(is_ipxe(&options(&[(77, &[4, b'i', b'P', b'X', b'E'])])));
        assert!(is_ipxe(&options(&[(175, &[1, 1, 1])])));
        assert!(!is_ipxe(&options(&[(77, b"gPXE")])));
        assert!(!is_ipxe(&Options::new()));
    }

    #[test]
    fn arch_from_option_93_first_then_60() {
        let both = options(&[(93, &[0, 7]), (60, b"PXEClient:Arch:00000:UNDI:002001")]);
        assert_eq!(client_architecture(&both), Some(7));
        let only_60 = options(&[(60, b"PXEClient:Arch:00009:UNDI:003016")]);
        assert_eq!(client_architecture(&only_60), Some(9));
        let http = options(&[(60, b"HTTPClient:Arch:00016:UNDI:003001")]);
        assert_eq!(client_architecture(&http), Some(16));
        // An odd-length 93 has no complete entry: fall back to 60.
        let odd = options(&[(93, &[0]), (60, b"PXEClient:Arch:00006")]);
        assert_eq!(client_architecture(&odd), Some(6));
        assert_eq!(client_architecture(&options(&[(60, b"MSFT 5.0")])), None);
    }

    #[test]
    fn malformed_arch_fields() {
        assert_eq!(arch_from_vendor_class(b"pxeclient:arch:00007"), Some(7));
        assert_eq!(arch_from_vendor_class(b"PXEClient:Arch:"), None);
        assert_eq!(arch_from_vendor_class(b"PXEClient:Arch:+7"), None);
        assert_eq!(arch_from_vendor_class(b"PXEClient:Arch:99999"), None);
        assert_eq!(arch_from_vendor_class(b"PXEClient:Foo:00007"), None);
        assert_eq!(arch_from_vendor_class(b"PXEClient"), None);
        assert_eq!(arch_from_vendor_class(&[0xff, 0xfe]), None);
    }

    #[test]
    fn arch_names_follow_the_erratum() {
        assert_eq!(arch_name(7), "x64 UEFI");
        assert_eq!(arch_name(9), "EBC");
        assert_eq!(arch_name(0x0b), "ARM64 UEFI");
        assert_eq!(arch_name(0x10), "x64 UEFI HTTP");
        assert_eq!(arch_name(0xffff), "unknown architecture");
    }

    fn boot_files() -> BootFiles {
        BootFiles {
            default: Some("pxelinux.0".into()),
            by_arch: vec![(7, "shimx64.efi".into()), (0, "pxelinux.0".into())],
            ipxe: None,
        }
    }

    #[test]
    fn boot_file_choice() {
        let files = boot_files();
        assert_eq!(
            choose_boot_file(&files, Some(7), false),
            BootFileChoice::ForArch {
                arch: 7,
                file: "shimx64.efi".into()
            }
        );
        assert_eq!(
            choose_boot_file(&files, Some(11), false),
            BootFileChoice::DefaultForUnlistedArch {
                arch: 11,
                file: "pxelinux.0".into()
            }
        );
        assert_eq!(
            choose_boot_file(&files, None, false),
            BootFileChoice::Default {
                file: "pxelinux.0".into()
            }
        );
        let only_default = BootFiles {
            default: Some("pxelinux.0".into()),
            ..BootFiles::default()
        };
        assert_eq!(
            choose_boot_file(&only_default, Some(7), false),
            BootFileChoice::Default {
                file: "pxelinux.0".into()
            },
            "no per-architecture entries: default is the plan, not a fallback"
        );
        let no_default = BootFiles {
            default: None,
            ..files.clone()
        };
        assert_eq!(
            choose_boot_file(&no_default, Some(11), false),
            BootFileChoice::None { arch: Some(11) }
        );
        let with_ipxe = BootFiles {
            ipxe: Some("boot.ipxe".into()),
            ..files
        };
        assert_eq!(
            choose_boot_file(&with_ipxe, Some(7), true).file(),
            Some("boot.ipxe")
        );
        assert_eq!(
            choose_boot_file(&with_ipxe, Some(7), false).file(),
            Some("shimx64.efi")
        );
    }

    #[test]
    fn ipxe_is_never_handed_an_ipxe_loader_again() {
        let loaders = BootFiles {
            default: Some("undionly.kpxe".into()),
            by_arch: vec![(0, "undionly.kpxe".into()), (7, "ipxe.efi".into())],
            ipxe: None,
        };
        // The firmware's PXE gets the loader…
        assert_eq!(
            choose_boot_file(&loaders, Some(7), false).file(),
            Some("ipxe.efi")
        );
        // …and the iPXE it starts gets nothing rather than itself again.
        for arch in [Some(0), Some(7), Some(11), None] {
            let choice = choose_boot_file(&loaders, arch, true);
            assert!(
                matches!(choice, BootFileChoice::IpxeLoaderRefused { .. }),
                "{arch:?}: {choice:?}"
            );
            assert_eq!(choice.file(), None);
        }
        // Files that are no iPXE loader still go to iPXE clients.
        assert_eq!(
            choose_boot_file(&boot_files(), Some(0), true).file(),
            Some("pxelinux.0")
        );
    }

    #[test]
    fn ipxe_loaders_are_told_from_scripts_and_other_loaders() {
        for loader in [
            "undionly.kpxe",
            "ipxe/ipxe.efi",
            "snponly.efi",
            "ipxe.pxe",
            "undionly.kkpxe",
            "ipxe.lkrn",
            "http://10.0.0.1/IPXE.EFI",
        ] {
            assert!(is_ipxe_loader(loader), "{loader}");
        }
        for other in [
            "pxelinux.0",
            "lpxelinux.0",
            "grubx64.efi",
            "shimx64.efi",
            "boot.ipxe",
            "ipxe/boot.ipxe",
            "",
        ] {
            assert!(!is_ipxe_loader(other), "{other}");
        }
    }

    #[test]
    fn urls_are_told_from_paths() {
        for url in [
            "http://10.0.0.1/boot.ipxe",
            "HTTPS://x/y",
            "tftp://10.0.0.1/a",
        ] {
            assert!(is_url(url), "{url}");
        }
        for path in ["boot.ipxe", "/srv/boot.ipxe", "a/b://c", "://x", "dir:x"] {
            assert!(!is_url(path), "{path}");
        }
    }

    #[test]
    fn http_urls_name_the_served_address_and_the_port_unless_80() {
        let server = Ipv4Addr::new(10, 0, 0, 1);
        let default = HttpServer {
            address: None,
            port: 80,
        };
        assert_eq!(
            default.url("boot.ipxe", server),
            "http://10.0.0.1/boot.ipxe"
        );
        assert_eq!(
            default.url("/efi/boot x64.efi", server),
            "http://10.0.0.1/efi/boot%20x64.efi",
            "one leading slash at most; a space escaped"
        );
        assert_eq!(
            default.url("http://mirror.example/ipxe/boot.ipxe", server),
            "http://mirror.example/ipxe/boot.ipxe",
            "a URL goes as it is"
        );
        let elsewhere = HttpServer {
            address: Some(Ipv4Addr::new(10, 0, 0, 2)),
            port: 8080,
        };
        assert_eq!(
            elsewhere.url("boot.ipxe", server),
            "http://10.0.0.2:8080/boot.ipxe"
        );
        let everywhere = HttpServer {
            address: Some(Ipv4Addr::UNSPECIFIED),
            port: 8080,
        };
        assert_eq!(
            everywhere.url("boot.ipxe", server),
            "http://10.0.0.1:8080/boot.ipxe",
            "listening on every address: the client's network's"
        );
    }

    #[test]
    fn http_architectures_are_the_registrys_http_entries() {
        for arch in 0..=0x29u16 {
            assert_eq!(
                is_http_arch(arch),
                arch_name(arch).ends_with("HTTP"),
                "{arch:#x} {}",
                arch_name(arch)
            );
        }
    }

    #[test]
    fn http_boot_detection() {
        assert!(is_http_client(&options(&[(
            60,
            b"HTTPClient:Arch:00016:UNDI:003000"
        )])));
        assert!(is_http_client(&options(&[(60, b"HTTPClient")])));
        assert!(!is_http_client(&options(&[(60, b"PXEClient:Arch:00007")])));
        assert!(!is_http_client(&options(&[(60, b"httpclient")])));
        assert!(!is_http_client(&options(&[(97, &[0; 17])])));
    }

    #[test]
    fn option_43_is_discovery_control_8_then_end() {
        assert_eq!(vendor_options_boot_file_only(), vec![6, 1, 8, 255]);
    }

    #[test]
    fn uuid_from_option_97() {
        let mut v = vec![0u8];
        v.extend(1..=16u8);
        let o = options(&[(97, &v)]);
        let uuid = client_uuid(&o).unwrap();
        assert_eq!(uuid, Uuid(0x0102030405060708090a0b0c0d0e0f10));
        assert_eq!(uuid.to_string(), "01020304-0506-0708-090a-0b0c0d0e0f10");
        // Wrong type byte or length: no UUID (but still a PXE sign).
        v[0] = 1;
        assert_eq!(client_uuid(&options(&[(97, &v)])), None);
        assert_eq!(client_uuid(&options(&[(97, &[0; 16])])), None);
    }
}
