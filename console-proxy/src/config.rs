//! console-proxy's settings: built-in defaults, overridden by command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The WebSocket listener (plain, or TLS with `cert` and `key`).
    pub listen: SocketAddr,
    /// bmcd's console socket, where tokens are redeemed.
    pub bmcd_socket: PathBuf,
    /// The libvirt connection for serial consoles.
    pub libvirt_uri: String,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A directory of static files (a noVNC copy) served on the same origin.
    pub web_root: Option<PathBuf>,
    /// Origins (`scheme://host[:port]`) allowed besides the proxy's own.
    pub allowed_origins: Vec<String>,
    /// A session without traffic in either direction for this long is closed.
    pub idle_timeout_s: u64,
    /// Concurrent TCP connections (before and after the WebSocket upgrade).
    pub max_connections: usize,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log: String,
    /// The SSH serial console's listener; `None`: no SSH.
    pub ssh_listen: Option<SocketAddr>,
    /// The SSH host key (OpenSSH format); made (Ed25519, mode 0600) at the
    /// first start with `ssh_listen`.
    pub ssh_host_key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 6080)),
            bmcd_socket: PathBuf::from("/run/bmcd/console.sock"),
            libvirt_uri: "qemu:///system".to_owned(),
            cert: None,
            key: None,
            web_root: None,
            allowed_origins: Vec::new(),
            idle_timeout_s: 600,
            max_connections: 64,
            log: "info".to_owned(),
            ssh_listen: None,
            ssh_host_key: PathBuf::from("/var/lib/console-proxy/ssh_host_ed25519_key"),
        }
    }
}

pub const USAGE: &str = "\
usage: console-proxy [OPTIONS]

  --listen ADDR:PORT       WebSocket listener (default 127.0.0.1:6080)
  --bmcd-socket PATH       bmcd's console socket (default /run/bmcd/console.sock)
  --libvirt-uri URI        libvirt connection for serial consoles (default qemu:///system)
  --cert FILE --key FILE   serve wss:// with this certificate and key (PEM)
  --web DIR                also serve the static files of DIR (e.g. /usr/share/novnc)
  --allowed-origin ORIGIN  accept browser pages of this origin too (repeatable)
  --idle-timeout-s N       close sessions idle for N seconds (default 600)
  --max-connections N      concurrent connections (default 64)
  --log LEVEL              error, warn, info, debug or trace (default info)
  --ssh-listen ADDR:PORT   also serve the serial consoles over SSH (default: off);
                           logins are checked by bmcd
  --ssh-host-key PATH      the SSH host key, made at the first start (default
                           /var/lib/console-proxy/ssh_host_ed25519_key)
  --help, --version";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

impl Config {
    /// Parses the arguments (without the program name).
    pub fn from_args(args: &[String]) -> Result<Command, String> {
        let mut c = Config::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            if matches!(flag, "--help" | "-h") {
                return Ok(Command::Help);
            }
            if matches!(flag, "--version" | "-V") {
                return Ok(Command::Version);
            }
            const WITH_VALUE: [&str; 12] = [
                "--listen",
                "--bmcd-socket",
                "--libvirt-uri",
                "--cert",
                "--key",
                "--web",
                "--allowed-origin",
                "--idle-timeout-s",
                "--max-connections",
                "--log",
                "--ssh-listen",
                "--ssh-host-key",
            ];
            if !WITH_VALUE.contains(&flag) {
                return Err(format!("unknown argument '{flag}'"));
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))?,
            };
            let number = |v: &str| -> Result<u64, String> {
                v.parse::<u64>()
                    .map_err(|_| format!("{flag}: '{v}' is not a number"))
            };
            match flag {
                "--listen" => {
                    c.listen = value
                        .parse()
                        .map_err(|_| format!("--listen: '{value}' is not ADDR:PORT"))?
                }
                "--bmcd-socket" => c.bmcd_socket = value.into(),
                "--libvirt-uri" => c.libvirt_uri = value,
                "--cert" => c.cert = Some(value.into()),
                "--key" => c.key = Some(value.into()),
                "--web" => c.web_root = Some(value.into()),
                "--allowed-origin" => c.allowed_origins.push(value.trim_end_matches('/').to_owned()),
                "--idle-timeout-s" => c.idle_timeout_s = number(&value)?,
                "--max-connections" => {
                    c.max_connections = usize::try_from(number(&value)?).map_err(|e| e.to_string())?
                }
                "--log" => c.log = value,
                "--ssh-listen" => {
                    c.ssh_listen = Some(
                        value
                            .parse()
                            .map_err(|_| format!("--ssh-listen: '{value}' is not ADDR:PORT"))?,
                    )
                }
                "--ssh-host-key" => {
                    if value.is_empty() {
                        return Err("--ssh-host-key needs a path".into());
                    }
                    c.ssh_host_key = value.into()
                }
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        c.validate()?;
        Ok(Command::Run(Box::new(c)))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.cert.is_some() != self.key.is_some() {
            return Err("--cert and --key go together".into());
        }
        if self.idle_timeout_s == 0 || self.max_connections == 0 {
            return Err("--idle-timeout-s and --max-connections must be at least 1".into());
        }
        if !matches!(self.log.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
            return Err(format!("log level '{}'", self.log));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags() {
        let Ok(Command::Run(c)) = Config::from_args(&args(&[
            "--listen=0.0.0.0:7000",
            "--bmcd-socket",
            "/tmp/s",
            "--allowed-origin",
            "https://a.example/",
            "--idle-timeout-s",
            "5",
        ])) else {
            panic!("parses")
        };
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.bmcd_socket, PathBuf::from("/tmp/s"));
        assert_eq!(c.allowed_origins, vec!["https://a.example".to_owned()]);
        assert_eq!(c.idle_timeout_s, 5);
        assert!(Config::from_args(&args(&["--cert", "x"])).is_err());
        assert_eq!(
            Config::from_args(&args(&["--bogus"])),
            Err("unknown argument '--bogus'".to_owned())
        );
        assert_eq!(
            Config::from_args(&args(&["--listen"])),
            Err("--listen needs a value".to_owned())
        );
        assert_eq!(Config::from_args(&args(&["--help"])), Ok(Command::Help));
        assert_eq!(Config::default().ssh_listen, None);
    }

    #[test]
    fn ssh_flags() {
        let Ok(Command::Run(c)) = Config::from_args(&args(&[
            "--ssh-listen",
            "0.0.0.0:2222",
            "--ssh-host-key=/state/key",
        ])) else {
            panic!("parses")
        };
        assert_eq!(c.ssh_listen, Some(SocketAddr::from(([0, 0, 0, 0], 2222))));
        assert_eq!(c.ssh_host_key, PathBuf::from("/state/key"));
        assert!(Config::from_args(&args(&["--ssh-listen", "2222"])).is_err());
        assert!(Config::from_args(&args(&["--ssh-host-key="])).is_err());
    }
}
