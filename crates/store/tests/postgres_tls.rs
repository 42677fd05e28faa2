//! TLS to PostgreSQL through `Store::open_url`, against PostgreSQL servers
//! the tests start themselves: `initdb` into a temporary folder, a throwaway
//! CA and server certificate made with the `openssl` command, `pg_ctl start`
//! on a free port of 127.0.0.1, trust authentication, and `pg_ctl stop` when
//! the test ends or panics. The machine's shared server is not touched.
//!
//! The server binaries are looked for in `CALSYNC_TEST_PG_BIN`, then in
//! `/usr/lib/postgresql/<version>/bin` (Debian, Ubuntu; the newest), then on
//! `PATH`. Without them, or without `openssl`, the tests fail and say what to
//! install. As root (initdb refuses root) the server runs as the `postgres`
//! user through `runuser` (or `su`).
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calsync_store::{testing, Store};

/// In every URL: the servers trust any password, so it must never show up in
/// what the store prints.
const PASSWORD: &str = "pw-that-must-not-leak";

/// The server's session for the connection that runs the query.
const SESSION_SSL: &str = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[tokio::test]
async fn require_is_tls_disable_is_plaintext_and_the_default_prefers_tls() {
    let server = PgServer::start(Tls::On);

    assert_eq!(
        session_ssl(&server.url("localhost", "sslmode=require")).await,
        "true"
    );
    assert_eq!(
        session_ssl(&server.url("localhost", "sslmode=disable")).await,
        "false"
    );
    assert!(
        std::env::var_os("PGSSLMODE").is_none(),
        "PGSSLMODE is set: it changes the default this test checks"
    );
    assert_eq!(
        session_ssl(&server.url("localhost", "")).await,
        "true",
        "a URL without sslmode means prefer: TLS when the server offers it"
    );
    // `require` encrypts without checking the certificate, even when a CA
    // file is given; checking is what verify-ca and verify-full are for.
    let other_ca = server.tls.other_ca.display().to_string();
    assert_eq!(
        session_ssl(&server.url(
            "localhost",
            &format!("sslmode=require&sslrootcert={other_ca}")
        ))
        .await,
        "true"
    );
}

#[tokio::test]
async fn verify_full_trusts_only_the_given_ca_and_checks_the_host_name() {
    let server = PgServer::start(Tls::On);
    let ca = server.tls.ca.display().to_string();
    let other_ca = server.tls.other_ca.display().to_string();

    // The certificate names `localhost` only (no IP address).
    let full = format!("sslmode=verify-full&sslrootcert={ca}");
    assert_eq!(session_ssl(&server.url("localhost", &full)).await, "true");
    let message = open_error(&server.url("127.0.0.1", &full)).await;
    assert_contains(
        &message,
        &["sslmode=verify-full", "127.0.0.1", "not valid for name"],
    );
    // verify-ca should check the issuer only (libpq), but sqlx 0.8.6 with
    // rustls >= 0.23.24 checks the name as well (sqlx issue 3793, fixed by
    // sqlx PR 3861, in no 0.8 release): stricter, never weaker. When this fails after an upgrade, update
    // README.md and `Store::open_postgres`'s docs.
    let ca_only = format!("sslmode=verify-ca&sslrootcert={ca}");
    assert_eq!(
        session_ssl(&server.url("localhost", &ca_only)).await,
        "true"
    );
    let message = open_error(&server.url("127.0.0.1", &ca_only)).await;
    assert_contains(&message, &["sslmode=verify-ca", "not valid for name"]);

    // A CA that did not issue the server's certificate.
    let wrong = format!("sslmode=verify-full&sslrootcert={other_ca}");
    let message = open_error(&server.url("localhost", &wrong)).await;
    assert_contains(
        &message,
        &[
            "TLS",
            "sslmode=verify-full",
            &format!("sslrootcert={other_ca}"),
            "invalid peer certificate",
            "UnknownIssuer",
        ],
    );
    let message =
        open_error(&server.url("localhost", &wrong.replace("verify-full", "verify-ca"))).await;
    assert_contains(&message, &["sslmode=verify-ca", "UnknownIssuer"]);
    // No CA file: only public roots, which did not issue a throwaway CA.
    let message = open_error(&server.url("localhost", "sslmode=verify-full")).await;
    assert_contains(&message, &["sslmode=verify-full", "UnknownIssuer"]);
    // A CA file that is not there is named as such, not as an unreachable server.
    let missing = server.tls.dir.join("missing-ca.pem").display().to_string();
    let message = open_error(&server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={missing}"),
    ))
    .await;
    assert_contains(&message, &["cannot read sslrootcert", &missing]);
}

#[tokio::test]
async fn require_fails_against_a_server_without_tls() {
    let server = PgServer::start(Tls::Off);

    let message = open_error(&server.url("localhost", "sslmode=require")).await;
    assert_contains(
        &message,
        &["sslmode=require", "server does not support TLS"],
    );
    let ca = server.tls.ca.display().to_string();
    let message = open_error(&server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert_contains(
        &message,
        &["sslmode=verify-full", "server does not support TLS"],
    );
    // prefer (the default) falls back to plaintext: what issue 13 saw.
    assert_eq!(
        session_ssl(&server.url("localhost", "sslmode=prefer")).await,
        "false"
    );
    assert_eq!(
        session_ssl(&server.url("localhost", "sslmode=disable")).await,
        "false"
    );
}

/// Opens and migrates the store at `url`, then answers whether the session
/// that runs a query is encrypted (`pg_stat_ssl.ssl`, "true" or "false").
async fn session_ssl(url: &str) -> String {
    let store = Store::open_url(url, testing::keyring())
        .await
        .unwrap_or_else(|e| panic!("open_url({}): {e}", redact(url)));
    store
        .prepare()
        .await
        .unwrap_or_else(|e| panic!("prepare: {e}"));
    let debug = format!("{store:?}");
    assert!(
        !debug.contains(PASSWORD),
        "Store's Debug shows the password: {debug}"
    );
    let ssl = testing::fetch_text(&store, SESSION_SSL).await.unwrap();
    store.close().await;
    ssl
}

/// The error `open_url` fails with, as the server's start-up would print it;
/// it must not contain the password.
async fn open_error(url: &str) -> String {
    let err = match Store::open_url(url, testing::keyring()).await {
        Ok(store) => {
            store.close().await;
            panic!("open_url({}) connected", redact(url));
        }
        Err(err) => err,
    };
    let (message, debug) = (err.to_string(), format!("{err:?}"));
    assert!(
        !message.contains(PASSWORD) && !debug.contains(PASSWORD),
        "the error shows the password: {debug}"
    );
    message
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "{part:?} is not in the error: {message}"
        );
    }
}

fn redact(url: &str) -> String {
    url.replace(PASSWORD, "***")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tls {
    On,
    Off,
}

/// The throwaway certificates, in `dir`.
struct Certificates {
    dir: PathBuf,
    /// The CA that issued the server's certificate.
    ca: PathBuf,
    /// A CA that issued nothing the server has.
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// A PostgreSQL server of its own for one test; stopped and deleted on drop.
struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    user: RunAs,
    port: u16,
    tls: Certificates,
}

impl PgServer {
    fn start(tls: Tls) -> Self {
        let bin = server_binaries();
        let user = RunAs::detect();
        let dir = testing::temp_dir();
        let certificates = make_certificates(&dir.join("tls"));
        let port = free_port();
        // Constructed before anything runs, so that a failure below still
        // stops what started and deletes the folder.
        let server = Self {
            dir,
            bin,
            user,
            port,
            tls: certificates,
        };
        server.user.hand_over(&server.dir);
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "calsync".as_ref(),
                "--auth=trust".as_ref(),
                "--no-sync".as_ref(),
                "--no-locale".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
            ],
        );
        let mut conf = String::new();
        writeln!(conf, "listen_addresses = '127.0.0.1'").unwrap();
        writeln!(conf, "port = {}", server.port).unwrap();
        writeln!(conf, "unix_socket_directories = '{}'", server.dir.display()).unwrap();
        writeln!(conf, "ssl = {}", if tls == Tls::On { "on" } else { "off" }).unwrap();
        writeln!(
            conf,
            "ssl_cert_file = '{}'",
            server.tls.server_cert.display()
        )
        .unwrap();
        writeln!(conf, "ssl_key_file = '{}'", server.tls.server_key.display()).unwrap();
        writeln!(conf, "fsync = off").unwrap();
        writeln!(conf, "max_connections = 40").unwrap();
        writeln!(conf, "shared_buffers = 16MB").unwrap();
        append(&data.join("postgresql.conf"), &conf);
        // Replaces initdb's file: trust on loopback, with and without TLS.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n\
             hostnossl all all ::1/128 trust\n",
        )
        .unwrap();
        let log = server.dir.join("server.log");
        let started = server
            .user
            .command(&server.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "start"])
            .output()
            .unwrap_or_else(|e| panic!("pg_ctl start: {e}"));
        if !started.status.success() {
            panic!(
                "pg_ctl start failed: {}\n--- server log ---\n{}",
                describe(&started),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A URL to this server's `postgres` database by `host`, with `query`.
    fn url(&self, host: &str, query: &str) -> String {
        let mut url = format!(
            "postgres://calsync:{PASSWORD}@{host}:{}/postgres",
            self.port
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let output = self
            .user
            .command(&self.bin.join(program))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} failed: {}",
            describe(&output)
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            let _ = self
                .user
                .command(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Who runs the server's programs: this user, or `postgres` when this is root.
#[derive(Clone, Copy)]
enum RunAs {
    Me,
    PostgresByRunuser,
    PostgresBySu,
}

impl RunAs {
    fn detect() -> Self {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .unwrap_or_else(|e| panic!("id -u: {e}"));
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Self::Me;
        }
        let has_postgres = Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            has_postgres,
            "running as root, and initdb refuses root: the server needs a `postgres` user \
             (Debian's postgresql-common package creates it), or run the tests as another user"
        );
        let runuser = Command::new("runuser")
            .args(["-u", "postgres", "--", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
        if runuser {
            Self::PostgresByRunuser
        } else {
            Self::PostgresBySu
        }
    }

    fn command(self, program: &Path) -> Command {
        match self {
            Self::Me => Command::new(program),
            Self::PostgresByRunuser => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            }
            Self::PostgresBySu => {
                // su takes one shell string; the program and its arguments
                // follow as the shell's $0 and $@, so nothing needs quoting.
                let mut command = Command::new("su");
                command
                    .args([
                        "-s",
                        "/bin/sh",
                        "-c",
                        "exec \"$0\" \"$@\"",
                        "postgres",
                        "--",
                    ])
                    .arg(program);
                command
            }
        }
    }

    /// Gives `dir` (and what is in it) to the user who runs the server.
    fn hand_over(self, dir: &Path) {
        if let Self::Me = self {
            return;
        }
        let output = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("chown: {e}"));
        assert!(
            output.status.success(),
            "chown -R postgres: {}: {}",
            dir.display(),
            describe(&output)
        );
    }
}

/// The folder with `initdb` and `pg_ctl`.
fn server_binaries() -> PathBuf {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("CALSYNC_TEST_PG_BIN").map(PathBuf::from) {
        assert!(
            has_both(&dir),
            "CALSYNC_TEST_PG_BIN={} has no initdb and pg_ctl",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_both(dir))
    {
        return dir;
    }
    panic!(
        "PostgreSQL's server programs initdb and pg_ctl are not installed; the TLS tests start \
         their own server. Install them (Debian/Ubuntu: `apt-get install postgresql`, which puts \
         them in /usr/lib/postgresql/<version>/bin), put them on PATH, or set CALSYNC_TEST_PG_BIN \
         to their folder"
    );
}

/// A CA, the server's key and certificate for `localhost` issued by it, and
/// an unrelated CA, as PEM files in `dir`.
fn make_certificates(dir: &Path) -> Certificates {
    std::fs::create_dir_all(dir).unwrap();
    let ca = make_ca(dir, "ca", "calsync test CA");
    let other_ca = make_ca(dir, "other-ca", "calsync unrelated CA");
    let config = dir.join("server.cnf");
    std::fs::write(
        &config,
        "[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = localhost\n\
         [server]\nbasicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost\n",
    )
    .unwrap();
    let (server_key, csr, server_cert) = (
        dir.join("server.key"),
        dir.join("server.csr"),
        dir.join("server.crt"),
    );
    openssl(&[
        "req".as_ref(),
        "-new".as_ref(),
        "-config".as_ref(),
        config.as_os_str(),
        "-newkey".as_ref(),
        "ec".as_ref(),
        "-pkeyopt".as_ref(),
        "ec_paramgen_curve:P-256".as_ref(),
        "-nodes".as_ref(),
        "-keyout".as_ref(),
        server_key.as_os_str(),
        "-out".as_ref(),
        csr.as_os_str(),
    ]);
    openssl(&[
        "x509".as_ref(),
        "-req".as_ref(),
        "-in".as_ref(),
        csr.as_os_str(),
        "-CA".as_ref(),
        ca.as_os_str(),
        "-CAkey".as_ref(),
        dir.join("ca.key").as_os_str(),
        "-set_serial".as_ref(),
        "2".as_ref(),
        "-days".as_ref(),
        "2".as_ref(),
        "-extfile".as_ref(),
        config.as_os_str(),
        "-extensions".as_ref(),
        "server".as_ref(),
        "-out".as_ref(),
        server_cert.as_os_str(),
    ]);
    // PostgreSQL refuses a key that others can read.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&server_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    Certificates {
        dir: dir.to_owned(),
        ca,
        other_ca,
        server_cert,
        server_key,
    }
}

/// A self-signed CA `name`.pem (key `name`.key) in `dir`.
fn make_ca(dir: &Path, name: &str, common_name: &str) -> PathBuf {
    let config = dir.join(format!("{name}.cnf"));
    std::fs::write(
        &config,
        format!(
            "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ca\n[dn]\nCN = {common_name}\n\
             [ca]\nbasicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\n"
        ),
    )
    .unwrap();
    let (key, pem) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pem")),
    );
    openssl(&[
        "req".as_ref(),
        "-x509".as_ref(),
        "-config".as_ref(),
        config.as_os_str(),
        "-newkey".as_ref(),
        "ec".as_ref(),
        "-pkeyopt".as_ref(),
        "ec_paramgen_curve:P-256".as_ref(),
        "-nodes".as_ref(),
        "-days".as_ref(),
        "2".as_ref(),
        "-keyout".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        pem.as_os_str(),
    ]);
    pem
}

fn openssl(args: &[&std::ffi::OsStr]) {
    let output = Command::new("openssl").args(args).output().unwrap_or_else(|e| {
        panic!("openssl: {e}: the TLS tests make their certificates with the openssl command; install it (Debian/Ubuntu: `apt-get install openssl`)")
    });
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        describe(&output)
    );
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
