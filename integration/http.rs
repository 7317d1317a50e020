//! The HTTP file service (`-H`) with real clients: curl and wget fetch whole files,
//! ranges and heads over kept-alive connections; hostile names, addresses without a
//! lease (`check_ip`), slow, oversized and idle clients are refused or cut without
//! delaying anyone else; an `http://` root is streamed through; and a `[filters]`
//! value naming the operator's own file serves it over TFTP and HTTP alike while the
//! root is a mirror. The real `bootd` runs in a server namespace, the clients in a
//! client namespace.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn script(name: &str) -> String {
    format!("{}/integration/{name}", env!("CARGO_MANIFEST_DIR"))
}

struct Env {
    pair: Pair,
    dir: TempDir,
    root: PathBuf,
    out: PathBuf,
    server: String,
}

impl Env {
    /// A server namespace on `net`.1 and a client namespace on `net`.2.
    fn new(net: &str) -> Env {
        let pair = Pair::new(&format!("{net}.1/24"), Some(&format!("{net}.2/24")));
        let dir = TempDir::new();
        let root = dir.path.join("root");
        let out = dir.path.join("out");
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(root.join("big.bin"), pattern(3 << 20, 7)).unwrap();
        std::fs::write(root.join("boot/grubx64.efi"), pattern(100_000, 9)).unwrap();
        std::fs::write(root.join("small.txt"), "small\n").unwrap();
        // Outside the root: never served, whatever the name asked for.
        std::fs::write(dir.path.join("secret"), "SECRET-OUTSIDE-ROOT\n").unwrap();
        std::os::unix::fs::symlink(dir.path.join("secret"), root.join("escape")).unwrap();
        Env {
            pair,
            dir,
            root,
            out,
            server: format!("{net}.1"),
        }
    }

    /// Starts `bootd args` with `config`, and waits for the HTTP service.
    fn start(&self, config: &str, args: &[&str]) -> Bootd {
        let conf = self.dir.write("bootd.ini", config);
        let bootd = Bootd::start(&self.pair.server, &conf, args);
        bootd.wait_for_log(
            &format!("serving HTTP on {}:80 from ", self.server),
            Duration::from_secs(10),
        );
        bootd
    }

    /// `bootd -t -H` serving the root directory, with `[httpd]` lines `httpd`.
    fn start_files(&self, httpd: &str) -> Bootd {
        let config = format!(
            "[logger]\nlevel = debug\n[tftp]\naddress = {0}\nroot = {1}\n[httpd]\naddress = {0}\n{httpd}\n",
            self.server,
            self.root.display()
        );
        self.start(&config, &["-t", "-H"])
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server)
    }

    fn curl(&self) -> Command {
        let mut c = self.pair.client.command("curl");
        // -g: brackets in hostile names are no curl ranges.
        c.args(["-sS", "-g", "--max-time", "20"]);
        c
    }

    /// curl's status code for `path` (sent as written).
    fn status(&self, path: &str) -> String {
        let got = run_bounded(
            self.curl()
                .args(["--path-as-is", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(self.url(path)),
            Duration::from_secs(30),
        );
        got.stdout.trim().to_string()
    }

    fn out(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    fn probe(&self, args: &[&str]) -> Command {
        let mut c = self.pair.client.command("python3");
        c.arg(script("http_probe.py")).args(args);
        c
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn curl_and_wget_get_whole_files_ranges_and_heads_over_one_connection() {
    require_root();
    let env = Env::new("10.96.0");
    let bootd = env.start_files("");

    // A whole file, by curl and by wget: the same bytes.
    let out = env.out("big.curl");
    let got = run_bounded(
        env.curl().arg("-o").arg(&out).arg(env.url("/big.bin")),
        Duration::from_secs(60),
    );
    got.assert_success();
    assert!(
        read(&out) == read(&env.root.join("big.bin")),
        "not the same bytes"
    );
    let out = env.out("big.wget");
    let got = run_bounded(
        env.pair
            .client
            .command("wget")
            .args(["-q", "-T", "20", "-O"])
            .arg(&out)
            .arg(env.url("/big.bin")),
        Duration::from_secs(60),
    );
    got.assert_success();
    assert!(
        read(&out) == read(&env.root.join("big.bin")),
        "not the same bytes"
    );

    // A range: 206 with its exact Content-Range, and those bytes only.
    let out = env.out("range");
    let got = run_bounded(
        env.curl()
            .args(["-D", "-", "-r", "1000-1999", "-o"])
            .arg(&out)
            .arg(env.url("/big.bin")),
        Duration::from_secs(30),
    );
    assert!(
        got.stdout.starts_with("HTTP/1.1 206 Partial Content\r\n"),
        "{got}"
    );
    assert!(
        got.stdout
            .contains(&format!("Content-Range: bytes 1000-1999/{}\r\n", 3 << 20)),
        "{got}"
    );
    assert!(got.stdout.contains("Content-Length: 1000\r\n"), "{got}");
    assert_eq!(read(&out), read(&env.root.join("big.bin"))[1000..2000]);
    // A suffix range, and one past the end (416).
    let got = run_bounded(
        env.curl()
            .args(["-D", "-", "-o", "/dev/null", "-r", "-10"])
            .arg(env.url("/small.txt")),
        Duration::from_secs(30),
    );
    assert!(
        got.stdout.contains("Content-Range: bytes 0-5/6\r\n"),
        "{got}"
    );
    let got = run_bounded(
        env.curl()
            .args(["-D", "-", "-o", "/dev/null", "-r", "100-"])
            .arg(env.url("/small.txt")),
        Duration::from_secs(30),
    );
    assert!(got.stdout.starts_with("HTTP/1.1 416 "), "{got}");
    assert!(got.stdout.contains("Content-Range: bytes */6\r\n"), "{got}");

    // HEAD, as UEFI HTTP boot probes the size: the length and type GET would have.
    let got = run_bounded(
        env.curl().arg("-I").arg(env.url("/boot/grubx64.efi")),
        Duration::from_secs(30),
    );
    assert!(got.stdout.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(
        got.stdout.contains("Content-Type: application/efi\r\n"),
        "{got}"
    );
    assert!(got.stdout.contains("Content-Length: 100000\r\n"), "{got}");

    // Keep-alive: two requests on one connection.
    let got = run_bounded(
        env.curl()
            .args(["-v", "-o", "/dev/null", "-o", "/dev/null"])
            .arg(env.url("/small.txt"))
            .arg(env.url("/boot/grubx64.efi")),
        Duration::from_secs(30),
    );
    got.assert_success();
    assert!(got.stderr.contains("Re-using existing connection"), "{got}");
    let connections = got.stderr.matches("Connected to ").count();
    assert_eq!(connections, 1, "{got}");

    // 404 for a missing file, a directory and the index; 405 for other methods.
    assert_eq!(env.status("/missing"), "404");
    assert_eq!(env.status("/boot"), "404");
    assert_eq!(env.status("/"), "404");
    let got = run_bounded(
        env.curl()
            .args(["-X", "PUT", "-d", "x", "-D", "-", "-o", "/dev/null"])
            .arg(env.url("/small.txt")),
        Duration::from_secs(30),
    );
    assert!(got.stdout.starts_with("HTTP/1.1 405 "), "{got}");
    assert!(got.stdout.contains("Allow: GET, HEAD\r\n"), "{got}");

    // One log line per request: client, method, path, status, bytes, duration.
    let log = bootd.log();
    assert!(
        log.contains(&format!(
            ": GET /big.bin 206 bytes 1000-1999/{}, 1000 bytes in ",
            3 << 20
        )),
        "{log}"
    );
    assert!(log.contains(": GET /missing 404, 0 bytes in "), "{log}");
    assert!(log.contains(": PUT /small.txt 405"), "{log}");
}

/// The names the TFTP hostile-name tests use (`files::name`), and HTTP's own ways of
/// writing them.
const HOSTILE: &[&str] = &[
    "../etc/passwd",
    "..",
    "a/../../secret",
    "boot/../../secret",
    "..\\..\\secret",
    "a\\b",
    "/../secret",
    "//..//secret",
    "%2e%2e/secret",
    "%2E%2E%2Fsecret",
    "..%2fsecret",
    "%252e%252e/secret",
    "a%00.txt",
    "small.txt%00../../secret",
    "....//....//secret",
    "...",
    "a/.../b",
    "C:\\Windows\\system32",
    "c:/boot.ini",
    "./../secret",
    "a/./../..",
    "escape",
    "%65scape",
    "boot/%2e%2e/%2e%2e/secret",
    "%c0%ae%c0%ae/secret",
    "a%0ab",
    "%1b[31m",
];

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn hostile_names_are_refused_and_nothing_outside_the_root_is_served() {
    require_root();
    let env = Env::new("10.97.0");
    let bootd = env.start_files("");
    for name in HOSTILE {
        for path in [format!("/{name}"), format!("/./{name}")] {
            let out = env.out("hostile");
            let got = run_bounded(
                env.curl()
                    .args(["--path-as-is", "-o"])
                    .arg(&out)
                    .args(["-w", "%{http_code}"])
                    .arg(env.url(&path)),
                Duration::from_secs(30),
            );
            let status = got.stdout.trim();
            assert!(
                ["400", "403", "404"].contains(&status),
                "{path}: {status} ({got})"
            );
            let body = String::from_utf8_lossy(&read(&out)).into_owned();
            assert!(!body.contains("SECRET"), "{path} served the secret");
        }
    }
    assert!(!bootd.log().contains(" 200, "), "{}", bootd.log());
    // Raw bytes curl will not send: a NUL, a space, a backslash in the request line.
    for raw in [
        "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
    ] {
        let hex: String = raw.bytes().map(|b| format!("{b:02x}")).collect();
        let got = run_bounded(
            &mut env.probe(&["raw", &env.server, "80", &hex]),
            Duration::from_secs(30),
        );
        assert!(got.stdout.starts_with("HTTP/1.1 400 "), "{raw:?}: {got}");
    }
    // The service still serves.
    assert_eq!(env.status("/small.txt"), "200");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn check_ip_serves_an_address_only_once_bootd_leased_it() {
    require_root();
    // The client end has no address: it gets one from bootd.
    let pair = Pair::new("10.98.0.1/24", None);
    let dir = TempDir::new();
    let root = dir.path.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("vmlinuz"), pattern(200_000, 3)).unwrap();
    let conf = dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n[bootp]\npool_start = 10.98.0.100\npool_count = 10\nallow_simple_dhcp = on\nlease_file = {}\n[tftp]\nroot = {}\n",
            dir.path.join("leases").display(),
            root.display()
        ),
    );
    let bootd = Bootd::start(&pair.server, &conf, &["-H"]);
    bootd.wait_for_log(
        "serving HTTP on 10.98.0.1:80 from ",
        Duration::from_secs(10),
    );
    let curl_from = |source: &str| {
        let got = run_bounded(
            pair.client
                .command("curl")
                .args(["-sS", "--max-time", "20", "--interface", source])
                .args(["-o", "/dev/null", "-w", "%{http_code}"])
                .arg("http://10.98.0.1/vmlinuz"),
            Duration::from_secs(30),
        );
        got.stdout.trim().to_string()
    };
    // An address bootd never leased: 401.
    pair.client
        .run(&["ip", "addr", "add", "10.98.0.3/24", "dev", &pair.client_if]);
    assert_eq!(curl_from("10.98.0.3"), "401");
    assert!(
        bootd
            .log()
            .contains("10.98.0.3 holds no lease ([httpd] check_ip)")
    );
    // A DHCP exchange through bootd, then the leased address is served.
    clients::set_mac(&pair, "02:00:00:00:98:01");
    let env = clients::udhcpc(&pair, &dir, "os", &[])
        .unwrap_or_else(|| panic!("no lease; log:\n{}", bootd.log()));
    let ip = env["ip"].clone();
    pair.client.run(&[
        "ip",
        "addr",
        "add",
        &format!("{ip}/24"),
        "dev",
        &pair.client_if,
    ]);
    assert_eq!(curl_from(&ip), "200");
    assert_eq!(curl_from("10.98.0.3"), "401");
    let log = bootd.log();
    assert!(
        log.contains(&format!("{ip}:")) && log.contains("(02-00-00-00-98-01): GET /vmlinuz 200"),
        "{log}"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn an_http_root_is_streamed_and_a_filter_serves_the_operators_own_file_over_tftp_and_http() {
    require_root();
    let env = Env::new("10.99.0");
    // The mirror: Python's HTTP server in the server namespace, on another port.
    let mirror_root = env.dir.path.join("mirror");
    std::fs::create_dir_all(mirror_root.join("netboot/debian-installer")).unwrap();
    let kernel = pattern(2 << 20, 11);
    std::fs::write(mirror_root.join("netboot/debian-installer/linux"), &kernel).unwrap();
    let mirror = Spawned::start(
        env.pair
            .server
            .command("python3")
            .args(["-u", "-m", "http.server", "8000", "--bind", &env.server])
            .arg("--directory")
            .arg(&mirror_root),
    );
    let waited = Instant::now();
    let mirror_url = format!("http://{}:8000/netboot/debian-installer/linux", env.server);
    while !run_bounded(
        env.pair
            .server
            .command("curl")
            .args(["-sf", "-o", "/dev/null", &mirror_url]),
        Duration::from_secs(5),
    )
    .success()
    {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the mirror did not start: {}",
            mirror.stdout_so_far()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The seeds' example: a local pxelinux configuration beside the configuration file.
    std::fs::create_dir_all(env.dir.path.join("pybootd/etc")).unwrap();
    std::fs::write(
        env.dir.path.join("pybootd/etc/pxe.cfg"),
        "DEFAULT install\nLABEL install\n KERNEL debian-installer/linux\n",
    )
    .unwrap();
    let config = format!(
        "[logger]\nlevel = debug\n[tftp]\naddress = {0}\nroot = http://{0}:8000/netboot\n[httpd]\naddress = {0}\n[filters]\npxelinux.cfg/* = pybootd/etc/pxe.cfg\ntempl/* = pybootd/etc/{{filename}}\n",
        env.server
    );
    let bootd = env.start(&config, &["-t", "-H"]);

    // Through bootd from the mirror: whole, and a range.
    let out = env.out("linux");
    let got = run_bounded(
        env.curl()
            .arg("-o")
            .arg(&out)
            .arg(env.url("/debian-installer/linux")),
        Duration::from_secs(60),
    );
    got.assert_success();
    let body = read(&out);
    assert!(
        body == kernel,
        "{} bytes: {:?}",
        body.len(),
        String::from_utf8_lossy(&body[..body.len().min(80)])
    );
    let got = run_bounded(
        env.curl()
            .args(["-D", "-", "-r", "100-199", "-o"])
            .arg(&out)
            .arg(env.url("/debian-installer/linux")),
        Duration::from_secs(60),
    );
    assert!(got.stdout.starts_with("HTTP/1.1 206 "), "{got}");
    assert_eq!(read(&out), kernel[100..200]);
    assert_eq!(env.status("/debian-installer/missing"), "404");

    // The filter's local file, over HTTP and over TFTP, though the root is a mirror.
    let want = read(&env.dir.path.join("pybootd/etc/pxe.cfg"));
    let out = env.out("pxe.http");
    run_bounded(
        env.curl()
            .arg("-o")
            .arg(&out)
            .arg(env.url("/pxelinux.cfg/01-52-54-00-12-34-56")),
        Duration::from_secs(30),
    )
    .assert_success();
    assert_eq!(read(&out), want);
    let out = env.out("pxe.tftp");
    let got = run_bounded(
        env.pair
            .client
            .command("tftp")
            .args(["-m", "binary"])
            .arg(&env.server)
            .args(["-c", "get", "pxelinux.cfg/default"])
            .arg(&out),
        Duration::from_secs(30),
    );
    assert!(got.success(), "{got}\n{}", bootd.log());
    assert_eq!(read(&out), want);
    // What the client controls (`{filename}`) stays under the root: never a local
    // file, and no way out through `..`.
    assert_eq!(env.status("/templ/pxe.cfg"), "404");
    assert_eq!(env.status("/templ/../../../secret"), "403");
    let log = bootd.log();
    assert!(
        log.contains("[filters] line 9 serves the local file"),
        "{log}"
    );
    drop(mirror);
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn slow_and_oversized_requests_are_cut_without_delaying_another_client() {
    require_root();
    let env = Env::new("10.100.0");
    let bootd = env.start_files("request_timeout = 3\n");
    // A client sending one byte a second: cut at the deadline with 408…
    let slow = Spawned::start(&mut env.probe(&["slow", &env.server, "80", "/small.txt"]));
    std::thread::sleep(Duration::from_millis(500));
    // … while another client is served at once.
    let started = Instant::now();
    let out = env.out("big");
    run_bounded(
        env.curl().arg("-o").arg(&out).arg(env.url("/big.bin")),
        Duration::from_secs(30),
    )
    .assert_success();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        read(&out) == read(&env.root.join("big.bin")),
        "not the same bytes"
    );
    let slow = slow.finish(Duration::from_secs(30));
    assert!(
        slow.stdout.starts_with("GOT HTTP/1.1 408 Request Timeout"),
        "{slow}"
    );
    let seconds: f64 = slow
        .stdout
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::MAX);
    assert!((2.5..6.0).contains(&seconds), "{slow}");

    // An 80 KiB header: 431 and a closed connection.
    let big_header = format!("X-Big: {}", "a".repeat(80 * 1024));
    let got = run_bounded(
        env.curl()
            .args(["-D", "-", "-o", "/dev/null", "-H", &big_header])
            .arg(env.url("/small.txt")),
        Duration::from_secs(30),
    );
    assert!(
        got.stdout.starts_with("HTTP/1.1 431 ") || got.stdout.starts_with("HTTP/1.1 400 "),
        "{got}"
    );
    assert!(got.stdout.contains("Connection: close\r\n"), "{got}");
    let log = bootd.log();
    assert!(
        log.contains("request head not complete within 3 s"),
        "{log}"
    );
    assert!(log.contains("431, 0 bytes in "), "{log}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_thousand_idle_connections_do_not_stop_a_real_client() {
    require_root();
    let env = Env::new("10.101.0");
    let bootd = env.start_files("");
    let idle = Spawned::start(&mut env.probe(&["idle", &env.server, "80", "1000", "60"]));
    assert!(
        idle.wait_for_stdout("READY 1000", Duration::from_secs(60)),
        "{}",
        idle.stdout_so_far()
    );
    let started = Instant::now();
    let out = env.out("big");
    run_bounded(
        env.curl().arg("-o").arg(&out).arg(env.url("/big.bin")),
        Duration::from_secs(30),
    )
    .assert_success();
    assert!(
        read(&out) == read(&env.root.join("big.bin")),
        "not the same bytes"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        bootd.log().contains("idle connection closed to make room"),
        "{}",
        bootd.log()
    );
    drop(idle);
}

/// The value of the sample `series` (name and labels, as written) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn metrics_pass_promtool_and_status_shows_what_tftp_and_http_served() {
    require_root();
    let env = Env::new("10.102.0");
    // A file of the same name under the root: bootd's own page wins.
    std::fs::write(env.root.join("metrics"), "A FILE NAMED metrics\n").unwrap();
    let bootd = env.start_files("");

    run_bounded(
        env.curl()
            .arg("-o")
            .arg(env.out("small"))
            .arg(env.url("/small.txt")),
        Duration::from_secs(30),
    )
    .assert_success();
    assert_eq!(env.status("/no-such-file"), "404");
    let got = run_bounded(
        env.pair
            .client
            .command("tftp")
            .args(["-m", "binary"])
            .arg(&env.server)
            .args(["-c", "get", "boot/grubx64.efi"])
            .arg(env.out("grub.tftp")),
        Duration::from_secs(30),
    );
    assert!(got.success(), "{got}\n{}", bootd.log());

    // A transfer's counts are published at the end of its loop turn: the scrape
    // may come a moment after the client's last packet.
    let deadline = Instant::now() + Duration::from_secs(5);
    let scrape_file = env.out("metrics.txt");
    let headers = env.out("metrics.head");
    let scrape = loop {
        run_bounded(
            env.curl()
                .arg("-D")
                .arg(&headers)
                .arg("-o")
                .arg(&scrape_file)
                .arg(env.url("/metrics")),
            Duration::from_secs(30),
        )
        .assert_success();
        let scrape = std::fs::read_to_string(&scrape_file).unwrap_or_default();
        let done = sample(&scrape, "bootd_transfers_completed_total{service=\"tftp\"}");
        if done == Some(1.0) || Instant::now() > deadline {
            break scrape;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let head = std::fs::read_to_string(&headers).unwrap_or_default();
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(!scrape.contains("A FILE NAMED metrics"), "{scrape}");

    let check = run_bounded(
        Command::new("sh")
            .arg("-c")
            .arg("promtool check metrics < \"$1\"")
            .arg("sh")
            .arg(&scrape_file),
        Duration::from_secs(30),
    );
    assert!(check.success(), "promtool: {check}\n{scrape}");

    let value =
        |series: &str| sample(&scrape, series).unwrap_or_else(|| panic!("{series}: {scrape}"));
    assert_eq!(
        value("bootd_transfers_completed_total{service=\"tftp\"}"),
        1.0
    );
    assert_eq!(value("bootd_sent_bytes_total{service=\"tftp\"}"), 100_000.0);
    assert_eq!(
        value("bootd_transfers_started_total{service=\"http\"}"),
        2.0
    );
    assert_eq!(
        value("bootd_transfers_completed_total{service=\"http\"}"),
        1.0
    );
    assert_eq!(value("bootd_transfers_failed_total{service=\"http\"}"), 1.0);
    assert_eq!(value("bootd_sent_bytes_total{service=\"http\"}"), 6.0);
    assert_eq!(
        value("bootd_transfer_duration_seconds_count{service=\"tftp\"}"),
        1.0
    );
    assert_eq!(
        value("bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"+Inf\"}"),
        1.0
    );

    // /status: the client, the files it fetched with their size, the refusal.
    let page = env.out("status.html");
    run_bounded(
        env.curl().arg("-o").arg(&page).arg(env.url("/status")),
        Duration::from_secs(30),
    )
    .assert_success();
    let page = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<td>10.102.0.2</td>"), "{page}");
    assert!(
        page.contains("TFTP <span class=\"file\">boot/grubx64.efi</span>: 100000 bytes"),
        "{page}"
    );
    assert!(
        page.contains("HTTP <span class=\"file\">/small.txt</span>: 6 bytes"),
        "{page}"
    );
    assert!(page.contains("/no-such-file"), "{page}");
    assert!(
        page.contains("<h2>Refusals in the last hour (1)</h2>"),
        "{page}"
    );
}

/// What a BIOS PXE ROM sends (busybox udhcpc options): vendor class, architecture 0,
/// UUID.
const PXE_BIOS: [&str; 6] = [
    "-V",
    "PXEClient:Arch:00000:UNDI:002001",
    "-x",
    "0x5d:0000",
    "-x",
    "0x61:00000102030405060708090a0b0c0d0e0f",
];

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn chromium_shows_the_machine_and_its_boot_file_on_the_status_page() {
    require_root();
    let pair = Pair::new("10.103.0.1/24", None);
    common::clients::set_mac(&pair, "52:54:00:5a:7a:01");
    let dir = TempDir::new();
    let root = dir.path.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("pxelinux.0"), pattern(50_000, 3)).unwrap();
    let conf = dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n[bootp]\npool_start = 10.103.0.100\npool_count = 10\nlease_file = {}\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = {}\n",
            dir.path.join("leases").display(),
            root.display()
        ),
    );
    let bootd = Bootd::start(&pair.server, &conf, &["-H"]);
    bootd.wait_for_log("serving HTTP on 10.103.0.1:80", Duration::from_secs(10));

    // The firmware's half of a boot: its DHCP exchange, then its boot file over TFTP
    // from the address it was given.
    let env = common::clients::udhcpc(&pair, &dir, "pxe", &PXE_BIOS)
        .unwrap_or_else(|| panic!("no lease; log:\n{}", bootd.log()));
    assert_eq!(env["ip"], "10.103.0.100");
    pair.client.run(&[
        "ip",
        "addr",
        "add",
        "10.103.0.100/24",
        "dev",
        &pair.client_if,
    ]);
    let got = run_bounded(
        pair.client
            .command("tftp")
            .args(["-m", "binary", "10.103.0.1", "-c", "get", "pxelinux.0"])
            .arg(dir.path.join("pxelinux.0")),
        Duration::from_secs(30),
    );
    assert!(got.success(), "{got}\n{}", bootd.log());

    // Chromium, headless, as the operator would open the page.
    let profile = dir.path.join("chromium");
    let url = "http://10.103.0.1/status";
    let page = browser::dom(&pair.client, &profile, url);
    assert!(page.contains("<td>52-54-00-5A-7A-01</td>"), "{page}");
    assert!(
        page.contains("DHCP (firmware): 10.103.0.100, boot file pxelinux.0"),
        "{page}"
    );
    // The firmware's exchange, phase by phase, before the file it then fetched.
    let phases = [
        "DHCPDISCOVER",
        "DHCPOFFER 10.103.0.100",
        "DHCPREQUEST",
        "DHCP (firmware): 10.103.0.100",
        "TFTP <span class=\"file\">pxelinux.0</span>",
    ];
    let at: Vec<Option<usize>> = phases.iter().map(|p| page.find(p)).collect();
    assert!(
        at.iter().all(Option::is_some) && at.windows(2).all(|w| w[0] < w[1]),
        "{phases:?} at {at:?}:\n{page}"
    );
    assert!(
        page.contains("TFTP <span class=\"file\">pxelinux.0</span>: 50000 bytes"),
        "{page}"
    );
    // The page asks for no other resource (not even an icon): nothing refused.
    assert!(
        page.contains("<h2>Refusals in the last hour (0)</h2>"),
        "{page}"
    );
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    browser::screenshot(&pair.client, &profile, url, &screenshot);
}
