//! Which proxy a URL goes through: `http_proxy` for `http://` URLs, `https_proxy`
//! for `https://` ones (lower case first, as curl and pybootd's urllib read them),
//! unless `no_proxy` names its host. Behind a proxy the only way to a mirror is
//! through it, so an `http://` root must honour these as every other tool does.
//!
//! Pure: the variables are passed in, read once by the caller.

use super::Url;

/// The proxy settings of an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub http: Option<Url>,
    pub https: Option<Url>,
    /// `no_proxy`'s entries, lower case, without a leading `.` or `*.`.
    pub bypass: Vec<String>,
    /// `no_proxy = *`: no URL goes through a proxy.
    pub bypass_all: bool,
}

impl ProxyEnv {
    /// Reads the settings through `var` (the process environment, or a test's).
    /// A proxy URL that does not parse is left out, and named in the second list.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> (ProxyEnv, Vec<String>) {
        let read = |name: &str| {
            var(name)
                .or_else(|| var(&name.to_ascii_uppercase()))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut ignored = Vec::new();
        let mut proxy = |name: &str| {
            let text = read(name)?;
            // `host:port` without a scheme means an HTTP proxy, as curl takes it.
            let url = if text.contains("://") {
                text.clone()
            } else {
                format!("http://{text}")
            };
            match Url::parse(&url) {
                // The proxy is spoken to in plain HTTP: a TLS proxy is not supported.
                Ok(parsed) if !parsed.tls => Some(parsed),
                Ok(_) => {
                    ignored.push(format!("{name}={text}: only http:// proxies are supported"));
                    None
                }
                Err(e) => {
                    ignored.push(format!("{name}={text}: {e}"));
                    None
                }
            }
        };
        let http = proxy("http_proxy");
        let https = proxy("https_proxy");
        let mut bypass = Vec::new();
        let mut bypass_all = false;
        for entry in read("no_proxy").unwrap_or_default().split([',', ' ']) {
            let entry = entry.trim().to_ascii_lowercase();
            if entry == "*" {
                bypass_all = true;
            }
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            if !entry.is_empty() && entry != "*" {
                bypass.push(entry.to_string());
            }
        }
        (
            ProxyEnv {
                http,
                https,
                bypass,
                bypass_all,
            },
            ignored,
        )
    }

    /// The proxy `url` goes through, if any.
    pub fn proxy_for(&self, url: &Url) -> Option<&Url> {
        let proxy = if url.tls { &self.https } else { &self.http };
        let proxy = proxy.as_ref()?;
        (!self.bypasses(url)).then_some(proxy)
    }

    /// Whether `no_proxy` names `url`'s host: the host itself, a domain it is in
    /// (`example.org` covers `mirror.example.org`), or `host:port` for one port.
    fn bypasses(&self, url: &Url) -> bool {
        if self.bypass_all {
            return true;
        }
        let host = url.host.to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        self.bypass.iter().any(|entry| {
            let (name, port) = match entry.rsplit_once(':') {
                Some((name, port)) if !name.contains(':') => (name, port.parse::<u16>().ok()),
                _ => (entry.as_str(), None),
            };
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let host_matches = host == name
                || host
                    .strip_suffix(name)
                    .is_some_and(|rest| rest.ends_with('.'));
            host_matches && port.is_none_or(|p| p == url.port)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> (ProxyEnv, Vec<String>) {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_vars(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn no_variable_no_proxy() {
        let (proxies, ignored) = env(&[]);
        assert_eq!(proxies, ProxyEnv::default());
        assert!(ignored.is_empty());
        assert_eq!(proxies.proxy_for(&url("http://mirror/x")), None);
    }

    #[test]
    fn http_urls_take_http_proxy_lower_case_first() {
        let (proxies, _) = env(&[
            ("http_proxy", "http://proxy.lan:3128/"),
            ("HTTP_PROXY", "http://other:1"),
        ]);
        let proxy = proxies
            .proxy_for(&url("http://deb.debian.org/debian"))
            .unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.lan", 3128));
        let (proxies, _) = env(&[("HTTP_PROXY", "proxy.lan:8080")]);
        let proxy = proxies.proxy_for(&url("http://deb.debian.org/")).unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.lan", 8080));
    }

    #[test]
    fn no_proxy_names_hosts_domains_and_ports() {
        let (proxies, _) = env(&[
            ("http_proxy", "http://proxy:3128"),
            ("no_proxy", "localhost, .lan,example.org ,10.0.0.5,inv:8080"),
        ]);
        for direct in [
            "http://localhost/x",
            "http://mirror.lan/x",
            "http://example.org/x",
            "http://a.b.example.org/x",
            "http://10.0.0.5:8000/x",
            "http://inv:8080/boot",
        ] {
            assert_eq!(proxies.proxy_for(&url(direct)), None, "{direct}");
        }
        for proxied in [
            "http://badexample.org/x",
            "http://10.0.0.50/x",
            "http://inv:8081/boot",
            "http://deb.debian.org/x",
        ] {
            assert!(proxies.proxy_for(&url(proxied)).is_some(), "{proxied}");
        }
        let (all, _) = env(&[("http_proxy", "http://proxy:3128"), ("NO_PROXY", "*")]);
        assert_eq!(all.proxy_for(&url("http://deb.debian.org/x")), None);
    }

    #[test]
    fn a_proxy_that_cannot_be_used_is_named_and_left_out() {
        let (proxies, ignored) =
            env(&[("http_proxy", "http://proxy:0"), ("https_proxy", "ftp://x")]);
        assert_eq!(proxies.http, None);
        assert_eq!(proxies.https, None);
        assert_eq!(ignored.len(), 2, "{ignored:?}");
        assert!(
            ignored[0].starts_with("http_proxy=http://proxy:0: bad port"),
            "{ignored:?}"
        );
    }
}
