//! The one typed configuration (design.md §5). Values come from the command
//! line or `CALSYNC_*` environment variables, then from the TOML file given
//! with `--config`, then from the defaults. Nothing else reads the environment.
//!
//! Secrets (the encryption key, the OAuth client secrets) are never
//! command-line flags: a flag's value is visible to every local user in the
//! process list and lands in shell history. They come from the environment
//! or the file only, and no `Debug` here prints them; `CALSYNC_DATABASE_URL`
//! may carry a password, so its `Debug` shows the scheme only.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

/// Settings as given (flag, environment or file); every one optional.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
pub struct ConfigArgs {
    /// Address and port to listen on [default: 127.0.0.1:8000].
    #[arg(long, env = "CALSYNC_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// The URL users reach calsync at; redirect URIs are built from it [default: http://localhost:8000].
    #[arg(long, env = "CALSYNC_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// postgres://... to use PostgreSQL; default: SQLite file calsync.db in the data folder.
    #[arg(
        long,
        env = "CALSYNC_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<DatabaseUrl>,
    /// Folder for the SQLite file and the generated key file [default: ./data].
    #[arg(long, env = "CALSYNC_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Base64 32-byte keys, comma-separated; the first seals [default:
    /// generated key file]. `CALSYNC_ENCRYPTION_KEY` or the file only: no flag.
    #[arg(skip)]
    #[serde(default, deserialize_with = "secret")]
    pub encryption_key: Option<SecretString>,
    /// How often connections are synced, e.g. 30s, 5m, 1h [default: 5m].
    #[arg(long, env = "CALSYNC_SYNC_INTERVAL", global = true)]
    pub sync_interval: Option<String>,
    /// Sync rounds at once per instance [default: 32].
    #[arg(long, env = "CALSYNC_SYNC_CONCURRENCY", global = true)]
    pub sync_concurrency: Option<u32>,
    #[command(flatten)]
    #[serde(flatten)]
    pub google: GoogleArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub microsoft: MicrosoftArgs,
    /// Allow CalDAV and ICS URLs that resolve to loopback or private addresses.
    #[arg(long, env = "CALSYNC_ALLOW_PRIVATE_ADDRESSES", global = true)]
    pub allow_private_addresses: Option<bool>,
    /// Reverse proxies (comma-separated CIDRs, e.g. 127.0.0.1/32,10.0.0.0/8) whose
    /// X-Forwarded-For / Forwarded names the client; empty: the TCP peer is the client.
    #[arg(long, env = "CALSYNC_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// A bearer token `/metrics` asks for; unset, `/metrics` is open (keep
    /// it off the public listener then). `CALSYNC_METRICS_TOKEN` or the
    /// file only: no flag.
    #[arg(skip)]
    #[serde(default, deserialize_with = "secret")]
    pub metrics_token: Option<SecretString>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Option::<String>::deserialize(d).map(|s| s.map(SecretString::from))
}

/// The secret settings, from the environment only (they have no flag).
/// An empty variable counts as unset.
fn secrets_from_env() -> ConfigArgs {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
    };
    ConfigArgs {
        encryption_key: var("CALSYNC_ENCRYPTION_KEY"),
        metrics_token: var("CALSYNC_METRICS_TOKEN"),
        google: GoogleArgs {
            client_secret: var("CALSYNC_GOOGLE_CLIENT_SECRET"),
            ..GoogleArgs::default()
        },
        microsoft: MicrosoftArgs {
            client_secret: var("CALSYNC_MICROSOFT_CLIENT_SECRET"),
            ..MicrosoftArgs::default()
        },
        ..ConfigArgs::default()
    }
}

/// `CALSYNC_DATABASE_URL`: a PostgreSQL URL may carry the password, so
/// `Debug` shows the scheme only. Dereferences to the URL text.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self
            .0
            .split_once("://")
            .map_or("", |(scheme, _)| scheme)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>();
        write!(f, "DatabaseUrl({scheme}://[REDACTED])")
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl From<String> for DatabaseUrl {
    fn from(text: String) -> Self {
        Self(text)
    }
}

/// Generates the six settings of one OAuth provider.
macro_rules! oauth_args {
    ($name:ident, $prefix:literal, $env:literal, [$id:literal, $secret:literal, $auth:literal, $token:literal, $api:literal, $revoke:literal]) => {
        #[doc = concat!("OAuth settings of ", $prefix, ".")]
        #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
        pub struct $name {
            #[doc = concat!($prefix, " OAuth client id; the provider is off without it.")]
            #[arg(id = $id, long = $id, env = concat!("CALSYNC_", $env, "_CLIENT_ID"), global = true)]
            #[serde(rename = $id)]
            pub client_id: Option<String>,
            #[doc = concat!($prefix, " OAuth client secret: `CALSYNC_", $env, "_CLIENT_SECRET` or the file only, no flag.")]
            #[arg(skip)]
            #[serde(rename = $secret, default, deserialize_with = "secret")]
            pub client_secret: Option<SecretString>,
            #[doc = concat!($prefix, " authorization endpoint (override for the emulator).")]
            #[arg(id = $auth, long = $auth, env = concat!("CALSYNC_", $env, "_AUTH_URL"), global = true)]
            #[serde(rename = $auth)]
            pub auth_url: Option<String>,
            #[doc = concat!($prefix, " token endpoint.")]
            #[arg(id = $token, long = $token, env = concat!("CALSYNC_", $env, "_TOKEN_URL"), global = true)]
            #[serde(rename = $token)]
            pub token_url: Option<String>,
            #[doc = concat!($prefix, " API base URL.")]
            #[arg(id = $api, long = $api, env = concat!("CALSYNC_", $env, "_API_BASE"), global = true)]
            #[serde(rename = $api)]
            pub api_base: Option<String>,
            #[doc = concat!($prefix, " token revocation endpoint.")]
            #[arg(id = $revoke, long = $revoke, env = concat!("CALSYNC_", $env, "_REVOKE_URL"), global = true)]
            #[serde(rename = $revoke)]
            pub revoke_url: Option<String>,
        }
    };
}
oauth_args!(
    GoogleArgs,
    "google",
    "GOOGLE",
    [
        "google_client_id",
        "google_client_secret",
        "google_auth_url",
        "google_token_url",
        "google_api_base",
        "google_revoke_url"
    ]
);
oauth_args!(
    MicrosoftArgs,
    "microsoft",
    "MICROSOFT",
    [
        "microsoft_client_id",
        "microsoft_client_secret",
        "microsoft_auth_url",
        "microsoft_token_url",
        "microsoft_api_base",
        "microsoft_revoke_url"
    ]
);

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key} is not valid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// An OAuth provider's endpoints and client.
#[derive(Debug, Clone)]
pub struct OAuthProvider {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub auth_url: String,
    pub token_url: String,
    pub api_base: String,
    pub revoke_url: String,
}

/// The validated configuration every subcommand runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Without a trailing slash.
    pub public_url: String,
    pub database_url: Option<DatabaseUrl>,
    pub data_dir: PathBuf,
    pub encryption_key: Option<SecretString>,
    pub sync_interval: Duration,
    /// Sync rounds at once per instance: most of a round is waiting for the
    /// provider, so a 2-core machine runs dozens.
    pub sync_concurrency: usize,
    /// `None` when no client id is set: the provider is not offered.
    pub google: Option<OAuthProvider>,
    pub microsoft: Option<OAuthProvider>,
    pub allow_private_addresses: bool,
    /// Peers whose forwarding headers are believed (`http::client_addr`).
    pub trusted_proxies: Vec<IpNet>,
    /// What `/metrics` asks for as a bearer token, when set.
    pub metrics_token: Option<SecretString>,
}

impl Config {
    /// Flags and environment first, then the file, then the defaults. The
    /// secrets have no flag: `args` cannot carry them, they come from the
    /// environment (read here) or the file.
    pub fn load(args: &ConfigArgs, file: Option<&Path>) -> Result<Self, ConfigError> {
        let from_file = match file {
            Some(path) => read_file(path)?,
            None => ConfigArgs::default(),
        };
        Self::resolve(args.clone().or(secrets_from_env()).or(from_file))
    }

    fn resolve(a: ConfigArgs) -> Result<Self, ConfigError> {
        let public_url = a
            .public_url
            .unwrap_or_else(|| "http://localhost:8000".to_owned());
        let public_url = validate_public_url(&public_url)?;
        Ok(Self {
            listen: a
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000))),
            public_url,
            database_url: a.database_url.filter(|u| !u.is_empty()),
            data_dir: a.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            encryption_key: a.encryption_key,
            sync_interval: match a.sync_interval {
                Some(text) => parse_duration(&text).ok_or_else(|| {
                    invalid(
                        "CALSYNC_SYNC_INTERVAL",
                        format!("{text:?} is not like 30s, 5m or 1h"),
                    )
                })?,
                None => Duration::from_secs(300),
            },
            sync_concurrency: match a.sync_concurrency {
                Some(0) => {
                    return Err(invalid(
                        "CALSYNC_SYNC_CONCURRENCY",
                        "must be at least 1".to_owned(),
                    ))
                }
                Some(n) => usize::try_from(n.min(1024)).unwrap_or(1024),
                None => 32,
            },
            google: oauth_provider(a.google.into(), GOOGLE_DEFAULTS),
            microsoft: oauth_provider(a.microsoft.into(), MICROSOFT_DEFAULTS),
            allow_private_addresses: a.allow_private_addresses.unwrap_or(false),
            trusted_proxies: parse_trusted_proxies(a.trusted_proxies.as_deref().unwrap_or(""))
                .map_err(|reason| invalid("CALSYNC_TRUSTED_PROXIES", reason))?,
            metrics_token: a.metrics_token,
        })
    }

    /// Whether cookies must be `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The OAuth redirect URI of a provider, e.g. `{PUBLIC_URL}/api/calendar/google/callback/`.
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!("{}/api/calendar/{provider}/callback/", self.public_url)
    }

    /// Where the default SQLite file lives.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("calsync.db")
    }
}

impl ConfigArgs {
    /// Each setting from `self`, else from `fallback`.
    fn or(self, fallback: Self) -> Self {
        Self {
            listen: self.listen.or(fallback.listen),
            public_url: self.public_url.or(fallback.public_url),
            database_url: self.database_url.or(fallback.database_url),
            data_dir: self.data_dir.or(fallback.data_dir),
            encryption_key: self.encryption_key.or(fallback.encryption_key),
            sync_interval: self.sync_interval.or(fallback.sync_interval),
            sync_concurrency: self.sync_concurrency.or(fallback.sync_concurrency),
            google: GoogleArgs::from(OAuthArgs::from(self.google).or(fallback.google.into())),
            microsoft: MicrosoftArgs::from(
                OAuthArgs::from(self.microsoft).or(fallback.microsoft.into()),
            ),
            allow_private_addresses: self
                .allow_private_addresses
                .or(fallback.allow_private_addresses),
            trusted_proxies: self.trusted_proxies.or(fallback.trusted_proxies),
            metrics_token: self.metrics_token.or(fallback.metrics_token),
        }
    }
}

/// The provider-neutral shape of [`GoogleArgs`] and [`MicrosoftArgs`].
#[derive(Debug, Default)]
struct OAuthArgs {
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    auth_url: Option<String>,
    token_url: Option<String>,
    api_base: Option<String>,
    revoke_url: Option<String>,
}

impl OAuthArgs {
    fn or(self, fallback: Self) -> Self {
        Self {
            client_id: self.client_id.or(fallback.client_id),
            client_secret: self.client_secret.or(fallback.client_secret),
            auth_url: self.auth_url.or(fallback.auth_url),
            token_url: self.token_url.or(fallback.token_url),
            api_base: self.api_base.or(fallback.api_base),
            revoke_url: self.revoke_url.or(fallback.revoke_url),
        }
    }
}

macro_rules! convert_oauth_args {
    ($name:ident) => {
        impl From<$name> for OAuthArgs {
            fn from(a: $name) -> Self {
                Self {
                    client_id: a.client_id,
                    client_secret: a.client_secret,
                    auth_url: a.auth_url,
                    token_url: a.token_url,
                    api_base: a.api_base,
                    revoke_url: a.revoke_url,
                }
            }
        }
        impl From<OAuthArgs> for $name {
            fn from(a: OAuthArgs) -> Self {
                Self {
                    client_id: a.client_id,
                    client_secret: a.client_secret,
                    auth_url: a.auth_url,
                    token_url: a.token_url,
                    api_base: a.api_base,
                    revoke_url: a.revoke_url,
                }
            }
        }
    };
}
convert_oauth_args!(GoogleArgs);
convert_oauth_args!(MicrosoftArgs);

/// auth, token, API base, revoke.
type Endpoints = [&'static str; 4];

const GOOGLE_DEFAULTS: Endpoints = [
    "https://accounts.google.com/o/oauth2/v2/auth",
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com",
    "https://oauth2.googleapis.com/revoke",
];

/// Microsoft has no revocation endpoint for an app's refresh token.
const MICROSOFT_DEFAULTS: Endpoints = [
    "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    "https://graph.microsoft.com/v1.0",
    "",
];

fn oauth_provider(a: OAuthArgs, [auth, token, api, revoke]: Endpoints) -> Option<OAuthProvider> {
    let client_id = a.client_id.filter(|id| !id.is_empty())?;
    let trim = |url: String| url.trim_end_matches('/').to_owned();
    Some(OAuthProvider {
        client_id,
        client_secret: a.client_secret,
        auth_url: a.auth_url.unwrap_or_else(|| auth.to_owned()),
        token_url: a.token_url.unwrap_or_else(|| token.to_owned()),
        api_base: trim(a.api_base.unwrap_or_else(|| api.to_owned())),
        revoke_url: a.revoke_url.unwrap_or_else(|| revoke.to_owned()),
    })
}

/// Keys a config file may set: the settings' names without `CALSYNC_`, lower-cased.
const FILE_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "database_url",
    "data_dir",
    "encryption_key",
    "metrics_token",
    "sync_interval",
    "sync_concurrency",
    "allow_private_addresses",
    "trusted_proxies",
    "google_client_id",
    "google_client_secret",
    "google_auth_url",
    "google_token_url",
    "google_api_base",
    "google_revoke_url",
    "microsoft_client_id",
    "microsoft_client_secret",
    "microsoft_auth_url",
    "microsoft_token_url",
    "microsoft_api_base",
    "microsoft_revoke_url",
];

fn read_file(path: &Path) -> Result<ConfigArgs, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| parse_error(e.message().to_owned()))?;
    // serde cannot deny unknown fields through `flatten`, and a misspelt key
    // silently ignored is worse than a refusal.
    if let Some(unknown) = table.keys().find(|k| !FILE_KEYS.contains(&k.as_str())) {
        return Err(parse_error(format!("unknown key {unknown:?}")));
    }
    table
        .try_into()
        .map_err(|e: toml::de::Error| parse_error(e.message().to_owned()))
}

fn invalid(key: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { key, reason }
}

fn validate_public_url(url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => Ok(trimmed.to_owned()),
        _ => Err(invalid(
            "CALSYNC_PUBLIC_URL",
            format!("{url:?} is not an http(s) URL like https://cal.example.com"),
        )),
    }
}

/// Parses `CALSYNC_TRUSTED_PROXIES`: comma-separated networks such as
/// `10.0.0.0/8` or `2001:db8::/32`, or single addresses; a network with host
/// bits set (`10.0.0.1/8`) is refused as a likely typo.
pub fn parse_trusted_proxies(text: &str) -> Result<Vec<IpNet>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|item| {
            let item = item.trim();
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(address) => IpNet::from(address),
                    Err(_) => {
                        return Err(format!(
                            "{item:?} is not a network like 10.0.0.0/8 or 2001:db8::/32, \
                             or an address"
                        ))
                    }
                },
            };
            if net != net.trunc() {
                return Err(format!(
                    "{item:?} has host bits set: did you mean {}?",
                    net.trunc()
                ));
            }
            Ok(net)
        })
        .collect()
}

/// Parses `30s`, `5m`, `1h` (or a sum such as `1h30m`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    (number.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_documented() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        for bad in ["", "5", "m", "-5m", "5x", "0s", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn defaults_need_no_setup() {
        let config = Config::load(&ConfigArgs::default(), None).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(
            config.redirect_uri("google"),
            "http://localhost:8000/api/calendar/google/callback/"
        );
        assert!(config.google.is_none() && !config.is_https());
        assert_eq!(config.sync_interval, Duration::from_secs(300));
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("calsync-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("calsync.toml");
        std::fs::write(&path, "public_url = \"https://cal.example.com/\"\nsync_interval = \"1h\"\ngoogle_client_id = \"file-id\"\n").unwrap();
        let args = ConfigArgs {
            sync_interval: Some("30s".into()),
            ..Default::default()
        };
        let config = Config::load(&args, Some(&path)).unwrap();
        assert_eq!(config.public_url, "https://cal.example.com");
        assert_eq!(config.sync_interval, Duration::from_secs(30));
        let google = config.google.unwrap();
        assert_eq!(
            (google.client_id.as_str(), google.api_base.as_str()),
            ("file-id", "https://www.googleapis.com")
        );

        std::fs::write(&path, "no_such_key = 1\n").unwrap();
        assert!(matches!(
            Config::load(&ConfigArgs::default(), Some(&path)),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn trusted_proxies_are_parsed_strictly() {
        let parsed =
            parse_trusted_proxies(" 127.0.0.1/32, 10.0.0.0/8,2001:db8::/64 , ::1").unwrap();
        let shown: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/64", "::1/128"]
        );
        assert_eq!(parse_trusted_proxies("").unwrap(), []);
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/",
            "localhost",
            "10.0.0.0/8,",
            "10.0.0.0/8;192.168.0.0/16",
            "10.0.0.0 /8",
        ] {
            assert!(parse_trusted_proxies(bad).is_err(), "{bad:?}");
        }
        let args = ConfigArgs {
            trusted_proxies: Some("10.0.0.0/8, nonsense".into()),
            ..Default::default()
        };
        let err = Config::load(&args, None).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "CALSYNC_TRUSTED_PROXIES",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("\"nonsense\""), "{err}");
        assert!(Config::load(&ConfigArgs::default(), None)
            .unwrap()
            .trusted_proxies
            .is_empty());
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        settings: ConfigArgs,
    }

    #[test]
    fn secrets_are_no_command_line_flags() {
        use clap::Parser as _;
        for flag in [
            "--encryption-key",
            "--google_client_secret",
            "--microsoft_client_secret",
        ] {
            let parsed = Cli::try_parse_from(["calsync", flag, "c2VjcmV0"]);
            assert!(parsed.is_err(), "{flag} must not be accepted");
        }
        let ok = Cli::try_parse_from([
            "calsync",
            "--google_client_id",
            "id",
            "--database-url",
            "postgres://calsync:pg-pass-123@db.example:5432/calsync",
        ])
        .unwrap();
        assert_eq!(ok.settings.google.client_id.as_deref(), Some("id"));
        assert!(ok.settings.encryption_key.is_none());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let args = ConfigArgs {
            database_url: Some(DatabaseUrl::from(
                "postgres://calsync:pg-pass-123@db.example:5432/calsync".to_owned(),
            )),
            encryption_key: Some(SecretString::from("a2V5LXNlY3JldA==")),
            google: GoogleArgs {
                client_id: Some("gid".into()),
                client_secret: Some(SecretString::from("google-secret-456")),
                ..GoogleArgs::default()
            },
            ..ConfigArgs::default()
        };
        let config = Config::load(&args, None).unwrap();
        assert_eq!(
            config.database_url.as_deref(),
            Some("postgres://calsync:pg-pass-123@db.example:5432/calsync")
        );
        for shown in [format!("{args:?}"), format!("{config:?}")] {
            for secret in ["pg-pass-123", "a2V5LXNlY3JldA==", "google-secret-456"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(
                shown.contains("DatabaseUrl(postgres://[REDACTED])"),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_bad_public_url_is_refused() {
        let args = ConfigArgs {
            public_url: Some("localhost:8000".into()),
            ..Default::default()
        };
        assert!(matches!(
            Config::load(&args, None),
            Err(ConfigError::Invalid {
                key: "CALSYNC_PUBLIC_URL",
                ..
            })
        ));
    }
}
